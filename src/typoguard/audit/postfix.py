"""Postfix logs, in every line format ``postfix_lines`` reads: BSD syslog (``Nov 26 16:47:38 host
postfix/smtp[1]: ...``), ISO 8601 / RFC 3339, RFC 5424 (``<22>1 2026-11-26T16:47:38Z host postfix/smtp 1 - -
...``) and the ``maillog_file`` format written by ``postlogd`` (the same shape as syslog's).

What counts, per recipient at a look-alike domain:

* ``QID: to=<r>, relay=..., status=sent|deferred|bounced|expired`` from a delivery agent (smtp, lmtp,
  local, virtual, pipe, error, discard). The envelope sender comes from the earlier
  ``QID: from=<s>, size=...`` line of qmgr (or ``QID: uid=N from=<s>`` of pickup) with the same queue id,
  the Message-ID from cleanup's ``QID: message-id=<...>``. ``status=sent`` from ``postfix/discard`` is
  ``discarded`` (accepted, then dropped); a bounce with typoguard's text (``refusals``) is typoguard's.
* ``NOQUEUE: reject: RCPT from ...: <text>; from=<s> to=<r> ...`` (and ``hold:``, ``discard:``,
  ``milter-reject:``), refused or held at SMTP time; ``rejected-by-typoguard`` when the text is typoguard's.
* ``QID: from=<s>, status=expired, returned to sender``: the message's deferred recipients bounced.

Speed: a block of a few MiB is searched for ``to=<`` with ``bytes.find`` (C); no Python code runs for a
line without it. Only lines to a look-alike domain are parsed in full (BSD syslog in one match, timestamps
cached), and the look-alike decision is cached per domain. A delivery's sender and Message-ID are found by
searching back from its line for ``QID: from=<`` and ``QID: message-id=``, in its block and the one before,
else from an earlier recipient of the same message (at most ``MAX_SENDERS`` queue ids remembered), else by
the runner before the chunk (``lookback``).
"""

from __future__ import annotations

import re
from datetime import datetime

from typoguard.audit.classify import Classifier, decode
from typoguard.audit.line_scanner import LineScanner
from typoguard.audit.model import Hit, Outcome, Partial, SourceStats
from typoguard.audit.postfix_lines import (
    BAD_OR_PRI_AFTER_NEWLINE,
    CLIENT_PREFIX,
    EXPIRED,
    FROM,
    GOOD_START,
    MESSAGE_ID,
    SMTPD_ACTION,
    PostfixLineReader,
    has_priority_lines,
    line_at,
    message_id_at,
    message_ids,
    qmgr_lines,
    rfind_field,
    sender_at,
    token_before,
)
from typoguard.audit.refusals import by_typoguard

MAX_SENDERS = 500_000  # open queue ids remembered (sender and Message-ID); ~200 bytes each

_STATUS = {
    b"sent": Outcome.DELIVERED,
    b"deferred": Outcome.DEFERRED,
    b"bounced": Outcome.BOUNCED,
    b"expired": Outcome.BOUNCED,
}
_SMTPD_ACTION = {b"reject": Outcome.REJECTED, b"milter-reject": Outcome.REJECTED, b"hold": Outcome.HELD}
_MISS = object()
# Every recipient field of a block, found by the regular-expression engine in C: it looks for the literal
# " to=<" as fast as ``bytes.find`` and hands back only (address, domain after its last "@"), ~4x less
# than a loop of ``find`` and slices in Python per ``to=<``. An address without "@" or with a line end
# before ">" is no match. The space before ``to=<`` leaves out ``orig_to=<``.
_RECIPIENT = re.compile(rb" to=<([^>\n]*@([^>\n@]*))>")


def _message_id(raw: bytes | None) -> str:
    return "" if raw is None or raw == b"<>" else decode(raw)


class PostfixScanner(LineScanner):
    """Feed it blocks of whole lines; collect ``partials`` (look-alike recipients) and ``expired`` ids."""

    fmt = "postfix"

    def __init__(self, classifier: Classifier, source: str, reference: datetime, stats: SourceStats) -> None:
        super().__init__(source, stats)
        self._classifier = classifier
        self.reference = reference
        self._lines = PostfixLineReader(reference)
        # Partials whose sender (or Message-ID) line was not found in this block or the one before, with
        # their offset in the task: the runner looks further back for them.
        self.missing: list[tuple[Partial, int]] = []
        self._previous = b""  # the block before this one
        self._offset = 0  # bytes fed before this block
        self._found: dict[bytes, tuple[bytes | None, bytes | None]] = {}  # queue id -> (sender, Message-ID)

    def feed(self, block: bytes) -> None:
        lines = block.count(b"\n")
        self.stats.lines += lines + (0 if block.endswith(b"\n") else 1)
        general = self._bad_lines(block, lines)
        if general or b", status=expired" in block:
            self._expired(block)
        cache = self._classifier.cache
        assess = self._classifier.domain_hit
        for m in _RECIPIENT.finditer(block):
            domain = m[2]
            hit = cache.get(domain, _MISS)
            if hit is _MISS:
                hit = assess(domain) if domain else None
            if hit is None:
                continue
            pos = m.start() + 1  # at "to=<"
            before = block[pos - 2 : pos]
            # ": to=<" of a delivery, "> to=<" of an smtpd/cleanup action
            if before == b": ":
                self._delivery(block, pos, m[1], hit, general)  # type: ignore[arg-type]
            elif before == b"> " and block.find(b"; from=<", block.rfind(b"\n", 0, pos) + 1, pos) >= 0:
                self._smtpd(block, line_at(block, pos), m[1], hit)  # type: ignore[arg-type]
        self._previous = block
        self._offset += len(block)

    def _expired(self, block: bytes) -> None:
        for m in EXPIRED.finditer(block):
            head = self._lines.head(line_at(block, m.start()))
            qid = token_before(block, m.start())
            self.expired.add((head[1] if head else "", qid.decode("ascii", "replace")))

    def _bad_lines(self, block: bytes, lines: int) -> bool:
        """Count the lines that do not start like a log line; True if some start with ``<PRI>``.

        Fast path: when the first and last lines are syslog lines of one month (``Nov ``) or RFC 3339 lines
        of one year (``2026-``), and every newline is followed by that, there is nothing to look at."""
        if lines and (block[3:4] == b" " or block[4:5] == b"-") and GOOD_START.match(block):
            lead = block[:4] if block[3:4] == b" " else block[:5]
            last = block.rfind(b"\n", 0, len(block) - 1) + 1
            inner = lines - (1 if block.endswith(b"\n") else 0)
            if block.startswith(lead, last) and block.count(b"\n" + lead) == inner:
                return False
        general = False
        if not GOOD_START.match(block):
            self._bad(line_at(block, 0))
        if block.startswith(b"<"):
            general = True
        for m in BAD_OR_PRI_AFTER_NEWLINE.finditer(block):
            if block.startswith(b"<", m.end()) and GOOD_START.match(block, m.end()):
                general = True
            else:
                self._bad(line_at(block, m.end()))
        return general

    def _bad(self, line: bytes) -> None:
        if line.strip():
            self.stats.bad(self.source, line)

    def _malformed(self, line: bytes) -> None:
        # A line that does not even start like a log line was counted already by the bad-line scan.
        if GOOD_START.match(line):
            self._bad(line)

    def _ids(self, block: bytes, qid: bytes, pos: int) -> tuple[bytes | None, bytes | None]:
        """(sender, Message-ID) of queue id ``qid``: from the last qmgr ``from=`` and cleanup
        ``message-id=`` lines before ``pos`` in this block or the one before (qmgr logs ``from=`` again
        each time a message enters the active queue, so it is close to every delivery of it), else from an
        earlier recipient of the same message; None where not found."""
        where, j = block, rfind_field(block, qid, FROM, pos)
        if j < 0:
            where, j = self._previous, rfind_field(self._previous, qid, FROM)
        if j < 0:
            return self._found.get(qid, (None, None))
        sender = sender_at(where, j)
        k = rfind_field(where, qid, MESSAGE_ID, j)
        if k < 0 and where is block:
            where, k = self._previous, rfind_field(self._previous, qid, MESSAGE_ID)
        message_id = message_id_at(where, k) if k >= 0 else None
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
        found = self._lines.delivery(block, start, end, general)
        if found is None:
            self._malformed(block[start:end])
            return
        t, host, prog, qid_raw, _rcpt, status, detail = found
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
        text = (decode(sender) or "<>") if sender is not None else None
        key, mid = (host, qid, recipient.lower()), _message_id(message_id)
        partial = self._add(key, t, text, recipient, hit, outcome, qid, mid, _short(detail))
        if sender is None or message_id is None:
            self.missing.append((partial, self._offset + start))

    def _smtpd(self, block: bytes, line: bytes, rcpt: bytes, hit: Hit) -> None:
        m = SMTPD_ACTION.search(line)
        if m is None:  # header/body-check warnings, "filter:", "redirect:": not a refusal
            if b": reject: " in line or b": hold: " in line:
                self._malformed(line)
            return
        head = self._lines.head(line)
        if head is None:
            self._malformed(line)
            return
        t, host, _prog = head
        text = CLIENT_PREFIX.sub(b"", m[3])
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
        sender = decode(m[4]) or "<>"
        queue_id = qid if queued else ""
        self._add(key, t, sender, recipient, hit, outcome, queue_id, _message_id(message_id), _short(text))

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
            general = has_priority_lines(earlier)
            all_senders, _removed = qmgr_lines(earlier, general)
            all_ids = message_ids(earlier, general)
            return (
                {q: all_senders[q] for q in wanted & all_senders.keys()},
                {q: all_ids[q] for q in wanted & all_ids.keys()},
            )
        senders: dict[bytes, bytes] = {}
        ids: dict[bytes, bytes] = {}
        for qid in wanted:
            i = rfind_field(earlier, qid, FROM)
            if i >= 0:
                senders[qid] = sender_at(earlier, i)
            i = rfind_field(earlier, qid, MESSAGE_ID)
            if i >= 0:
                ids[qid] = message_id_at(earlier, i)
        return senders, ids


def _short(text: bytes | None) -> str:
    if not text:
        return ""
    return decode(text[:200])
