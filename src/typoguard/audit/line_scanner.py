"""What the scanners of line logs (Postfix, Exim) share: the records they collect from one task.

A scanner is fed the lines of one task (a file or a byte range of one) and collects ``partials``, one per
line about a look-alike recipient, and the ``expired`` messages; the runner joins them across tasks.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import ClassVar

from typoguard.audit.model import Hit, Outcome, Partial, SourceStats


class LineScanner:
    fmt: ClassVar[str]  # the input format, as reported (``postfix``, ``exim``)

    def __init__(self, source: str, stats: SourceStats) -> None:
        self.source = source
        self.stats = stats
        self.partials: list[Partial] = []
        self.expired: set[tuple[str, ...]] = set()

    def _add(  # noqa: PLR0917 - the fields of one Partial, made for every line that matters
        self,
        key: tuple[str, ...] | None,
        time: datetime | None,
        sender: str | None,
        recipient: str,
        hit: Hit,
        outcome: Outcome,
        queue_id: str,
        message_id: str,
        detail: str,
    ) -> Partial:
        """Collect what one line says about one message to one look-alike recipient (one attempt)."""
        partial = Partial(
            key, time, sender, recipient, hit, outcome, 1, self.source, self.fmt, queue_id, message_id, detail
        )
        self.partials.append(partial)
        return partial


def arrivals(
    earlier: bytes, wanted: set[bytes], arrival: re.Pattern[bytes], message_id: re.Pattern[bytes]
) -> tuple[dict[bytes, bytes], dict[bytes, bytes]]:
    """(id -> sender, id -> Message-ID) of the ``wanted`` ids in the bytes before a chunk, from the lines
    ``arrival`` finds as (id, sender, rest of the line), ``message_id`` searched in the rest; the later line
    wins, as in the log. The ``lookback`` of the scanners whose messages arrive on one line (Exim,
    Sendmail)."""
    senders: dict[bytes, bytes] = {}
    message_ids: dict[bytes, bytes] = {}
    for mid, sender, rest in arrival.findall(earlier):
        if mid not in wanted:
            continue
        senders[mid] = sender
        found = message_id.search(rest)
        if found is not None:
            message_ids[mid] = found[1]
    return senders, message_ids
