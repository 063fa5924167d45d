"""Exim main logs (``mainlog``).

    2026-11-26 16:47:38 1vOt3y-000Abc-Xy <= alice@army.mil H=... P=esmtp S=812
    2026-11-26 16:47:39 1vOt3y-000Abc-Xy => bob@army.ml R=dnslookup T=remote_smtp H=mx.army.ml [1.2.3.4] ...
    2026-11-26 16:47:39 1vOt3y-000Abc-Xy -> carol@army.ml ...          (another recipient, same connection)
    2026-11-26 16:47:39 1vOt3y-000Abc-Xy ** bob@army.ml ...: 550 ...    (bounced)
    2026-11-26 16:47:39 1vOt3y-000Abc-Xy == bob@army.ml ... defer ...   (deferred)
    2026-11-26 16:47:38 H=(helo) [1.2.3.4] F=<alice@army.mil> rejected RCPT <bob@army.ml>: ...

An optional ``+0100`` zone and ``[pid]`` may follow the time; both message id lengths (Exim < 4.97 and
>= 4.97) are accepted. The sender of a message comes from its ``<=`` line, remembered until ``Completed``.
"""

from __future__ import annotations

import re
from datetime import datetime

from typoguard.audit.classify import Classifier, decode
from typoguard.audit.model import Outcome, Partial, SourceStats
from typoguard.audit.postfix import TYPOGUARD_MARKERS
from typoguard.audit.timeparse import iso_time

MAX_SENDERS = 500_000

_LINE = re.compile(
    rb"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?:\.\d+)?(?: [+-]\d{4})?)(?: \[\d+\])? "
    rb"([0-9A-Za-z]{6}-[0-9A-Za-z]{6,11}-[0-9A-Za-z]{2,4}) (<=|=>|->|\*\*|==) (\S+)(.*)$"
)
_REJECT = re.compile(
    rb"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?:\.\d+)?(?: [+-]\d{4})?)(?: \[\d+\])? .*?"
    rb"(?:F=<([^>]*)> )?rejected RCPT <([^>]*)>:? ?(.*)$"
)
_OUTCOME = {
    b"=>": Outcome.DELIVERED,
    b"->": Outcome.DELIVERED,
    b"**": Outcome.BOUNCED,
    b"==": Outcome.DEFERRED,
}
_MARKS = (b" <= ", b" => ", b" -> ", b" ** ", b" == ")


class EximScanner:
    fmt = "exim"

    def __init__(self, classifier: Classifier, source: str, reference: datetime, stats: SourceStats) -> None:
        self._hit = classifier.recipient_hit
        self.source = source
        self.stats = stats
        self.partials: list[Partial] = []
        self.expired: set[tuple[str, ...]] = set()
        self.senders: dict[bytes, bytes] = {}

    def feed(self, lines: list[bytes]) -> None:
        senders = self.senders
        for line in lines:
            if not line[:4].isdigit():
                if line.strip():
                    self.stats.bad(self.source, line)
                continue
            if b" <= " in line:
                m = _LINE.match(line)
                if m is not None:
                    senders[m[2]] = m[4]
                    if len(senders) > MAX_SENDERS:
                        for mid in list(senders)[: MAX_SENDERS // 10]:
                            del senders[mid]
            elif b" => " in line or b" -> " in line or b" ** " in line or b" == " in line:
                self._delivery(line)
            elif b"rejected RCPT" in line:
                self._reject(line)
            elif line.endswith(b" Completed"):
                senders.pop(line.split(b" ")[-2], None)

    def _delivery(self, line: bytes) -> None:
        m = _LINE.match(line)
        if m is None:
            if any(mark in line for mark in _MARKS):
                self.stats.bad(self.source, line)
            return
        rcpt = m[4].strip(b"<>")
        hit = self._hit(rcpt)
        if hit is None:
            return
        mid = m[2].decode("ascii")
        recipient = decode(rcpt)
        sender = self.senders.get(m[2])
        self.partials.append(
            Partial(
                key=(mid, recipient.lower()),
                time=iso_time(m[1].decode("ascii")),
                sender=(decode(sender) or "<>") if sender is not None else None,
                recipient=recipient,
                hit=hit,
                outcome=_OUTCOME[m[3]],
                attempts=1,
                source=self.source,
                fmt=self.fmt,
                message_id=mid,
                detail=decode(m[5][:200]).strip(),
            )
        )

    def _reject(self, line: bytes) -> None:
        m = _REJECT.match(line)
        if m is None:
            self.stats.bad(self.source, line)
            return
        hit = self._hit(m[3])
        if hit is None:
            return
        text = m[4]
        outcome = Outcome.REJECTED
        if any(k in text.lower() for k in TYPOGUARD_MARKERS):
            outcome = Outcome.REJECTED_BY_TYPOGUARD
        self.partials.append(
            Partial(
                key=None,
                time=iso_time(m[1].decode("ascii")),
                sender=(decode(m[2]) or "<>") if m[2] is not None else "?",
                recipient=decode(m[3]),
                hit=hit,
                outcome=outcome,
                attempts=1,
                source=self.source,
                fmt=self.fmt,
                message_id="",
                detail=decode(text[:200]),
            )
        )

    def unresolved(self) -> list[Partial]:
        return [p for p in self.partials if p.sender is None]

    @staticmethod
    def sender_pattern(mid: str) -> re.Pattern[bytes]:
        return re.compile(rb" " + re.escape(mid.encode()) + rb" <= (\S+)")
