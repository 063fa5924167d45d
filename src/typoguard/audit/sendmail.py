"""Sendmail's log (``/var/log/maillog``, ``mail.log``): the lines of ``sendmail``, ``sm-mta`` and
``sm-msp-queue``, as real Sendmail 8.17 writes them at its default LogLevel 9 (tests/milter/sendmail_lab.py)::

    Dec  7 15:23:44 mx sm-mta[32469]: 6B7FNiRA032469: from=<alice@army.mil>, size=270, class=0, nrcpts=4,
        msgid=<20261207152344.032468@vm>, proto=ESMTP, daemon=MTA, relay=localhost [127.0.0.1]
    ... 6B7FNiRA032469: to=<x@army.mil>,<carol@arny.mil>, delay=00:00:00, xdelay=00:00:00, mailer=esmtp,
        pri=120270, relay=[127.0.0.1] [127.0.0.1], dsn=2.0.0, stat=Sent (2.0.0 kept)        (delivered)
    ... 6B7FNiRA032469: to=<later@arny.mil>, ..., dsn=4.3.0, reply=451 4.3.0 try again later,
        stat=Deferred: 451 4.3.0 try again later                                             (deferred)
    ... 6B7FNiRA032469: to=<nobody@arny.mil>, ..., dsn=5.1.1, reply=550 5.1.1 nobody@arny.mil... User
        unknown, stat=User unknown                                                           (bounced)
    ... 6B7FNilL032467: Milter: to=<bob@army.ml>, reject=550 5.1.2 <bob@army.ml>: Not sent: ...
                                                         (refused at RCPT by a milter: typoguard's text)
    ... 6B7FNite032473: to=<dave@amry.mil>, delay=00:00:00, mailer=esmtp, pri=90253,
        quarantine=typoguard: amry.mi...' of army swapped), stat=quarantined                 (held)
    ... 6B7FNii9032474: to=frank@arny.mil, ctladdr=alice@army.mil (0/0), delay=..., stat=Sent (...)
    ... 6B7FTsff003827: 6B7FTvGk003863: DSN: Cannot send message for 5 days
                              (timed out in the queue: its recipients still deferred bounced)

The time is BSD syslog's (``Dec  7 15:23:44``, the year from the file's modification time), RFC 3339
(``2026-12-07T15:23:44.228306+00:00``, rsyslog's high precision) or RFC 5424 (``<22>1 2026-... mx sm-mta
32469 - - ...``). Lines of other programs (a shared mail.log) are passed over; lines that are not syslog
lines at all, and Sendmail ``to=`` lines without the fields that tell an outcome, are bad lines.

One event per message (queue id) and look-alike recipient: a deferral and a later delivery are one event
with two attempts, and so are a quarantine and, once released (``sendmail -Q -qI<id>``), its delivery. A
quarantine (a milter's hold) applies to the whole envelope: Sendmail logs a ``stat=quarantined`` line per
recipient, so every look-alike recipient of the held message counts as held. A ``to=`` list names several
recipients delivered together (``to=<a@x>,<b@y>``, or unbracketed ``to=a@x,b@y``).

The sender and Message-ID come from the queue id's ``from=`` line: it comes before the deliveries, but
after the RCPT-time refusals of the same transaction (Sendmail logs it when the transaction ends), which
therefore wait for it (``MAX_PENDING``; the runner looks for it past the end of a chunk).

Not counted: refusals of a whole message at end of data (``Milter: data, reject=...``: Sendmail names no
recipient there), and the hand-off of a locally submitted message to the local MTA (``mailer=relay``,
``relay=[127.0.0.1]``: the MTA's own lines tell its fate).
"""

from __future__ import annotations

import re
from collections import OrderedDict
from datetime import UTC, datetime

from typoguard.audit.classify import Classifier, decode
from typoguard.audit.line_scanner import LineScanner, arrivals
from typoguard.audit.model import Outcome, Partial, SourceStats
from typoguard.audit.refusals import by_typoguard
from typoguard.audit.timeparse import iso_time, syslog_time

MAX_SENDERS = 500_000  # queue ids whose sender and Message-ID are remembered
MAX_PENDING = 10_000  # queue ids with refusals waiting for their ``from=`` line
_MAX_TIMES = 100_000  # distinct timestamps remembered

#: Sendmail's program names in syslog: the MTA (Debian and the BSDs call it sm-mta) and the submission queue.
PROGRAMS = (b"sendmail", b"sm-mta", b"sm-msp-queue")

# ``<time> [<host> ][<facility.level> ]<program>[<pid>]: `` (BSD syslog, RFC 3339 or ``journalctl -o
# short-unix`` seconds since the epoch, perhaps a <PRI>; a syslog daemon may leave the host name out)
_HEAD = re.compile(
    rb"^(?:<\d{1,3}>)?(?:([A-Z][a-z]{2}) +(\d{1,2}) (\d\d:\d\d:\d\d)(?:\.\d+)?"
    rb"|(\d{4}-\d\d-\d\d(?:T\S+| \d\d:\d\d:\d\d(?:[.,]\d+)?(?: ?(?:[+-]\d\d:?\d\d|Z))?)"
    rb"|\d{9,10}(?:\.\d{1,9})?))"
    rb" +(?:\S+ +)?(?:\w+\.\w+ +)?([\w.-]+)\[\d+\]: "
)
_STAMP = re.compile(
    rb"(?:<\d{1,3}>\d{0,2} ?)?(?:[A-Z][a-z]{2} +\d{1,2} \d\d:\d\d:\d\d|\d{4}-\d\d-\d\d[T ]\d\d:|\d{9,10}[. ])"
)
_OURS = re.compile(rb"\b(?:sendmail|sm-mta|sm-msp-queue)\b")
# RFC 5424: ``<22>1 2026-12-07T15:23:44.228306+00:00 mx sm-mta 32469 - - text``
_HEAD_5424 = re.compile(
    rb"^<\d{1,3}>\d{1,2} (\S+) \S+ ([\w.-]+) (?:\d+|-) \S+ "
    rb"(?:-|(?:\[(?:[^\]\\\n]|\\.)*\])+) (?:\xef\xbb\xbf)?"
)
_QUEUE_ID = re.compile(rb"([0-9A-Za-z]{6,20}): ")
_FROM = re.compile(rb"from=(<[^>\n]*>|[^,\s]*),")
_MSGID = re.compile(rb", msgid=(<[^>\n]*>|[^,\s]*)")
# The end of a ``to=`` list: the next field. Recipients are ``<...>`` or bare words, comma-separated.
_NEXT_FIELD = re.compile(rb", [a-z]+=")
_RECIPIENT = re.compile(rb"<([^>\n]*)>|([^,<>\s]+)")
_RULESET_RCPT = re.compile(rb"ruleset=check_rcpt, arg1=<?([^,>\s]*)>?, ")
# The queue id of the returned message (the DSN), then Sendmail's word for a message that timed out in the
# queue (``Timeout.queuereturn``); its delay warnings read ``DSN: Warning: could not send message for ...``.
_EXPIRED = re.compile(rb"[0-9A-Za-z]{6,20}: DSN: Cannot send message for ")
_LOOPBACK = (b"[127.", b"localhost", b"[IPv6:::1]", b"[::1]")
# For ``lookback``: the ``from=`` lines in the bytes before a chunk.
_ARRIVAL = re.compile(rb" ([0-9A-Za-z]{6,20}): from=(<[^>\n]*>|[^,\s]*),([^\n]*)")
_MISS = object()


class SendmailScanner(LineScanner):
    fmt = "sendmail"

    def __init__(self, classifier: Classifier, source: str, reference: datetime, stats: SourceStats) -> None:
        super().__init__(source, stats)
        self._hit = classifier.recipient_hit
        self._reference = reference
        self._times: dict[bytes, datetime | None] = {}
        self.senders: dict[bytes, bytes] = {}
        self.message_ids: dict[bytes, bytes] = {}
        # refusals waiting for their message's from= line (oldest first: dropping it is O(1))
        self._pending: OrderedDict[bytes, list[Partial]] = OrderedDict()

    def feed(self, lines: list[bytes]) -> None:
        for line in lines:
            m = _HEAD.match(line)
            if m is not None:
                program = m[5]
                stamp = m[4] if m[4] is not None else m[1] + b" " + m[2] + b" " + m[3]
            else:
                m = _HEAD_5424.match(line)
                if m is None:
                    # Not a syslog line, or a Sendmail line cut short: bad. Another program's line of another
                    # shape (a shared mail log): passed over.
                    if line.strip() and (
                        _STAMP.match(line) is None or _OURS.search(line, 0, 200) is not None
                    ):
                        self.stats.bad(self.source, line)
                    continue
                program, stamp = m[2], m[1]
            if program not in PROGRAMS:
                continue  # another program's line in a shared mail log
            q = _QUEUE_ID.match(line, m.end())
            if q is None:
                continue  # daemon start, connections, TLS, ...: no message
            self._text(line, q.end(), q[1], stamp)

    def _text(self, line: bytes, at: int, qid: bytes, stamp: bytes) -> None:
        """The part of a Sendmail line after ``QID: ``."""
        if line.startswith(b"from=", at):
            self._arrival(line, at, qid)
        elif line.startswith(b"to=", at):
            self._delivery(line, at, qid, stamp)
        elif line.startswith(b"Milter: to=", at):
            self._refusal(line, at + 8, qid, stamp)
        elif _EXPIRED.match(line, at):
            self.expired.add((qid.decode("ascii"),))  # given up: recipients still deferred bounced
        elif line.startswith(b"ruleset=check_rcpt, ", at):
            found = _RULESET_RCPT.match(line, at)
            reject = line.find(b", reject=", at)
            if found is None or reject < 0:
                if reject >= 0:
                    self.stats.bad(self.source, line)
                return
            self._refused(found[1], line[reject + 9 :], qid, stamp)

    def _arrival(self, line: bytes, at: int, qid: bytes) -> None:
        m = _FROM.match(line, at)
        if m is None:
            self.stats.bad(self.source, line)
            return
        sender = m[1].removeprefix(b"<").removesuffix(b">")
        found = _MSGID.search(line, m.end())
        message_id = found[1] if found is not None else b""
        senders = self.senders
        senders[qid] = sender
        if message_id:
            self.message_ids[qid] = message_id
        waiting = self._pending.pop(qid, None)
        if waiting:
            text = decode(sender) or "<>"
            for partial in waiting:
                partial.sender = text
                partial.message_id = self.message_id_of(message_id)
        if len(senders) > MAX_SENDERS:
            for old in list(senders)[: MAX_SENDERS // 10]:
                del senders[old]
                self.message_ids.pop(old, None)

    def _recipients(self, line: bytes, at: int) -> tuple[list[bytes], int] | None:
        """The recipients of the ``to=`` list at ``at`` and where the list ends (at ``, field=``)."""
        end = _NEXT_FIELD.search(line, at)
        if end is None:
            return None
        found = [m[1] if m[1] is not None else m[2] for m in _RECIPIENT.finditer(line, at + 3, end.start())]
        return found, end.start()

    def _delivery(self, line: bytes, at: int, qid: bytes, stamp: bytes) -> None:
        """``to=<r>[,<r2>...], ..., [dsn=x.y.z, ][reply=..., ]stat=...``: one partial per look-alike."""
        listed = self._recipients(line, at)
        stat_at = line.rfind(b", stat=")
        if listed is None or stat_at < 0:
            self.stats.bad(self.source, line)
            return
        recipients, end = listed
        hits = [(r, hit) for r in recipients if (hit := self._hit(r)) is not None]
        if not hits:
            return
        stat = line[stat_at + 7 :]
        fields = line[end:stat_at]
        if b", mailer=relay," in fields and _field(fields, b"relay").startswith(_LOOPBACK):
            return  # a local submission handed to the local MTA: its own lines tell the outcome
        reply = _field(fields, b"reply")
        if stat.startswith(b"Sent"):
            outcome = Outcome.DELIVERED
        elif stat.startswith(b"quarantined"):
            outcome = Outcome.HELD
        elif stat.startswith(b"Deferred"):
            outcome = Outcome.DEFERRED
        elif stat.startswith(b"queued"):
            return  # accepted into the queue, not yet tried: no attempt
        elif _field(fields, b"dsn").startswith(b"4"):
            outcome = Outcome.DEFERRED
        else:
            outcome = Outcome.BOUNCED
        detail = (reply or stat)[:200]
        if outcome is Outcome.HELD:
            detail = _field(fields, b"quarantine")[:200] or detail
        when = self._time(stamp)
        mid = qid.decode("ascii")
        sender = self.senders.get(qid)
        text = (decode(sender) or "<>") if sender is not None else None
        message_id = self.message_id_of(self.message_ids.get(qid))
        for rcpt, hit in hits:
            final = outcome
            if outcome is Outcome.BOUNCED and by_typoguard(reply + b" " + stat, hit):
                final = Outcome.REJECTED_BY_TYPOGUARD  # refused by typoguard on a later hop
            recipient = decode(rcpt)
            key = (mid, recipient.lower())
            self._add(key, when, text, recipient, hit, final, mid, message_id, decode(detail).strip())

    def _refusal(self, line: bytes, at: int, qid: bytes, stamp: bytes) -> None:
        """``Milter: to=<r>, reject=550 5.1.2 ...``: a milter refused the recipient at RCPT."""
        listed = self._recipients(line, at)
        if listed is None or not line.startswith(b", reject=", listed[1]):
            self.stats.bad(self.source, line)
            return
        recipients, end = listed
        for rcpt in recipients:
            self._refused(rcpt, line[end + 9 :], qid, stamp)

    def _refused(self, rcpt: bytes, text: bytes, qid: bytes, stamp: bytes) -> None:
        hit = self._hit(rcpt)
        if hit is None:
            return
        outcome = Outcome.REJECTED_BY_TYPOGUARD if by_typoguard(text, hit) else Outcome.REJECTED
        recipient = decode(rcpt)
        detail = decode(text[:200]).strip()
        when = self._time(stamp)
        if qid == b"NOQUEUE":  # before the transaction had an id (older Sendmail): self-contained
            self._add(None, when, "?", recipient, hit, outcome, "", "", detail)
            return
        mid = qid.decode("ascii")
        sender = self.senders.get(qid)  # usually not yet: the from= line ends the transaction
        text_sender = (decode(sender) or "<>") if sender is not None else None
        message_id = self.message_id_of(self.message_ids.get(qid))
        key = (mid, recipient.lower())
        partial = self._add(key, when, text_sender, recipient, hit, outcome, mid, message_id, detail)
        if sender is None:
            self._pending.setdefault(qid, []).append(partial)
            while len(self._pending) > MAX_PENDING:  # a transaction whose from= line never came
                self._pending.popitem(last=False)

    def _time(self, stamp: bytes) -> datetime | None:
        t = self._times.get(stamp, _MISS)
        if t is _MISS:
            if stamp[4:5] == b"-":
                t = iso_time(stamp.decode("ascii", "replace"))
            elif stamp[:1].isdigit():
                t = datetime.fromtimestamp(float(stamp), UTC)
            else:
                month, day, hms = stamp.split(b" ")
                t = syslog_time(month, day, hms, self._reference)
            if len(self._times) >= _MAX_TIMES:
                self._times.clear()
            self._times[stamp] = t
        return t  # type: ignore[return-value]

    def unresolved(self) -> list[tuple[Partial, int]]:
        """Partials whose sender or Message-ID may be on a ``from=`` line before this chunk (offset 0: the
        chunk itself was searched already)."""
        return [(p, 0) for p in self.partials if p.sender is None or not p.message_id]

    def waiting(self) -> set[bytes]:
        """Queue ids of refusals still waiting for their ``from=`` line at the end of the task."""
        return set(self._pending)

    def resolve_ahead(self, later: bytes) -> None:
        """Give the waiting refusals the sender and Message-ID of their ``from=`` line in ``later``, the
        bytes after this task (the line that ends their transaction, logged just after them)."""
        senders, message_ids = self.lookback(later, set(self._pending))
        for qid, sender in senders.items():
            for partial in self._pending.pop(qid, ()):
                partial.sender = decode(sender) or "<>"
                partial.message_id = self.message_id_of(message_ids.get(qid))

    @staticmethod
    def message_id_of(raw: bytes | None) -> str:
        return decode(raw) if raw else ""

    @staticmethod
    def lookback(earlier: bytes, wanted: set[bytes]) -> tuple[dict[bytes, bytes], dict[bytes, bytes]]:
        """(queue id -> sender, queue id -> Message-ID) of the ``from=`` lines before a chunk."""
        senders, message_ids = arrivals(earlier, wanted, _ARRIVAL, _MSGID)
        return {q: s.removeprefix(b"<").removesuffix(b">") for q, s in senders.items()}, message_ids


def _field(fields: bytes, name: bytes) -> bytes:
    """The value of ``, name=value`` in ``fields`` (up to the next ``, field=``), or b""."""
    start = fields.find(b", " + name + b"=")
    if start < 0:
        return b""
    start += len(name) + 3
    end = _NEXT_FIELD.search(fields, start)
    return fields[start : end.start() if end is not None else len(fields)]
