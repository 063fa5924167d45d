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
from typoguard.audit.line_scanner import LineScanner
from typoguard.audit.model import Outcome, Partial, SourceStats
from typoguard.audit.refusals import by_typoguard
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
_ARRIVAL = re.compile(rb" ([0-9A-Za-z]{6}-[0-9A-Za-z]{6,11}-[0-9A-Za-z]{2,4}) <= (\S+)([^\n]*)")
_MESSAGE_ID = re.compile(rb" id=(\S+)")  # the Message-ID on a ``<=`` line (log_selector +msgid, the default)


class EximScanner(LineScanner):
    fmt = "exim"

    def __init__(self, classifier: Classifier, source: str, reference: datetime, stats: SourceStats) -> None:
        super().__init__(source, stats)
        self._hit = classifier.recipient_hit
        self.senders: dict[bytes, bytes] = {}
        self.message_ids: dict[bytes, bytes] = {}

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
                    found = _MESSAGE_ID.search(m[5])
                    if found is not None:
                        self.message_ids[m[2]] = found[1]
                    if len(senders) > MAX_SENDERS:
                        for mid in list(senders)[: MAX_SENDERS // 10]:
                            del senders[mid]
                            self.message_ids.pop(mid, None)
            elif b" => " in line or b" -> " in line or b" ** " in line or b" == " in line:
                self._delivery(line)
            elif b"rejected RCPT" in line:
                self._reject(line)
            elif line.endswith(b" Completed"):
                done = line.split(b" ")[-2]
                senders.pop(done, None)
                self.message_ids.pop(done, None)

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
        outcome = _OUTCOME[m[3]]
        detail = m[5][:200]
        if outcome is Outcome.BOUNCED and by_typoguard(detail, hit):  # refused by typoguard on a later hop
            outcome = Outcome.REJECTED_BY_TYPOGUARD
        when = iso_time(m[1].decode("ascii"))
        text = (decode(sender) or "<>") if sender is not None else None
        message_id = self.message_id_of(self.message_ids.get(m[2]))
        key = (mid, recipient.lower())
        self._add(key, when, text, recipient, hit, outcome, mid, message_id, decode(detail).strip())

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
        if by_typoguard(text, hit):
            outcome = Outcome.REJECTED_BY_TYPOGUARD
        when = iso_time(m[1].decode("ascii"))
        sender = (decode(m[2]) or "<>") if m[2] is not None else "?"
        self._add(None, when, sender, decode(m[3]), hit, outcome, "", "", decode(text[:200]))

    def unresolved(self) -> list[tuple[Partial, int]]:
        """Partials whose sender or Message-ID may be on a ``<=`` line before this chunk (offset 0: the
        chunk itself was searched already)."""
        return [(p, 0) for p in self.partials if p.sender is None or (p.queue_id and not p.message_id)]

    @staticmethod
    def message_id_of(raw: bytes | None) -> str:
        return _bracketed(decode(raw)) if raw else ""

    @staticmethod
    def lookback(earlier: bytes, wanted: set[bytes]) -> tuple[dict[bytes, bytes], dict[bytes, bytes]]:
        """(message id -> sender, message id -> Message-ID) of the ``<=`` lines in the bytes before a chunk
        (the later line wins, as in the log)."""
        senders: dict[bytes, bytes] = {}
        message_ids: dict[bytes, bytes] = {}
        for mid, sender, rest in _ARRIVAL.findall(earlier):
            if mid not in wanted:
                continue
            senders[mid] = sender
            found = _MESSAGE_ID.search(rest)
            if found is not None:
                message_ids[mid] = found[1]
        return senders, message_ids


def _bracketed(message_id: str) -> str:
    """Exim logs the Message-ID without its angle brackets; the audit reports it as the header has it."""
    return f"<{message_id}>" if message_id and not message_id.startswith("<") else message_id
