"""Exim main logs (``mainlog``).

    2026-11-26 16:47:38 1vOt3y-000Abc-Xy <= alice@army.mil H=... P=esmtp S=812
    2026-11-26 16:47:39 1vOt3y-000Abc-Xy => bob@army.ml R=dnslookup T=remote_smtp H=mx.army.ml [1.2.3.4] ...
    2026-11-26 16:47:39 1vOt3y-000Abc-Xy -> carol@army.ml ...          (another recipient, same connection)
    2026-11-26 16:47:39 1vOt3y-000Abc-Xy ** bob@army.ml ...: 550 ...    (bounced)
    2026-11-26 16:47:39 1vOt3y-000Abc-Xy == bob@army.ml ... defer ...   (deferred)
    2026-11-26 16:47:38 H=(helo) [1.2.3.4] F=<alice@army.mil> rejected RCPT <bob@army.ml>: ...
    2026-11-26 16:47:38 H=(helo) [1.2.3.4] Warning: typoguard: hold <bob@arny.mil>: ...   (held, at RCPT)
    2026-11-26 16:47:38 1vOt3y-000Abc-Xy U=root Warning: typoguard: hold <a@army.mil, b@arny.mil>: ...
                                                                    (held, non-SMTP: every recipient)

An optional ``+0100`` zone and ``[pid]`` may follow the time; both message id lengths (Exim < 4.97 and
>= 4.97) are accepted. The sender of a message comes from its ``<=`` line, remembered until ``Completed``.

A hold is the shipped ACL's (``examples/exim/typoguard.acl``) ``typoguard: hold <recipients>:`` log line
(the message is then frozen). At RCPT time it has no message id yet: it is joined with the next ``<=`` line
of the same process (``[pid]``, log_selector ``+pid``) or else of the same client (``H=... [ip]:port``), which
gives it the message id (so a release and delivery later is the same event) and the sender.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from datetime import datetime, timedelta

from typoguard.audit.classify import Classifier, decode
from typoguard.audit.line_scanner import LineScanner, arrivals
from typoguard.audit.model import Outcome, Partial, SourceStats
from typoguard.audit.refusals import by_typoguard
from typoguard.audit.timeparse import iso_time, syslog_time

MAX_SENDERS = 500_000

_LINE = re.compile(
    rb"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?:\.\d+)?(?: [+-]\d{4})?)(?: \[\d+\])? "
    rb"([0-9A-Za-z]{6}-[0-9A-Za-z]{6,11}-[0-9A-Za-z]{2,4}) (<=|=>|->|\*\*|==) (\S+)(.*)$"
)
# The start of every line: time, optional [pid], optional message id. The rest of a refusal or hold line is
# taken apart with ``find``, not a pattern: a pattern with a lazy prefix retried the rest of the line at
# each "F=<" or "hold <" (minutes for one hostile line of 300 KB).
_STAMP = re.compile(
    rb"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?:\.\d+)?(?: [+-]\d{4})?)(?: \[(\d+)\])? "
    rb"(?:([0-9A-Za-z]{6}-[0-9A-Za-z]{6,11}-[0-9A-Za-z]{2,4}) )?"
)
# Syslog's prefix of an Exim line: time, host, ``exim[pid]: ``, and the piece number of a line cut in pieces.
# (BSD syslog's time, or RFC 3339's as rsyslog's high-precision file format writes it.)
_SYSLOG = re.compile(
    rb"(?:<\d{1,3}>)?(?:([A-Z][a-z]{2}) +(\d{1,2}) (\d\d:\d\d:\d\d)(?:\.\d+)?|(\d{4}-\d\d-\d\dT\S+)) "
    rb"(?:\S+ )?exim4?\[(\d+)\]: (?:\[(\d+)\\\d+\] )?"
)
_PID = re.compile(rb"\[\d+\] ")
_REJECTED = b"rejected RCPT <"
_OUTCOME = {
    b"=>": Outcome.DELIVERED,
    b"->": Outcome.DELIVERED,
    b"**": Outcome.BOUNCED,
    b"==": Outcome.DEFERRED,
}
_MARKS = (b" <= ", b" => ", b" -> ", b" ** ", b" == ")
_ARRIVAL = re.compile(rb" ([0-9A-Za-z]{6}-[0-9A-Za-z]{6,11}-[0-9A-Za-z]{2,4}) <= (\S+)([^\n]*)")
_MESSAGE_ID = re.compile(rb" id=(\S+)")  # the Message-ID on a ``<=`` line (log_selector +msgid, the default)
_HOLD = b"Warning: typoguard: hold <"  # the shipped ACL's hold line
MAX_PENDING = 10_000  # holds waiting for their message's <= line (per connection or message id)
JOIN_WITHIN = timedelta(minutes=10)  # a hold at RCPT and its message's <= line: one SMTP transaction apart


class EximScanner(LineScanner):
    fmt = "exim"

    def __init__(self, classifier: Classifier, source: str, reference: datetime, stats: SourceStats) -> None:
        super().__init__(source, stats)
        self._reference = reference  # the year of syslog times (``syslog_timestamp = false``)
        self._hit = classifier.recipient_hit
        self.senders: dict[bytes, bytes] = {}
        self.message_ids: dict[bytes, bytes] = {}
        # holds waiting for the <= line of their message (oldest first: dropping it is O(1))
        self._pending: OrderedDict[bytes, list[Partial]] = OrderedDict()

    def feed(self, lines: list[bytes]) -> None:
        senders = self.senders
        for raw in lines:
            line = raw if raw[:4].isdigit() and raw[10:11] == b" " else self._from_syslog(raw)
            if not line:
                if line is None and raw.strip():
                    self.stats.bad(self.source, raw)
                continue  # b"": the rest of a line syslog cut into pieces
            if b" <= " in line:
                m = _LINE.match(line)
                if m is not None:
                    senders[m[2]] = m[4]
                    found = _MESSAGE_ID.search(m[5])
                    if found is not None:
                        self.message_ids[m[2]] = found[1]
                    if self._pending:
                        self._arrived(line, m[1], m[2], m[4], m[5])
                    if len(senders) > MAX_SENDERS:
                        for mid in list(senders)[: MAX_SENDERS // 10]:
                            del senders[mid]
                            self.message_ids.pop(mid, None)
            elif _HOLD in line:
                self._hold(line)
            elif self._pending and b"SMTP connection from " in line:
                self._closed(line)
            elif b" => " in line or b" -> " in line or b" ** " in line or b" == " in line:
                self._delivery(line)
            elif b"rejected RCPT" in line:
                self._reject(line)
            elif line.endswith(b" Completed"):
                done = line.split(b" ")[-2]
                senders.pop(done, None)
                self.message_ids.pop(done, None)

    def _from_syslog(self, line: bytes) -> bytes | None:
        """An Exim line that came through syslog (``log_file_path = syslog``) as Exim writes it in its own
        file: syslog's prefix off, and where Exim's own time is not there (``syslog_timestamp = false``),
        syslog's time and the pid in its place. ``b""``: a second or later piece of a long line (syslog
        takes ~1 KB; Exim cuts longer lines into ``[1\\2]``, ``[2\\2]`` pieces; the first holds the
        addresses). None: not an Exim line."""
        m = _SYSLOG.match(line)
        if m is None:
            return None
        if m[6] is not None and m[6] != b"1":
            return b""
        rest = line[m.end() :]
        if rest[:4].isdigit() and _STAMP.match(rest) is not None:
            return rest
        if m[4] is not None:
            when = iso_time(m[4].decode("ascii", "replace"))
        else:
            when = syslog_time(m[1], m[2], m[3], self._reference)
        if when is None:
            return None
        stamp = when.strftime("%Y-%m-%d %H:%M:%S").encode()
        if _PID.match(rest) is not None:  # log_selector +pid: Exim wrote its own
            return stamp + b" " + rest
        return stamp + b" [" + m[5] + b"] " + rest

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

    def _marked(self, line: bytes, mark: bytes) -> tuple[re.Match[bytes], int, int] | None:
        """(the line's start, where ``mark`` is, where the ``>`` closing what follows it is), or None for a
        bad line (counted): a refusal's or hold's line taken apart with ``find``, linear in any line."""
        m = _STAMP.match(line)
        at = line.find(mark)
        end = line.find(b">", at + len(mark)) if at >= 0 else -1
        if m is None or end < 0:
            self.stats.bad(self.source, line)
            return None
        return m, at, end

    def _reject(self, line: bytes) -> None:
        """``H=... F=<sender> rejected RCPT <rcpt>: text``: the sender is the last ``F=<...>`` before."""
        parts = self._marked(line, _REJECTED)
        if parts is None:
            return
        m, at, end = parts
        rcpt = line[at + len(_REJECTED) : end]
        hit = self._hit(rcpt)
        if hit is None:
            return
        text = _after_colon(line, end + 1)
        outcome = Outcome.REJECTED
        if by_typoguard(text, hit):
            outcome = Outcome.REJECTED_BY_TYPOGUARD
        when = iso_time(m[1].decode("ascii"))
        f = line.rfind(b"F=<", m.end(), at)
        closed = line.find(b">", f + 3, at) if f >= 0 else -1
        sender = (decode(line[f + 3 : closed]) or "<>") if closed >= 0 else "?"
        self._add(None, when, sender, decode(rcpt), hit, outcome, "", "", decode(text[:200]))

    def _hold(self, line: bytes) -> None:
        """The shipped ACL's hold line: one held event per look-alike recipient it names, waiting for the
        ``<=`` line of its message (its id and sender)."""
        parts = self._marked(line, _HOLD)
        if parts is None:
            return
        m, at, end = parts
        when = iso_time(m[1].decode("ascii"))
        mid = m[3]
        if mid is not None:
            wait = b"id " + mid
        else:
            wait = b"pid " + m[2] if m[2] else b"client " + (_client(line, m.end(), at) or b"?")
        rcpts = line[at + len(_HOLD) : end]
        detail = decode(_after_colon(line, end + 1)[:200])
        for raw in rcpts.split(b","):
            rcpt = raw.strip()
            hit = self._hit(rcpt) if rcpt else None
            if hit is None:
                continue
            queue_id = mid.decode("ascii") if mid else ""
            partial = self._add(None, when, "?", decode(rcpt), hit, Outcome.HELD, queue_id, "", detail)
            self._pending.setdefault(wait, []).append(partial)
        while len(self._pending) > MAX_PENDING:  # a hold whose message never arrived (the client quit)
            self._pending.popitem(last=False)

    def _closed(self, line: bytes) -> None:
        """An SMTP connection's last line (``... closed by QUIT``, ``lost``): with ``+pid``, the holds of
        a transaction that never became a message are dropped, so a later process with the same pid
        cannot take them."""
        stamp = _STAMP.match(line)
        pid = stamp[2] if stamp is not None else None
        if pid and (b" closed by " in line or b" lost" in line or b"no MAIL" in line):
            self._pending.pop(b"pid " + pid, None)

    def _arrived(self, line: bytes, stamp: bytes, mid: bytes, sender: bytes, rest: bytes) -> None:
        """A message's ``<=`` line: the holds of its process or client (at RCPT) or of its id (non-SMTP)
        get its id, sender and Message-ID, and the key that joins a later release with them."""
        head = _STAMP.match(line)
        pid = head[2] if head is not None else None
        client = _client(rest, 0, len(rest))
        waits = [b"id " + mid, b"pid " + pid if pid else b"", b"client " + client if client else b""]
        queue_id = mid.decode("ascii")
        message_id = self.message_id_of(self.message_ids.get(mid))
        arrival = iso_time(stamp.decode("ascii"))
        for wait in waits:
            for partial in self._pending.pop(wait, ()) if wait else ():
                if _apart(partial.time, arrival):
                    continue  # an older transaction's hold (the client gave up): left unjoined
                partial.key = (queue_id, partial.recipient.lower())
                partial.sender = decode(sender) or "<>"
                partial.queue_id = queue_id
                partial.message_id = message_id

    def unresolved(self) -> list[tuple[Partial, int]]:
        """Partials whose sender or Message-ID may be on a ``<=`` line before this chunk (offset 0: the
        chunk itself was searched already)."""
        return [(p, 0) for p in self.partials if p.sender is None or (p.queue_id and not p.message_id)]

    @staticmethod
    def message_id_of(raw: bytes | None) -> str:
        return _bracketed(decode(raw)) if raw else ""

    @staticmethod
    def lookback(earlier: bytes, wanted: set[bytes]) -> tuple[dict[bytes, bytes], dict[bytes, bytes]]:
        """(message id -> sender, message id -> Message-ID) of the ``<=`` lines before a chunk."""
        return arrivals(earlier, wanted, _ARRIVAL, _MESSAGE_ID)


def _after_colon(line: bytes, at: int) -> bytes:
    """The text after ``>`` at ``at``: without the ``: `` (or ``:``, or `` ``) that Exim puts first."""
    if line[at : at + 1] == b":":
        at += 1
    if line[at : at + 1] == b" ":
        at += 1
    return line[at:]


def _client(line: bytes, start: int, end: int) -> bytes | None:
    """``(helo) [ip]:port`` of the first ``H=`` field in ``line[start:end]``: how the RCPT-time lines and
    the ``<=`` line of one SMTP transaction name its client (``find``: linear in any line)."""
    at = line.find(b"H=", start, end)
    while at > start and (line[at - 1 : at].isalnum() or line[at - 1 : at] == b"_"):  # not a word's end
        at = line.find(b"H=", at + 2, end)
    if at < 0:
        return None
    bracket = line.find(b"[", at, end)
    close = line.find(b"]", bracket, end) if bracket >= 0 else -1
    if close < 0:
        return None
    stop = close + 1
    if line[stop : stop + 1] == b":":
        digits = stop + 1
        while line[digits : digits + 1].isdigit():
            digits += 1
        stop = digits if digits > stop + 1 else stop
    return line[at + 2 : stop]


def _apart(held: datetime | None, arrival: datetime | None) -> bool:
    """True when a hold cannot belong to a message that arrived at ``arrival`` (before it, or more than
    ``JOIN_WITHIN`` later); unknown or incomparable times do not keep them apart."""
    if held is None or arrival is None or (held.tzinfo is None) != (arrival.tzinfo is None):
        return False
    return not timedelta(0) <= arrival - held <= JOIN_WITHIN


def _bracketed(message_id: str) -> str:
    """Exim logs the Message-ID without its angle brackets; the audit reports it as the header has it."""
    return f"<{message_id}>" if message_id and not message_id.startswith("<") else message_id
