"""Statistics from the decision log: counts per UTC day and action, the top look-alike domains and the top
senders of flagged mail, in one bounded scan of the window asked for (``GET /v1/stats`` and the
dashboard's overview show exactly this).
"""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

from sqlalchemy import select

from typoguard.core.verdict import Action
from typoguard.store.db import translated
from typoguard.store.schema import decisions
from typoguard.store.store import Store

_ACTIONS = [a.value for a in Action]  # mildest first: the order of the counts in every row


def decision_stats(store: Store, *, days: int, top: int = 10, now: float | None = None) -> dict[str, Any]:
    """Counts for the last ``days`` days: per UTC day and action, top look-alike domains, top senders.
    ``StoreError`` if the database fails."""
    since = (time.time() if now is None else now) - days * 86400
    c = decisions.c
    stmt = select(c.time, c.action, c.domain, c.intended, c.sender).where(c.time >= since)
    per_day: dict[str, Counter[str]] = {}
    lookalikes: Counter[tuple[str, str]] = Counter()
    senders: Counter[str] = Counter()
    total: Counter[str] = Counter()
    with translated("read decision statistics"), store.engine.connect() as conn:
        for row in conn.execute(stmt):
            t, action, domain, intended = float(row.time), str(row.action), str(row.domain), row.intended
            sender = str(row.sender)
            day = time.strftime("%Y-%m-%d", time.gmtime(t))
            per_day.setdefault(day, Counter())[action] += 1
            total[action] += 1
            if action != "allow" and intended:
                lookalikes[(domain, str(intended))] += 1
                senders[sender or "<>"] += 1
    return {
        "since": since,
        "days": days,
        "total": {a: total.get(a, 0) for a in _ACTIONS},
        "per_day": [
            {"day": day, **{a: counts.get(a, 0) for a in _ACTIONS}} for day, counts in sorted(per_day.items())
        ],
        "top_lookalikes": [
            {"domain": d, "intended": i, "count": n} for (d, i), n in lookalikes.most_common(top)
        ],
        "top_senders": [{"sender": s, "count": n} for s, n in senders.most_common(top)],
    }
