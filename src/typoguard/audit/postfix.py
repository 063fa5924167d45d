"""Postfix logs: syslog (``Nov 26 16:47:38 host postfix/smtp[1]: ...``), RFC 3339 syslog, RFC 5424 syslog
(``<22>1 2026-11-26T16:47:38Z host postfix/smtp 1 - - ...``) and the ``maillog_file`` format written by
``postlogd`` (the same shape as syslog's).

What counts, per recipient at a look-alike domain:

* ``QID: to=<r>, relay=..., status=sent|deferred|bounced|expired`` from a delivery agent (smtp, lmtp,
  local, virtual, pipe, error, discard). The envelope sender comes from the earlier
  ``QID: from=<s>, size=...`` line of qmgr (or ``QID: uid=N from=<s>`` of pickup) with the same queue id,
  the Message-ID from cleanup's ``QID: message-id=<...>``. ``status=sent`` from ``postfix/discard`` is
  ``discarded`` (accepted, then dropped); a bounce with typoguard's text (``refusals``) is typoguard's.
* ``NOQUEUE: reject: RCPT from ...: <text>; from=<s> to=<r> ...`` (and ``hold:``, ``discard:``,
  ``milter-reject:``), refused or held at SMTP time; ``rejected-by-typoguard`` when the text is typoguard's.
* ``QID: from=<s>, status=expired, returned to sender``: the message's deferred recipients bounced.

Speed: a block of a few MiB is searched for each kind of line with a regular expression that starts with a
literal (``: to=<``, ``]: QID: from=<``, ``; from=<``, ``: removed``), which the regex engine scans for in
C; senders and Message-IDs are gathered by ``findall`` into dicts, so no Python code runs per line for
them, nor for any other line but ``to=<``. Only lines to a look-alike domain are parsed in full (classic
syslog in one match, timestamps cached), and the look-alike decision is cached per domain. Within a
block, senders are collected before deliveries are read and removals applied after, which keeps the log's
order for every message whose lines do not repeat a queue id within one block. Memory: queue id ->
sender and Message-ID are kept until qmgr logs ``QID: removed``; past ``MAX_SENDERS`` the oldest go.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime

from typoguard.audit.classify import Classifier, decode
from typoguard.audit.model import Hit, Outcome, Partial, SourceStats
from typoguard.audit.refusals import by_typoguard
from typoguard.audit.timeparse import iso_time, syslog_time

MAX_SENDERS = 500_000  # open queue ids remembered (sender and Message-ID); ~200 bytes each
_MAX_TIMES = 100_000  # distinct timestamps remembered (a log has many lines per second)

_HEAD = re.compile(
    rb"^(?:<\d+>)?(?:(\w{3}) +(\d{1,2}) (\d\d:\d\d:\d\d(?:\.\d+)?)"
    rb"|(\d{4}-\d\d-\d\d(?:T\S+| \d\d:\d\d:\d\d(?:[.,]\d+)?(?: ?(?:[+-]\d\d:?\d\d|Z))?)))"
    rb" +(\S+) +(?:\S+ +)?([\w.-]+(?:/[\w.-]+)*)\[\d+\]: "
)
# RFC 5424 syslog (rsyslog's RSYSLOG_SyslogProtocol23Format, syslog-ng's syslog-protocol):
# ``<22>1 2026-11-26T16:47:38.123+00:00 mx1 postfix/smtp 1235 - - 7F2A1C3D4E: to=<...>``.
_HEAD_5424 = re.compile(
    rb"^<\d{1,3}>\d{1,2} (\S+) (\S+) ([\w.-]+(?:/[\w.-]+)*) (?:\d+|-) \S+ "
    rb"(?:-|(?:\[(?:[^\]\\]|\\.)*\])+) (?:\xef\xbb\xbf)?"
)
_DELIVERY = re.compile(
    rb"([0-9A-Za-z]+): to=<([^>]*)>,(?: orig_to=<[^>]*>,)? relay=([^,]*),.*? status=([a-z]+)(?: \((.*)\))?"
)
# The whole delivery line of classic syslog in one match (time, host, program, queue id, status, detail):
# the common case, read without cutting the line out of the block. Anything else takes the general path.
_SYSLOG_DELIVERY = re.compile(
    rb"(?:<\d{1,3}>)?([A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d)(?:\.\d+)? (\S+) ([\w.-]+(?:/[\w.-]+)*)\[\d+\]: "
    rb"([0-9A-Za-z]+): to=<[^>\n]*>,(?: orig_to=<[^>\n]*>,)? relay=[^,\n]*,[^\n]*? status=([a-z]+)"
    rb"(?: \(([^\n]*)\))?"
)
# smtpd (``RCPT from host[addr]: text``) and cleanup (``header Subject: ... from host[addr]; ...``) actions.
_SMTPD = re.compile(
    rb"(NOQUEUE|[0-9A-Za-z]+): (reject|hold|discard|milter-reject): (.*); from=<([^>]*)> to=<([^>]*)>"
)
_CLIENT_PREFIX = re.compile(rb"^[A-Z-]+ from (?:\S*?\[[^\]]*\](?::\d+)?|\S+?): ")
# Block scanners: each starts with a literal, so the engine skips ahead in C.
_SENDER = re.compile(rb": (?:uid=\d+ )?from=<([^>\n]*)>")
_MESSAGE_ID = re.compile(rb": message-id=(\S*)")
_EXPIRED = re.compile(rb": from=<[^>\n]*>, status=expired")
_TO = re.compile(rb"to=<([^>\n]*)>")  # ": to=<" of deliveries and "> to=<" of smtpd actions: one pass
_REMOVED = re.compile(rb": removed\r?$", re.M)
# The same for lines with ``name[pid]: `` before the queue id (every format but RFC 5424), each anchored on
# its program's name (``qmgr[``, ``cleanup[``), so the engine stops only at those lines: (queue id, text)
# pairs gathered by findall, without a Python step per line. qmgr logs ``from=`` for every message it
# schedules, including those pickup received.
_QMGR = re.compile(rb"qmgr\[\d+\]: ([0-9A-Za-z]+): (from=<[^>\n]*>(?:, status=expired)?|removed)")
_CLEANUP_MESSAGE_ID = re.compile(rb"cleanup\[\d+\]: ([0-9A-Za-z]+): message-id=(\S*)")
# A line that does not start like a log line (syslog, RFC 3339, or with a <priority>) is a bad line.
_GOOD_START = re.compile(rb"[A-Z][a-z]{2} [ \d]\d |\d{4}-\d\d-\d\d[T ]|<\d|\r?\n|\Z")
# A newline before a bad line, or before a ``<PRI>`` line (whose block then takes the general path).
_BAD_OR_PRI_AFTER_NEWLINE = re.compile(rb"\n(?![A-Z][a-z]{2} [ \d]\d |\d{4}-\d\d-\d\d[T ]|\r?\n|\Z)")

_STATUS = {
    b"sent": Outcome.DELIVERED,
    b"deferred": Outcome.DEFERRED,
    b"bounced": Outcome.BOUNCED,
    b"expired": Outcome.BOUNCED,
}
_SMTPD_ACTION = {b"reject": Outcome.REJECTED, b"milter-reject": Outcome.REJECTED, b"hold": Outcome.HELD}
_MISS = object()


def _line_at(block: bytes, pos: int) -> bytes:
    end = block.find(b"\n", pos)
    return block[block.rfind(b"\n", 0, pos) + 1 : end if end >= 0 else len(block)]


def _token_before(block: bytes, pos: int) -> bytes:
    """The word that ends at ``pos`` (the queue id before ``: from=<``)."""
    return block[block.rfind(b" ", 0, pos) + 1 : pos]


def ids_and_values(block: bytes, general: bool) -> tuple[dict[bytes, bytes], dict[bytes, bytes], list[bytes]]:
    """(queue id -> envelope sender, queue id -> Message-ID, queue ids removed) of the qmgr ``from=``,
    cleanup ``message-id=`` and qmgr ``removed`` lines in ``block``; a later line wins. ``general``: the
    block has ``<PRI>`` lines, read with the scan that does not rely on ``[pid]: ``."""
    if general:
        senders = {_token_before(block, m.start()): m[1] for m in _SENDER.finditer(block)}
        message_ids = {_token_before(block, m.start()): m[1] for m in _MESSAGE_ID.finditer(block)}
        removed = [_token_before(block, m.start()) for m in _REMOVED.finditer(block)]
        return senders, message_ids, removed
    senders = {}
    removed = []
    for qid, text in _QMGR.findall(block):
        if text == b"removed":
            removed.append(qid)
        else:
            senders[qid] = text[6 : text.index(b">", 6)]
    return senders, dict(_CLEANUP_MESSAGE_ID.findall(block)), removed


def _message_id(raw: bytes | None) -> str:
    return "" if raw is None or raw == b"<>" else decode(raw)


class PostfixScanner:
    """Feed it blocks of whole lines; collect ``partials`` (look-alike recipients) and ``expired`` ids."""

    fmt = "postfix"

    def __init__(self, classifier: Classifier, source: str, reference: datetime, stats: SourceStats) -> None:
        self._classifier = classifier
        self.source = source
        self.reference = reference
        self.stats = stats
        self.partials: list[Partial] = []
        self.expired: set[tuple[str, ...]] = set()
        # Partials whose sender (or Message-ID) line was not found in this block or the one before, with
        # their offset in the task: the runner looks further back for them.
        self.missing: list[tuple[Partial, int]] = []
        self._previous = b""  # the block before this one
        self._offset = 0  # bytes fed before this block
        self._found: dict[bytes, tuple[bytes | None, bytes | None]] = {}  # queue id -> (sender, Message-ID)
        self._times: dict[object, datetime | None] = {}

    def feed(self, block: bytes) -> None:
        lines = block.count(b"\n")
        self.stats.lines += lines + (0 if block.endswith(b"\n") else 1)
        general = self._bad_lines(block, lines)
        if general or b", status=expired" in block:
            self._expired(block)
        cache = self._classifier.cache
        assess = self._classifier.domain_hit
        find = block.find
        pos = find(b"to=<")
        while pos >= 0:
            before = block[pos - 2 : pos]
            # ": to=<" of a delivery, "> to=<" of an smtpd/cleanup action; not orig_to=<
            if before == b": " or before == b"> ":  # noqa: PLR1714 - two compares beat a set here
                end = find(b">", pos + 4)
                rcpt = block[pos + 4 : end] if end >= 0 else b"\n"
                if b"\n" not in rcpt:
                    at = rcpt.rfind(b"@")
                    domain = rcpt[at + 1 :] if at >= 0 else b""
                    hit = cache.get(domain, _MISS)
                    if hit is _MISS:
                        hit = assess(domain) if domain else None
                    if hit is not None:
                        if before == b": ":
                            self._delivery(block, pos, rcpt, hit, general)  # type: ignore[arg-type]
                        elif find(b"; from=<", block.rfind(b"\n", 0, pos) + 1, pos) >= 0:
                            self._smtpd(block, _line_at(block, pos), rcpt, hit)  # type: ignore[arg-type]
            pos = find(b"to=<", pos + 4)
        self._previous = block
        self._offset += len(block)

    def _expired(self, block: bytes) -> None:
        for m in _EXPIRED.finditer(block):
            head = self._head(_line_at(block, m.start()))
            qid = _token_before(block, m.start())
            self.expired.add((head[1] if head else "", qid.decode("ascii", "replace")))

    def _bad_lines(self, block: bytes, lines: int) -> bool:
        """Count the lines that do not start like a log line; True if some start with ``<PRI>``.

        Fast path: when the first and last lines are syslog lines of one month (``Nov ``) or RFC 3339 lines
        of one year (``2026-``), and every newline is followed by that, there is nothing to look at."""
        if lines and (block[3:4] == b" " or block[4:5] == b"-") and _GOOD_START.match(block):
            lead = block[:4] if block[3:4] == b" " else block[:5]
            last = block.rfind(b"\n", 0, len(block) - 1) + 1
            inner = lines - (1 if block.endswith(b"\n") else 0)
            if block.startswith(lead, last) and block.count(b"\n" + lead) == inner:
                return False
        general = False
        if not _GOOD_START.match(block):
            self._bad(_line_at(block, 0))
        if block.startswith(b"<"):
            general = True
        for m in _BAD_OR_PRI_AFTER_NEWLINE.finditer(block):
            if block.startswith(b"<", m.end()) and _GOOD_START.match(block, m.end()):
                general = True
            else:
                self._bad(_line_at(block, m.end()))
        return general

    def _bad(self, line: bytes) -> None:
        if line.strip():
            self.stats.bad(self.source, line)

    def _time(self, key: object, parse: Callable[[], datetime | None]) -> datetime | None:
        times = self._times
        t = times.get(key, _MISS)
        if t is _MISS:
            if len(times) >= _MAX_TIMES:
                times.clear()
            t = times[key] = parse()
        return t  # type: ignore[return-value]

    def _head(self, line: bytes) -> tuple[datetime | None, str, bytes] | None:
        """(time, host, program) of a syslog, RFC 3339 or RFC 5424 line; None for anything else."""
        m = _HEAD.match(line)
        if m is None:
            m = _HEAD_5424.match(line)
            if m is None:
                return None
            text = m[1]
            t = self._time(text, lambda: iso_time(text.decode("ascii", "replace")))
            return t, m[2].decode("ascii", "replace"), m[3]
        if m[1] is not None:
            month, day, hms = m[1], m[2], m[3]
            t = self._time((month, day, hms), lambda: syslog_time(month, day, hms, self.reference))
        else:
            text = m[4]
            t = self._time(text, lambda: iso_time(text.decode("ascii", "replace")))
        return t, m[5].decode("ascii", "replace"), m[6]

    def _syslog_time(self, stamp: bytes) -> datetime | None:
        """``Nov  1 00:00:02`` (as matched by ``_SYSLOG_DELIVERY``) as a datetime, cached per second."""
        times = self._times
        t = times.get(stamp, _MISS)
        if t is _MISS:
            if len(times) >= _MAX_TIMES:
                times.clear()
            t = times[stamp] = syslog_time(stamp[:3], stamp[4:6].lstrip(), stamp[7:], self.reference)
        return t  # type: ignore[return-value]

    def _malformed(self, line: bytes) -> None:
        # A line that does not even start like a log line was counted already by the bad-line scan.
        if _GOOD_START.match(line):
            self._bad(line)

    def _ids(self, block: bytes, qid: bytes, pos: int) -> tuple[bytes | None, bytes | None]:
        """(sender, Message-ID) of queue id ``qid``: from the last qmgr ``from=`` and cleanup
        ``message-id=`` lines before ``pos`` in this block or the one before (qmgr logs ``from=`` again
        each time a message enters the active queue, so it is close to every delivery of it), else from an
        earlier recipient of the same message; None where not found."""
        needle = b" " + qid + b": from=<"
        where, i = block, block.rfind(needle, 0, pos)
        if i < 0:
            where, i = self._previous, self._previous.rfind(needle)
        if i < 0:
            return self._found.get(qid, (None, None))
        j = i + len(needle)
        sender = where[j : where.find(b">", j)]
        mneedle = b" " + qid + b": message-id="
        k = where.rfind(mneedle, 0, i)
        if k < 0 and where is block:
            where, k = self._previous, self._previous.rfind(mneedle)
        message_id = None
        if k >= 0:
            k += len(mneedle)
            message_id = where[k : k + 1000].split(None, 1)[0] if where[k : k + 1].strip() else b""
        found = self._found
        if len(found) >= MAX_SENDERS:
            found.clear()
        found[qid] = (sender, message_id)
        return sender, message_id

    def _delivery(self, block: bytes, pos: int, rcpt: bytes, hit: Hit, general: bool) -> None:
        start = block.rfind(b"\n", 0, pos) + 1
        end = block.find(b"\n", pos)
        if end < 0:
            end = len(block)
        fast = None if general else _SYSLOG_DELIVERY.match(block, start, end)
        if fast is not None:
            t = self._syslog_time(fast[1])
            host, prog, qid_raw, status, detail = (
                fast[2].decode("ascii", "replace"),
                fast[3],
                fast[4],
                fast[5],
                fast[6],
            )
        else:
            line = block[start:end]
            head = self._head(line)
            m = _DELIVERY.search(line)
            if head is None or m is None:
                self._malformed(line)
                return
            t, host, prog = head
            qid_raw, status, detail = m[1], m[4], m[5]
        outcome = _STATUS.get(status)
        if outcome is None:  # "deliverable"/"undeliverable": address verification probes, not mail
            return
        if outcome is Outcome.DELIVERED and prog.endswith(b"/discard"):
            outcome = Outcome.DISCARDED  # accepted, then dropped by the discard(8) transport
        elif outcome is Outcome.BOUNCED and status == b"bounced" and detail and by_typoguard(detail, hit):
            outcome = Outcome.REJECTED_BY_TYPOGUARD  # typoguard refused it on a later hop
        qid = qid_raw.decode("ascii", "replace")
        sender, message_id = self._ids(block, qid_raw, start)
        recipient = decode(rcpt)
        partial = Partial(
            (host, qid, recipient.lower()),
            t,
            (decode(sender) or "<>") if sender is not None else None,
            recipient,
            hit,
            outcome,
            1,
            self.source,
            self.fmt,
            qid,
            _message_id(message_id),
            _short(detail),
        )
        self.partials.append(partial)
        if sender is None or message_id is None:
            self.missing.append((partial, self._offset + start))

    def _smtpd(self, block: bytes, line: bytes, rcpt: bytes, hit: Hit) -> None:
        m = _SMTPD.search(line)
        if m is None:  # header/body-check warnings, "filter:", "redirect:": not a refusal
            if b": reject: " in line or b": hold: " in line:
                self._malformed(line)
            return
        head = self._head(line)
        if head is None:
            self._malformed(line)
            return
        t, host, _prog = head
        text = _CLIENT_PREFIX.sub(b"", m[3])
        outcome = _SMTPD_ACTION.get(m[2], Outcome.DISCARDED)
        if outcome is Outcome.REJECTED and by_typoguard(text, hit):
            outcome = Outcome.REJECTED_BY_TYPOGUARD
        qid = m[1].decode("ascii", "replace")
        recipient = decode(rcpt)
        queued = qid != "NOQUEUE"
        # A hold keeps the message, which may be released and delivered later: join it with its queue id.
        key = (host, qid, recipient.lower()) if queued and outcome is Outcome.HELD else None
        message_id = None
        if queued:  # cleanup's message-id= line comes before its header/body actions
            line_start = block.find(line)
            _sender, message_id = self._ids(block, m[1], line_start if line_start >= 0 else len(block))
        self.partials.append(
            Partial(
                key=key,
                time=t,
                sender=decode(m[4]) or "<>",
                recipient=recipient,
                hit=hit,
                outcome=outcome,
                attempts=1,
                source=self.source,
                fmt=self.fmt,
                queue_id=qid if queued else "",
                message_id=_message_id(message_id),
                detail=_short(text),
            )
        )

    def unresolved(self) -> list[tuple[Partial, int]]:
        """Partials whose sender or Message-ID line was not found nearby, with their offset in the task."""
        return [(p, at) for p, at in self.missing if p.sender is None or not p.message_id]

    @staticmethod
    def message_id_of(raw: bytes | None) -> str:
        return _message_id(raw)

    @staticmethod
    def lookback(earlier: bytes, wanted: set[bytes]) -> tuple[dict[bytes, bytes], dict[bytes, bytes]]:
        """(queue id -> sender, queue id -> Message-ID) of the ``wanted`` queue ids in ``earlier`` bytes
        (the last line wins): searched backwards per queue id when there are few, else in one scan."""
        if len(wanted) > 64:
            general = earlier.startswith(b"<") or b"\n<" in earlier
            all_senders, all_ids, _removed = ids_and_values(earlier, general)
            return (
                {q: all_senders[q] for q in wanted & all_senders.keys()},
                {q: all_ids[q] for q in wanted & all_ids.keys()},
            )
        senders: dict[bytes, bytes] = {}
        message_ids: dict[bytes, bytes] = {}
        for qid in wanted:
            i = earlier.rfind(b" " + qid + b": from=<")
            if i >= 0:
                i += len(qid) + 9
                senders[qid] = earlier[i : earlier.find(b">", i)]
            i = earlier.rfind(b" " + qid + b": message-id=")
            if i >= 0:
                i += len(qid) + 14
                value = earlier[i : earlier.find(b"\n", i)]
                message_ids[qid] = value.split(None, 1)[0] if value.strip() else b""
        return senders, message_ids


def _short(text: bytes | None) -> str:
    if not text:
        return ""
    return decode(text[:200])
