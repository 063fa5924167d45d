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
  A milter's ``QID: milter-hold:`` / ``milter-discard:`` / ``milter-reject: END-OF-MESSAGE ...`` (cleanup)
  too: Postfix names only the message's last recipient in that line, so a held message's other look-alike
  recipients are seen only when it is released (their delivery lines), or in typoguard's decision log.
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
    queue_ids_with,
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
_SMTPD_ACTION = {
    b"reject": Outcome.REJECTED,
    b"milter-reject": Outcome.REJECTED,
    b"hold": Outcome.HELD,
    b"milter-hold": Outcome.HELD,
    b"proxy-reject": Outcome.REJECTED,
}  # discard, milter-discard: DISCARDED
_MISS = object()
# Every recipient field of a block, found by the regular-expression engine in C: it looks for the literal
# " to=<" as fast as ``bytes.find`` and hands back only (address, domain after its last "@"), ~4x less
# than a loop of ``find`` and slices in Python per ``to=<``. Groups 1-2: an address without quotes or
# angle brackets; groups 3-4: one with a quoted local part (RFC 5321), which may hold "<", ">" and "@";
# groups 5-6: one with a stray quote (not valid, but read as before).
# No class runs past a "<" or an unescaped quote, so the text one field scans ends where the next field
# (" to=<" holds a "<") starts: linear in the block, whatever it holds. An address without "@" or with a
# line end before ">" is no match. The space before ``to=<`` leaves out ``orig_to=<``.
_RECIPIENT = re.compile(
    rb' to=<(?:([^<>"\n]*@([^<>"\n@]*))>|("(?:[^"\\\n]++|\\.)*+"@([^<>"\n@]*))>|([^<>\n]*@([^<>\n@]*))>)'
)
# No log line is this long (syslog daemons cut at 8-64 KB); a longer one is counted as bad and not read,
# so one corrupt or hostile line costs its length, not its length times its fields.
MAX_LINE = 64 << 10
# Failed backward searches for a queue id's ``from=``/``message-id=`` line in a block before the block's
# queue ids with such lines are listed once (a log filtered with grep has none: each search would read
# the whole block and the one before).
_INDEX_AFTER = 16


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
        # Per block (this one, the one before): field -> queue ids with that field's line in the block, listed
        # after _INDEX_AFTER failed searches; field -> failed searches so far.
        self._indexes: list[dict[bytes, set[bytes]]] = [{}, {}]
        self._misses: list[dict[bytes, int]] = [{}, {}]

    def feed(self, block: bytes) -> None:
        lines = block.count(b"\n")
        self.stats.lines += lines + (0 if block.endswith(b"\n") else 1)
        general = self._bad_lines(block, lines)
        if general or b", status=expired" in block:
            self._expired(block)
        self._indexes = [{}, self._indexes[0]]
        self._misses = [{}, self._misses[0]]
        cache = self._classifier.cache
        assess = self._classifier.domain_hit
        size = len(block)
        skip_to = -1  # the end of a line too long to read
        for m in _RECIPIENT.finditer(block):
            domain = m[2]
            rcpt = m[1]
            if domain is None:  # a quoted local part, or a stray quote
                domain, rcpt = (m[4], m[3]) if m[4] is not None else (m[6], m[5])
            hit = cache.get(domain, _MISS)
            if hit is _MISS:
                hit = assess(domain) if domain else None
            if hit is None:
                continue
            pos = m.start() + 1  # at "to=<"
            if pos < skip_to:
                continue
            start = block.rfind(b"\n", pos - MAX_LINE if pos > MAX_LINE else 0, pos) + 1
            end = block.find(b"\n", pos, pos + MAX_LINE)
            if (start == 0 and pos > MAX_LINE) or (end < 0 and pos + MAX_LINE < size):
                end = block.find(b"\n", pos)
                skip_to = end if end >= 0 else size
                self._bad(block[max(start, pos - 200) : pos + 200])
                continue
            if end < 0:
                end = size
            before = block[pos - 2 : pos]
            # ": to=<" of a delivery, "> to=<" of an smtpd/cleanup action
            if before == b": ":
                self._delivery(block, start, end, rcpt, hit, general)  # type: ignore[arg-type]
            elif before == b"> " and block.find(b"; from=<", start, pos) >= 0:
                self._smtpd(block, start, end, rcpt, hit)  # type: ignore[arg-type]
        self._previous = block
        self._offset += size

    def _expired(self, block: bytes) -> None:
        skip_to = -1
        for m in EXPIRED.finditer(block):
            pos = m.start()
            if pos < skip_to:
                continue
            start = block.rfind(b"\n", pos - MAX_LINE if pos > MAX_LINE else 0, pos) + 1
            if start == 0 and pos > MAX_LINE:  # a line too long to read (counted by the recipient scan)
                end = block.find(b"\n", pos)
                skip_to = end if end >= 0 else len(block)
                continue
            end = block.find(b"\n", pos, pos + MAX_LINE)
            head = self._lines.head(block[start : end if end >= 0 else pos + MAX_LINE])
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
        where, j = block, self._rfind(0, block, qid, FROM, pos)
        if j < 0:
            where, j = self._previous, self._rfind(1, self._previous, qid, FROM, None)
        if j < 0:
            return self._found.get(qid, (None, None))
        sender = sender_at(where, j)
        k = self._rfind(0 if where is block else 1, where, qid, MESSAGE_ID, j)
        if k < 0 and where is block:
            where, k = self._previous, self._rfind(1, self._previous, qid, MESSAGE_ID, None)
        message_id = message_id_at(where, k) if k >= 0 else None
        found = self._found
        if len(found) >= MAX_SENDERS:
            found.clear()
        found[qid] = (sender, message_id)
        return sender, message_id

    def _rfind(self, which: int, data: bytes, qid: bytes, field: bytes, end: int | None) -> int:
        """``rfind_field`` in this block (``which`` 0) or the one before (1), skipped for a queue id that has
        no such line in it once the block's queue ids have been listed (after ``_INDEX_AFTER`` misses)."""
        index = self._indexes[which].get(field)
        if index is not None and qid not in index:
            return -1
        found = rfind_field(data, qid, field, end)
        if found < 0 and index is None:
            misses = self._misses[which]
            misses[field] = misses.get(field, 0) + 1
            if misses[field] >= _INDEX_AFTER:
                self._indexes[which][field] = queue_ids_with(data, field)
        return found

    def _delivery(  # noqa: PLR0917 - the line's bounds, found by the caller
        self, block: bytes, start: int, end: int, rcpt: bytes, hit: Hit, general: bool
    ) -> None:
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
        elif outcome is Outcome.DELIVERED and detail and detail.startswith(b"250 2.") and b"Ok, " in detail:
            outcome = _filtered(detail)  # a content filter (amavis) that blocked it: nothing went on
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

    def _smtpd(self, block: bytes, start: int, end: int, rcpt: bytes, hit: Hit) -> None:
        line = block[start:end]
        m = SMTPD_ACTION.search(line)
        if m is None:  # header/body-check warnings, "filter:", "redirect:": not a refusal
            if b": reject: " in line or b": hold: " in line or b": milter-hold: " in line:
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
            _sender, message_id = self._ids(block, m[1], start)
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


# amavisd-new's answers for mail it blocked: ``250 2.7.0 Ok, discarded, id=... - INFECTED: ...`` (dropped)
# and ``250 2.5.0 Ok, id=..., BOUNCE`` (returned to the sender); passed mail is ``... queued as X``.
_FILTER_DISCARDED = re.compile(rb"250 2\.\d\.\d Ok, discarded, id=")
_FILTER_BOUNCED = re.compile(rb"250 2\.\d\.\d Ok, id=\S+, BOUNCE\b")


def _filtered(detail: bytes) -> Outcome:
    if _FILTER_DISCARDED.match(detail):
        return Outcome.DISCARDED
    if _FILTER_BOUNCED.match(detail):
        return Outcome.BOUNCED
    return Outcome.DELIVERED


def _short(text: bytes | None) -> str:
    if not text:
        return ""
    return decode(text[:200])
