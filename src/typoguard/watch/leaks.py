"""Leak patterns in the decision log and the hold queue, as events. Pure: tallies and queue entries in.

* ``repeat-sender`` (warning): one sender hit look-alikes ``repeat_min`` times or more in the window;
  someone who keeps mistyping (or an address book entry that is wrong).
* ``popular-lookalike`` (warning): ``popular_min`` different senders hit the same look-alike: a domain
  people habitually mistype, worth registering defensively.
* ``audit-let-through`` (critical): in audit mode the policy service let mail through that enforce mode
  would have held or refused: it left.
* ``held-too-long`` (warning): mail held for a person for longer than ``held_max_age``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

from typoguard.store.events import LookalikeHits, Observation


def _days(seconds: float) -> str:
    return f"{seconds / 86400:g} d" if seconds >= 86400 else f"{seconds / 3600:g} h"


def leak_observations(
    hits: Iterable[LookalikeHits], *, repeat_min: int, popular_min: int, window: float
) -> list[Observation]:
    """Events from the flagged decisions of the last ``window`` seconds."""
    by_sender: dict[str, list[LookalikeHits]] = defaultdict(list)
    by_domain: dict[str, list[LookalikeHits]] = defaultdict(list)
    let_through: dict[str, list[LookalikeHits]] = defaultdict(list)
    for h in hits:
        if h.sender:
            by_sender[h.sender].append(h)
        by_domain[h.domain].append(h)
        if h.mode == "audit" and h.action in ("hold", "reject"):
            let_through[h.domain].append(h)
    out: list[Observation] = []
    span = _days(window)
    for sender, rows in sorted(by_sender.items()):
        n = sum(r.count for r in rows)
        if n >= repeat_min:
            domains = sorted({r.domain for r in rows})
            summary = f"{sender} wrote to look-alikes {n} times in {span}: {', '.join(domains[:5])}"
            details = {"sender": sender, "hits": n, "lookalikes": domains, "window_seconds": window}
            out.append(Observation("repeat-sender", sender, "warning", "", summary, details))
    for domain, rows in sorted(by_domain.items()):
        senders = sorted({r.sender for r in rows if r.sender})
        if len(senders) >= popular_min:
            intended = rows[0].intended
            summary = (
                f"{len(senders)} senders wrote to {domain} (look-alike of {intended}) in {span}: "
                "a habitual typo, worth registering defensively"
            )
            details = {
                "lookalike": domain,
                "intended": intended,
                "senders": len(senders),
                "window_seconds": window,
            }
            out.append(Observation("popular-lookalike", domain, "warning", "", summary, details))
    for domain, rows in sorted(let_through.items()):
        n = sum(r.count for r in rows)
        summary = (
            f"audit mode let {n} mail(s) to {domain} (look-alike of {rows[0].intended}) through that enforce "
            "mode would have stopped"
        )
        details = {"lookalike": domain, "intended": rows[0].intended, "mails": n, "window_seconds": window}
        out.append(Observation("audit-let-through", domain, "critical", "", summary, details))
    return out


def held_observations(
    held: Iterable[tuple[str, float, str, tuple[str, ...]]], *, max_age: float, now: float
) -> list[Observation]:
    """Events for held mail waiting longer than ``max_age``: ``held`` is (queue id, arrival time, sender,
    recipients) per message."""
    out = []
    for queue_id, arrival, sender, recipients in held:
        age = now - arrival
        if age > max_age:
            summary = f"mail {queue_id} from {sender or '<>'} held for {_days(age)}, waiting for a person"
            details = {
                "queue_id": queue_id,
                "sender": sender,
                "recipients": list(recipients),
                "arrival": arrival,
            }
            out.append(Observation("held-too-long", queue_id, "warning", "", summary, details))
    return out
