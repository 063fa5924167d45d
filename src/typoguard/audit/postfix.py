"""Postfix logs: syslog (``Nov 26 16:47:38 host postfix/smtp[1]: ...``), RFC 3339 syslog, RFC 5424 syslog
(``<22>1 2026-11-26T16:47:38Z host postfix/smtp 1 - - ...``) and the ``maillog_file`` format written by
``postlogd`` (the same shape as syslog's).

What counts, per recipient at a look-alike domain:

* ``QID: to=<r>, relay=..., status=sent|deferred|bounced|expired`` from a delivery agent (smtp, lmtp,
  local, virtual, pipe, error, discard). The envelope sender comes from the earlier
  ``QID: from=<s>, size=...`` line of qmgr (or ``QID: uid=N from=<s>`` of pickup) with the same queue id.
* ``NOQUEUE: reject: RCPT from ...: <text>; from=<s> to=<r> ...`` (and ``hold:``, ``discard:``,
  ``milter-reject:``), refused or held at SMTP time; ``rejected-by-typoguard`` when the text is typoguard's.
* ``QID: from=<s>, status=expired, returned to sender``: the message's deferred recipients bounced.

Speed: a block of a few MiB is searched for each kind of line with a regular expression that starts with a
literal (``: to=<``, ``: from=<``, ``; from=<``, ``: removed``), which the regex engine scans for in C; no
Python code runs for the other lines. Only lines to a look-alike domain are parsed in full, and the
look-alike decision is cached per domain. Within a block, senders are collected before deliveries are
read and removals applied after, which keeps the log's order for every message whose lines do not repeat a
queue id within one block. Memory: queue id -> sender is kept until qmgr logs ``QID: removed``; past
``MAX_SENDERS`` the oldest are dropped.
"""

from __future__ import annotations

import re
from datetime import datetime

from typoguard.audit.classify import Classifier, decode
from typoguard.audit.model import Hit, Outcome, Partial, SourceStats
from typoguard.audit.timeparse import iso_time, syslog_time

TYPOGUARD_MARKERS = (b"typoguard", b" looks like ")  # what typoguard's rejection texts contain
MAX_SENDERS = 500_000  # open queue ids remembered; ~100 bytes each

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
# smtpd (``RCPT from host[addr]: text``) and cleanup (``header Subject: ... from host[addr]; ...``) actions.
_SMTPD = re.compile(
    rb"(NOQUEUE|[0-9A-Za-z]+): (reject|hold|discard|milter-reject): (.*); from=<([^>]*)> to=<([^>]*)>"
)
_CLIENT_PREFIX = re.compile(rb"^[A-Z-]+ from (?:\S*?\[[^\]]*\](?::\d+)?|\S+?): ")
# Block scanners: each starts with a literal, so the engine skips ahead in C.
_SENDER = re.compile(rb": from=<([^>\n]*)>")
_PICKUP = re.compile(rb": uid=\d+ from=<([^>\n]*)>")
_TO = re.compile(rb": to=<([^>\n]*)>")
_SMTPD_TO = re.compile(rb"; from=<[^>\n]*> to=<([^>\n]*)>")
_REMOVED = re.compile(rb": removed\r?$", re.M)
# A line that does not start like a log line (syslog, RFC 3339, or with a <priority>) is a bad line.
_GOOD_START = re.compile(rb"[A-Z][a-z]{2} [ \d]\d |\d{4}-\d\d-\d\d[T ]|<\d|\r?\n|\Z")
_BAD_AFTER_NEWLINE = re.compile(rb"\n(?![A-Z][a-z]{2} [ \d]\d |\d{4}-\d\d-\d\d[T ]|<\d|\r?\n|\Z)")

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
        self.senders: dict[bytes, bytes] = {}

    def feed(self, block: bytes) -> None:
        self.stats.lines += block.count(b"\n") + (0 if block.endswith(b"\n") else 1)
        self._senders(block)
        cache = self._classifier.cache
        assess = self._classifier.domain_hit
        for pattern, handle in ((_TO, self._delivery), (_SMTPD_TO, self._smtpd)):
            for m in pattern.finditer(block):
                rcpt = m[1]
                domain = rcpt[rcpt.rfind(b"@") + 1 :] if b"@" in rcpt else b""
                hit = cache.get(domain, _MISS)
                if hit is _MISS:
                    hit = assess(domain) if domain else None
                if hit is not None:
                    handle(_line_at(block, m.start()), rcpt, hit)  # type: ignore[arg-type]
        senders = self.senders
        for m in _REMOVED.finditer(block):
            senders.pop(_token_before(block, m.start()), None)
        self._bad_lines(block)

    def _senders(self, block: bytes) -> None:
        senders = self.senders
        for m in _SENDER.finditer(block):
            qid = _token_before(block, m.start())
            senders[qid] = m[1]
            if block.startswith(b", status=expired", m.end()):
                head = self._head(_line_at(block, m.start()))
                self.expired.add((head[1] if head else "", qid.decode("ascii", "replace")))
        for m in _PICKUP.finditer(block):
            senders[_token_before(block, m.start())] = m[1]
        if len(senders) > MAX_SENDERS:
            # Queue ids whose "removed" line never came (log cut, other host): drop the oldest tenth.
            for qid in list(senders)[: MAX_SENDERS // 10]:
                del senders[qid]

    def _bad_lines(self, block: bytes) -> None:
        if not _GOOD_START.match(block):
            self._bad(_line_at(block, 0))
        for m in _BAD_AFTER_NEWLINE.finditer(block):
            self._bad(_line_at(block, m.end()))

    def _bad(self, line: bytes) -> None:
        if line.strip():
            self.stats.bad(self.source, line)

    def _head(self, line: bytes) -> tuple[datetime | None, str, bytes] | None:
        """(time, host, program) of a syslog, RFC 3339 or RFC 5424 line; None for anything else."""
        m = _HEAD.match(line)
        if m is None:
            m = _HEAD_5424.match(line)
            if m is None:
                return None
            return iso_time(m[1].decode("ascii", "replace")), m[2].decode("ascii", "replace"), m[3]
        if m[1] is not None:
            t = syslog_time(m[1], m[2], m[3], self.reference)
        else:
            t = iso_time(m[4].decode("ascii", "replace"))
        return t, m[5].decode("ascii", "replace"), m[6]

    def _malformed(self, line: bytes) -> None:
        # A line that does not even start like a log line was counted already by the bad-line scan.
        if _GOOD_START.match(line):
            self._bad(line)

    def _delivery(self, line: bytes, rcpt: bytes, hit: Hit) -> None:
        head = self._head(line)
        m = _DELIVERY.search(line)
        if head is None or m is None:
            self._malformed(line)
            return
        outcome = _STATUS.get(m[4])
        if outcome is None:  # "deliverable"/"undeliverable": address verification probes, not mail
            return
        t, host, prog = head
        if outcome is Outcome.DELIVERED and prog.endswith(b"/discard"):
            outcome = Outcome.DISCARDED
        qid = m[1].decode("ascii", "replace")
        sender = self.senders.get(m[1])
        recipient = decode(rcpt)
        self.partials.append(
            Partial(
                key=(host, qid, recipient.lower()),
                time=t,
                sender=(decode(sender) or "<>") if sender is not None else None,
                recipient=recipient,
                hit=hit,
                outcome=outcome,
                attempts=1,
                source=self.source,
                fmt=self.fmt,
                message_id=qid,
                detail=_short(m[5]),
            )
        )

    def _smtpd(self, line: bytes, rcpt: bytes, hit: Hit) -> None:
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
        if outcome is not Outcome.HELD and any(k in text.lower() for k in TYPOGUARD_MARKERS):
            outcome = Outcome.REJECTED_BY_TYPOGUARD
        qid = m[1].decode("ascii", "replace")
        recipient = decode(rcpt)
        # A hold keeps the message, which may be released and delivered later: join it with its queue id.
        key = (host, qid, recipient.lower()) if qid != "NOQUEUE" and outcome is Outcome.HELD else None
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
                message_id="" if qid == "NOQUEUE" else qid,
                detail=_short(text),
            )
        )

    def unresolved(self) -> list[Partial]:
        return [p for p in self.partials if p.sender is None]

    @staticmethod
    def sender_pattern(qid: str) -> re.Pattern[bytes]:
        """Finds the sender of ``qid`` in earlier text (when its ``from=`` line is in the previous chunk)."""
        return re.compile(rb" " + re.escape(qid.encode()) + rb": (?:uid=\d+ )?from=<([^>\n]*)>")


def _short(text: bytes | None) -> str:
    if not text:
        return ""
    return decode(text[:200])
