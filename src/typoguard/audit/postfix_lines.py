"""Postfix log lines: the one reader of their prefix and fields, for ``typoguard audit`` and ``learn``.

A line is ``<time> <host> <program>[<pid>]: <text>``, in any of these shapes (mixed in one file if need be):

* BSD syslog: ``Nov 26 16:47:38 mx postfix/smtp[123]: ...``, perhaps after a ``<PRI>``, with a field
  (``mail.info``) before the program, or with microseconds (Postfix's own ``maillog_file``);
* ISO 8601 / RFC 3339: ``2026-11-26T16:47:38.123456+01:00`` (rsyslog's high-precision format),
  ``2026-11-26T16:47:38+0100`` (``journalctl -o short-iso``), or with a space for the ``T`` and an optional
  fraction and offset (``2026-11-26 16:47:38.123 +0100``: syslog-ng and rsyslog templates);
* RFC 5424: ``<22>1 2026-11-26T16:47:38Z mx postfix/smtp 123 - - ...``: program and pid as fields,
  structured data, perhaps a BOM before the text (rsyslog's RSYSLOG_SyslogProtocol23Format, syslog-ng).

A journal export (``journalctl -o json``) and container logs (``docker compose logs``) are turned into such
lines before they are read (``unwrap``).

Syslog lines carry no year: it is that of a reference time, the file's modification time (``timeparse``).
The texts that matter:

* a delivery agent's ``QID: to=<r>, [orig_to=<o>, ]relay=..., ..., status=s (detail)``
  (``PostfixLineReader.delivery``);
* qmgr's ``QID: from=<s>, size=...`` and ``QID: removed``, cleanup's ``QID: message-id=<...>``, found for
  a whole block of lines at once (``qmgr_lines``, ``message_ids``) or for one queue id (``rfind_field``);
* smtpd's and cleanup's actions ``QID|NOQUEUE: reject|hold|...: ...; from=<s> to=<r> ...``, a milter's
  included (``milter-reject``, ``milter-hold``, ``milter-discard``) (``SMTPD_ACTION``)
  and qmgr's ``QID: from=<s>, status=expired`` (``EXPIRED``).

The block scans start with a literal (``qmgr[``, ``cleanup[``, ``: from=<``), which the regular-expression
engine looks for in C, so no Python code runs per line for them.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import NamedTuple

from typoguard.audit.timeparse import iso_time, syslog_time

BOM = b"\xef\xbb\xbf"  # an RFC 5424 message may start with it: the text is UTF-8
_MAX_TIMES = 100_000  # distinct timestamps remembered (a log has many lines per second)

# An address inside ``<...>``: up to the first ">", but a quoted local part (RFC 5321: ``"a>b"@example.com``)
# may hold ">"; a lone quote is a character. Possessive: no backtracking into it.
_ADDRESS = rb'(?:[^>"\n]++|"(?:[^"\\\n]++|\\.)*+"|")*+'
# The time is BSD syslog's, ISO 8601's, or seconds since the epoch (``journalctl -o short-unix``); the host
# name may be missing (a syslog daemon told to leave it out), and another field may follow it.
_HEAD = re.compile(
    rb"^(?:<\d+>)?(?:(\w{3}) +(\d{1,2}) (\d\d:\d\d:\d\d(?:\.\d+)?)"
    rb"|(\d{4}-\d\d-\d\d(?:T\S+| \d\d:\d\d:\d\d(?:[.,]\d+)?(?: ?(?:[+-]\d\d:?\d\d|Z))?))"
    rb"|(\d{9,10}(?:\.\d{1,9})?))"
    rb" +(?:(\S+) +)?(?:\S+ +)?([\w.-]+(?:/[\w.-]+)*)\[\d+\]: "
)
# RFC 5424 syslog (rsyslog's RSYSLOG_SyslogProtocol23Format, syslog-ng's syslog-protocol):
# ``<22>1 2026-11-26T16:47:38.123+00:00 mx1 postfix/smtp 1235 - - 7F2A1C3D4E: to=<...>``.
_HEAD_5424 = re.compile(
    rb"^<\d{1,3}>\d{1,2} (\S+) (\S+) ([\w.-]+(?:/[\w.-]+)*) (?:\d+|-) \S+ "
    rb"(?:-|(?:\[(?:[^\]\\]|\\.)*\])+) (?:\xef\xbb\xbf)?"
)
_DELIVERY = re.compile(
    rb"([0-9A-Za-z]+): to=<(" + _ADDRESS + rb")>,(?: orig_to=<" + _ADDRESS + rb">,)? relay=([^,]*),.*? "
    rb"status=([a-z]+)(?: \((.*)\))?"
)
# A delivery line of BSD syslog read in two matches, without cutting the line out of the block: the head
# (time, fraction, host, program, queue id, recipient, up to ``relay=...,``), then, at the first
# `` status=`` after it that is followed by a word, the status and detail. This is what one match with a
# lazy ``[^\n]*? status=`` between them finds, ~4x faster (the engine tries the lazy part char by char).
_SYSLOG_DELIVERY_HEAD = re.compile(
    rb"(?:<\d{1,3}>)?([A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d)(\.\d+)? (\S+) ([\w.-]+(?:/[\w.-]+)*)\[\d+\]: "
    rb"([0-9A-Za-z]+): to=<(" + _ADDRESS + rb")>,(?: orig_to=<" + _ADDRESS + rb">,)? relay=[^,\n]*,"
)
_STATUS_DETAIL = re.compile(rb" status=([a-z]+)(?: \(([^\n]*)\))?")
# smtpd (``RCPT from host[addr]: text``) and cleanup (``header Subject: ... from host[addr]; ...``) actions,
# a milter's (``milter-hold: END-OF-MESSAGE from host[addr]: milter triggers HOLD action; ...``: cleanup
# names only the message's last recipient there) and a before-queue filter's
# (``proxy-reject: END-OF-MESSAGE: ...``).
SMTPD_ACTION = re.compile(
    rb"(NOQUEUE|[0-9A-Za-z]+): "
    rb"(reject|hold|discard|milter-reject|milter-hold|milter-discard|proxy-reject): (.*); "
    rb"from=<([^>]*)> to=<(" + _ADDRESS + rb")>"
)
CLIENT_PREFIX = re.compile(rb"^[A-Z-]+(?: from (?:\S*?\[[^\]]*\](?::\d+)?|\S+?))?: ")
EXPIRED = re.compile(rb": from=<[^>\n]*>, status=expired")
# Block scans for lines of any format: the queue id is the word before the match.
_SENDER = re.compile(rb": (?:uid=\d+ )?from=<([^>\n]*)>")
_MESSAGE_ID = re.compile(rb": message-id=(\S*)")
_REMOVED = re.compile(rb": removed\r?$", re.M)
# The same for lines with ``name[pid]: `` before the queue id (every format but RFC 5424), each anchored on
# its program's name (``qmgr[``, ``cleanup[``), so the engine stops only at those lines: (queue id, text)
# pairs gathered by findall. qmgr logs ``from=`` for every message it schedules, including pickup's.
_QMGR = re.compile(rb"qmgr\[\d+\]: ([0-9A-Za-z]+): (from=<[^>\n]*>(?:, status=expired)?|removed)")
_CLEANUP_MESSAGE_ID = re.compile(rb"cleanup\[\d+\]: ([0-9A-Za-z]+): message-id=(\S*)")
# A line that does not start like a log line (syslog, ISO 8601, or with a <priority>) is a bad line.
GOOD_START = re.compile(rb"[A-Z][a-z]{2} [ \d]\d |\d{4}-\d\d-\d\d[T ]|\d{9,10}[. ]|<\d|\r?\n|\Z")
# A newline before a bad line, or before a ``<PRI>`` line (whose block then takes the general path).
BAD_OR_PRI_AFTER_NEWLINE = re.compile(
    rb"\n(?![A-Z][a-z]{2} [ \d]\d |\d{4}-\d\d-\d\d[T ]|\d{9,10}[. ]|\r?\n|\Z)"
)
_MISS = object()
_SECONDS = {b"%02d" % s: timedelta(seconds=s) for s in range(60)}


class Head(NamedTuple):
    """The prefix of a line: its time (None if it names no real date), host and program (``postfix/smtp``)."""

    time: datetime | None
    host: str
    program: bytes


# A delivery agent's ``QID: to=<recipient>, relay=..., status=status (detail)`` line: (time, host, program,
# queue id, recipient, status, detail). The status is sent, deferred, bounced or expired, or
# deliverable/undeliverable for address probes. A plain tuple: made for every delivery a scan looks at.
DeliveryLine = tuple[datetime | None, str, bytes, bytes, bytes, bytes, bytes | None]


def line_at(block: bytes, pos: int) -> bytes:
    """The line of ``block`` that holds offset ``pos``, without its newline."""
    end = block.find(b"\n", pos)
    return block[block.rfind(b"\n", 0, pos) + 1 : end if end >= 0 else len(block)]


def token_before(block: bytes, pos: int) -> bytes:
    """The word that ends at ``pos`` (the queue id before ``: from=<``), without an RFC 5424 BOM."""
    return block[block.rfind(b" ", 0, pos) + 1 : pos].removeprefix(BOM)


def has_priority_lines(block: bytes) -> bool:
    """Whether some line starts with ``<PRI>``: RFC 5424 lines have no ``name[pid]: `` for the fast scans."""
    return block.startswith(b"<") or b"\n<" in block


def qmgr_lines(block: bytes, general: bool) -> tuple[dict[bytes, bytes], list[bytes]]:
    """(queue id -> envelope sender, queue ids removed) of the ``from=`` and ``removed`` lines in ``block``;
    a later line wins. ``general``: the block has ``<PRI>`` lines, read with the scan that does not rely on
    ``[pid]: `` (and takes pickup's ``uid=N from=<s>`` too)."""
    if general:
        senders = {token_before(block, m.start()): m[1] for m in _SENDER.finditer(block)}
        return senders, [token_before(block, m.start()) for m in _REMOVED.finditer(block)]
    senders = {}
    removed = []
    for qid, text in _QMGR.findall(block):
        if text == b"removed":
            removed.append(qid)
        else:
            senders[qid] = text[6 : text.index(b">", 6)]
    return senders, removed


def message_ids(block: bytes, general: bool) -> dict[bytes, bytes]:
    """Queue id -> Message-ID (``<...>`` as logged, ``b""`` when empty) of cleanup's lines in ``block``."""
    if general:
        return {token_before(block, m.start()): m[1] for m in _MESSAGE_ID.finditer(block)}
    return dict(_CLEANUP_MESSAGE_ID.findall(block))


FROM = b": from=<"
MESSAGE_ID = b": message-id="


def rfind_field(data: bytes, qid: bytes, field: bytes, end: int | None = None) -> int:
    """The offset just after the last ``QID<field>`` (``FROM``, ``MESSAGE_ID``) that ends before ``end``, or
    -1. The queue id follows a space (or the BOM of an RFC 5424 message), so a queue id that ends another
    one is not taken for it."""
    needle = qid + field
    i = data.rfind(needle, 0, end)
    while i > 0 and data[i - 1] != 0x20 and not (i >= 3 and data[i - 3 : i] == BOM):
        i = data.rfind(needle, 0, i)
    return i + len(needle) if i > 0 else -1


def queue_ids_with(data: bytes, field: bytes) -> set[bytes]:
    """The queue ids that ``rfind_field(data, qid, field)`` can find: the word before each ``field``."""
    found = set()
    find = data.find
    i = find(field)
    while i >= 0:
        found.add(token_before(data, i))
        i = find(field, i + len(field))
    return found


def sender_at(data: bytes, pos: int) -> bytes:
    """The address at ``pos``, just after ``from=<``."""
    return data[pos : data.find(b">", pos)]


def message_id_at(data: bytes, pos: int) -> bytes:
    """The Message-ID at ``pos``, just after ``message-id=`` (``b""`` when the line has none)."""
    return data[pos : pos + 1000].split(None, 1)[0] if data[pos : pos + 1].strip() else b""


class PostfixLineReader:
    """Reads the prefix and the delivery fields of Postfix log lines; timestamps are parsed once each.

    ``reference``: the time syslog lines (which have no year) were written at or before: the file's
    modification time. ``fractions``: keep the microseconds of syslog timestamps (``maillog_file``);
    the audit reports them to the second, as it caches them per second.
    """

    def __init__(self, reference: datetime, *, fractions: bool = False) -> None:
        self.reference = reference
        self._fractions = fractions
        self._times: dict[object, datetime | None] = {}
        self._minutes: dict[bytes, datetime | None] = {}  # ``Nov 26 16:47`` -> its time at second 0

    def head(self, line: bytes) -> Head | None:
        """(time, host, program) of a line in any of the formats; None for anything else."""
        m = _HEAD.match(line)
        if m is None:
            m = _HEAD_5424.match(line)
            if m is None:
                return None
            text = m[1]
            t = self._time(text, lambda: iso_time(text.decode("ascii", "replace")))
            return Head(t, m[2].decode("ascii", "replace"), m[3])
        if m[1] is not None:
            month, day, hms = m[1], m[2], m[3]
            t = self._time((month, day, hms), lambda: self._syslog(month, day, hms))
        elif m[4] is not None:
            text = m[4]
            t = self._time(text, lambda: iso_time(text.decode("ascii", "replace")))
        else:
            seconds = m[5]
            t = self._time(seconds, lambda: datetime.fromtimestamp(float(seconds), UTC))
        return Head(t, m[6].decode("ascii", "replace") if m[6] is not None else "", m[7])

    def delivery(self, block: bytes, start: int, end: int, general: bool) -> DeliveryLine | None:
        """The delivery line at ``block[start:end]``, or None when it is not one (a malformed line).

        ``general``: the block has ``<PRI>`` lines; BSD syslog lines without one are read in one match."""
        fast = None if general else _SYSLOG_DELIVERY_HEAD.match(block, start, end)
        if fast is not None:
            find = block.find
            k = find(b" status=", fast.end(), end)
            while k >= 0:
                tail = _STATUS_DETAIL.match(block, k, end)
                if tail is not None:
                    stamp, fraction, host, program, qid, recipient = fast.groups()
                    t = self._times.get(stamp, _MISS)  # cached per second, looked up inline: the hot path
                    if t is _MISS:
                        t = self._second(stamp)
                    if fraction is not None and self._fractions and isinstance(t, datetime):
                        t = _plus_fraction(t, fraction)
                    status, detail = tail.groups()
                    return t, host.decode("ascii", "replace"), program, qid, recipient, status, detail  # type: ignore[return-value]
                k = find(b" status=", k + 1, end)
        line = block[start:end]
        head = self.head(line)
        m = _DELIVERY.search(line)
        if head is None or m is None:
            return None
        return head.time, head.host, head.program, m[1], m[2], m[4], m[5]

    def _second(self, stamp: bytes) -> datetime | None:
        """The time of a BSD syslog stamp (``Nov 26 16:47:38``), remembered per second. A minute's time is
        worked out once (``syslog_time`` costs ~1 us) and its seconds added, when the whole minute falls in
        one year (always, but for the minute of the reference time's year change)."""
        key = stamp[:12]
        if key in self._minutes:
            minute = self._minutes[key]
        else:
            first = syslog_time(stamp[:3], stamp[4:6].lstrip(), stamp[7:12] + b":00", self.reference)
            last = syslog_time(stamp[:3], stamp[4:6].lstrip(), stamp[7:12] + b":59", self.reference)
            minute = first if first is not None and last is not None and first.year == last.year else None
            if len(self._minutes) >= _MAX_TIMES:
                self._minutes.clear()
            self._minutes[key] = minute
        seconds = _SECONDS.get(stamp[13:15])
        if minute is None or seconds is None:
            t = syslog_time(stamp[:3], stamp[4:6].lstrip(), stamp[7:], self.reference)
        else:
            t = minute + seconds
        return self._remember(stamp, t)

    def _syslog(self, month: bytes, day: bytes, hms: bytes) -> datetime | None:
        t = syslog_time(month, day, hms, self.reference)
        if t is not None and self._fractions and len(hms) > 8:
            t = _plus_fraction(t, hms[8:])
        return t

    def _time(self, key: object, parse: Callable[[], datetime | None]) -> datetime | None:
        t = self._times.get(key, _MISS)
        return self._remember(key, parse()) if t is _MISS else t  # type: ignore[return-value]

    def _remember(self, key: object, t: datetime | None) -> datetime | None:
        if len(self._times) >= _MAX_TIMES:
            self._times.clear()
        self._times[key] = t
        return t


def _plus_fraction(t: datetime, fraction: bytes) -> datetime:
    """``t`` with the microseconds of ``.ffffff`` (digits past the sixth are dropped)."""
    return t.replace(microsecond=int(fraction[1:7].ljust(6, b"0")))
