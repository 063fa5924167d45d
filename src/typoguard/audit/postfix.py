"""Postfix logs: syslog (``Nov 26 16:47:38 host postfix/smtp[1]: ...``), RFC 3339 syslog and the
``maillog_file`` format written by ``postlogd``.

What counts, per recipient at a look-alike domain:

* ``QID: to=<r>, relay=..., status=sent|deferred|bounced|expired`` from a delivery agent (smtp, lmtp,
  local, virtual, pipe, error, discard). The envelope sender comes from the earlier
  ``QID: from=<s>, size=...`` line of qmgr (or ``uid=... from=<s>`` of pickup) with the same queue id.
* ``NOQUEUE: reject: RCPT from ...: <text>; from=<s> to=<r> ...`` (and ``hold:``, ``discard:``,
  ``milter-reject:``), refused or held at SMTP time; ``rejected-by-typoguard`` when the text is typoguard's.

Speed: almost every line is dismissed by a substring test; only lines to a look-alike domain reach a
regular expression, and the look-alike decision is cached per domain. Memory: queue id -> sender is kept
only until qmgr logs ``QID: removed``, and the oldest entries are dropped past a bound.
"""

from __future__ import annotations

import re
from datetime import datetime

from typoguard.audit.classify import Classifier, decode
from typoguard.audit.model import Hit, Outcome, Partial, SourceStats
from typoguard.audit.timeparse import MONTHS, iso_time, syslog_time

TYPOGUARD_MARKERS = (b"typoguard", b" looks like ")  # what typoguard's rejection texts contain
MAX_SENDERS = 500_000  # open queue ids remembered; ~100 bytes each

_HEAD = re.compile(
    rb"^(?:<\d+>)?(?:(\w{3}) +(\d{1,2}) (\d\d:\d\d:\d\d(?:\.\d+)?)|(\d{4}-\d\d-\d\dT\S+))"
    rb" +(\S+) +(?:\S+ +)?([\w.-]+(?:/[\w.-]+)*)\[\d+\]: "
)
_DELIVERY = re.compile(
    rb"([0-9A-Za-z]+): to=<([^>]*)>,(?: orig_to=<[^>]*>,)? relay=([^,]*),.*? status=([a-z]+)(?: \((.*)\))?"
)
_SMTPD = re.compile(
    rb"(NOQUEUE|[0-9A-Za-z]+): (reject|hold|discard|milter-reject): \S+ from "
    rb"(?:\S*?\[[^\]]*\](?::\d+)?|\S+?): (.*); from=<([^>]*)> to=<([^>]*)>"
)
_FROM = re.compile(rb"\]: ([0-9A-Za-z]+): (?:uid=\d+ )?from=<([^>]*)>")
_STATUS = {
    b"sent": Outcome.DELIVERED,
    b"deferred": Outcome.DEFERRED,
    b"bounced": Outcome.BOUNCED,
    b"expired": Outcome.BOUNCED,
}
_SMTPD_ACTION = {b"reject": Outcome.REJECTED, b"milter-reject": Outcome.REJECTED, b"hold": Outcome.HELD}


class PostfixScanner:
    """Feed it blocks of lines; collect ``partials`` (look-alike recipients) and ``expired`` queue ids."""

    fmt = "postfix"

    def __init__(self, classifier: Classifier, source: str, reference: datetime, stats: SourceStats) -> None:
        self._hit = classifier.recipient_hit
        self.source = source
        self.reference = reference
        self.stats = stats
        self.partials: list[Partial] = []
        self.expired: set[tuple[str, ...]] = set()
        self.senders: dict[bytes, bytes] = {}

    def feed(self, lines: list[bytes]) -> None:
        senders = self.senders
        for line in lines:
            if b"to=<" in line:
                if b": to=<" in line:
                    self._delivery(line)
                elif b"reject: " in line or b": hold: " in line or b": discard: " in line:
                    self._smtpd(line)
            elif b"from=<" in line:
                m = _FROM.search(line)
                if m is not None:
                    senders[m[1]] = m[2]
                    if b"status=expired" in line:
                        head = _HEAD.match(line)
                        host = head[5].decode("ascii", "replace") if head else ""
                        self.expired.add((host, m[1].decode("ascii", "replace")))
                    if len(senders) > MAX_SENDERS:
                        self._evict()
            elif b": removed" in line:
                i = line.find(b"]: ")
                if i > 0:
                    senders.pop(line[i + 3 : line.find(b":", i + 3)], None)
            elif line[:3] not in MONTHS and not line[:4].isdigit() and line[:1] != b"<" and line.strip():
                self.stats.bad(self.source, line)

    def _evict(self) -> None:
        # Queue ids whose "removed" line never came (log cut, other host): drop the oldest tenth.
        for qid in list(self.senders)[: MAX_SENDERS // 10]:
            del self.senders[qid]

    def _head(self, line: bytes) -> tuple[datetime | None, str, bytes] | None:
        m = _HEAD.match(line)
        if m is None:
            return None
        if m[1] is not None:
            t = syslog_time(m[1], m[2], m[3], self.reference)
        else:
            t = iso_time(m[4].decode("ascii", "replace"))
        return t, m[5].decode("ascii", "replace"), m[6]

    def _delivery(self, line: bytes) -> None:
        j = line.find(b": to=<") + 6
        rcpt = line[j : line.find(b">", j)]
        hit = self._hit(rcpt)
        if hit is None:
            return
        head = self._head(line)
        m = _DELIVERY.search(line)
        if head is None or m is None:
            self.stats.bad(self.source, line)
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

    def _smtpd(self, line: bytes) -> None:
        j = line.rfind(b" to=<") + 5
        rcpt = line[j : line.find(b">", j)]
        hit = self._hit(rcpt)
        if hit is None:
            return
        head = self._head(line)
        m = _SMTPD.search(line)
        if head is None or m is None:
            self.stats.bad(self.source, line)
            return
        t, host, _prog = head
        text = m[3]
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
        return re.compile(rb"\]: " + re.escape(qid.encode()) + rb": (?:uid=\d+ )?from=<([^>]*)>")


def _short(text: bytes | None) -> str:
    if not text:
        return ""
    return decode(text[:200])


__all__ = ["TYPOGUARD_MARKERS", "Hit", "PostfixScanner"]
