"""One recipient decision for every enforcement point: the Postfix policy service, the relay, a milter.

    sender, recipient, client, SASL login, queue id
        |  internal sender? (``[policy] internal_*``) --no-->  action "skip" (not ours to judge)
        |  yes
    Guard.assess(recipient), adjusted by the store's context (overrides, correspondents, first contact)
        reject  -> reply "550 5.1.2 Not sent: army.ml is not army.mil. Did you mean bob@army.mil? ..."
        hold    -> hold_reason "typoguard: arny.mil looks like army.mil (...)"  (the whole message waits)
        warn    -> header "X-Typoguard-Warning: bob@comcast.com may be a typo for ..."  (it passes, marked)
        allow, invalid -> nothing to do (an unparseable address is the MTA's to refuse)
    mode = "audit": the same action and log record, nothing to do (no reply, hold reason or header).
    no recipient -> action "ignored", not logged.

The result (``Decision``) is structured and MTA-neutral: each enforcement point words it its own way
(``policyd`` as ``DUNNO`` / ``550 ...`` / ``HOLD ...`` / ``PREPEND ...``; the relay as SMTP replies, held
mail and header lines). Its ``record`` is the decision log record (JSON) the log and the store keep.

Texts (ADR 0017) are for the sender, in plain words and ASCII: an MTA such as Postfix puts
``<rcpt>: Recipient address rejected:`` in front of a refusal, so it does not name the recipient again;
an enforcement point that is the SMTP server itself (the relay, a milter) asks for ``names_recipient``.
A look-alike character is written as U+XXXX with its script named (SMTPUTF8 is not known here).

The policy service answers tens of thousands of requests a second: everything but the recipient, sender
and client depends only on the assessment, which the detector shares between every recipient at a domain,
so it is prepared once per assessment (``IdentityMemo``, bounded by bytes) and a request costs a format,
a join and the result.
"""

from __future__ import annotations

import re
import socket
import string
from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Final, NamedTuple

import orjson

from typoguard.config import Config
from typoguard.core.describe import ascii_words, lookalike_sentence, readable_reason, unicode_of
from typoguard.core.detector import assessment_bytes
from typoguard.core.memo import IdentityMemo
from typoguard.core.names import domain_of, printable
from typoguard.core.verdict import Action, Assessment, Verdict
from typoguard.errors import ConfigError
from typoguard.guard import Guard
from typoguard.obs import MAX_LOGGED_ADDRESS, clip_address
from typoguard.protocols.smtp import MAX_REPLY_TEXT, smtp_text
from typoguard.senders import InternalSenders

if TYPE_CHECKING:
    from typoguard.core.context import LiveContext

BLOCKED_TEXT: Final = "Not sent: mail to {domain} is blocked by this organisation's policy (typoguard).{help}"
WARN_TEXT: Final = "{recipient} may be a typo for {suggestion}: {domain} looks like {intended} ({why})"
TEMPLATE_FIELDS: Final = frozenset(
    {"recipient", "domain", "intended", "why", "suggestion", "kind", "score", "sender", "lookalikes", "help"}
)
# RFC 5321 4.5.3.1.5: a reply line is at most 512 octets with its CRLF. Postfix sends
# "550 5.1.2 <rcpt>: Recipient address rejected: " + our text after the code: 32 octets and the recipient.
_POSTFIX_PREFIX_OCTETS: Final = len("<>: Recipient address rejected: ")
_MIN_REPLY_TEXT: Final = 120
MAX_HEADER_LINE: Final = 892  # a warning header line ("name: value"); Postfix's "PREPEND " makes it 900
MAX_HOLD_REASON: Final = MAX_REPLY_TEXT - len("HOLD ")
DEFAULT_DSN: Final = "5.1.2"  # "bad destination mailbox address" (RFC 3463)
_DSN: Final = re.compile(r"[245]\.\d{1,3}\.\d{1,3}(?: |$)")
_HEADER_NAME_CHARS: Final = frozenset(chr(c) for c in range(33, 127)) - {":"}
# The prepared pieces are bounded by bytes (issue 15 item 6): an entry holds its assessment, reply template
# and log tail, a few hundred bytes to a few KB. An invalid recipient's assessment is never shared: not kept.
ENTRY_CACHE_BYTES: Final = 4 << 20
# The filled-in texts per (recipient, sender), oldest dropped first. Only addresses of a length that can be
# valid (MAX_LOGGED_ADDRESS) and assessments the detector keeps are remembered: an entry is at most about
# 2.5 KB (two addresses, a reply <= 512, a hold reason or header <= 892 octets), so at most about 5 MB.
TEXT_CACHE_ENTRIES: Final = 2048
# Whole decisions per (recipient, sender, client), for an internal sender known by its domain or client
# address: the same recipient decided again (a thread, a mailing, retries) costs a probe, a comparison
# of the store's snapshot generation and a join for the log record. Oldest dropped first; an entry holds
# three addresses <= MAX_LOGGED_ADDRESS, its record's head (about the same) and texts shared with
# ``_texts``: at most about 2 KB, so at most about 8 MB.
DECISION_CACHE_ENTRIES: Final = 4096
_INTERNAL_JSON: Final = {"sender": b'"sender"', "sasl": b'"sasl"', "network": b'"network"'}
_dumps = orjson.dumps
_new = tuple.__new__
_Decided = tuple[int, str, str, str, str, str, bytes, bytes, Assessment]


def _no_generation() -> int:
    return 0


class Decision(NamedTuple):
    """The decision for one recipient, for any enforcement point to carry out and log.

    ``action``: the verdict ("allow", "warn", "hold", "reject", "invalid"), or "skip" (the sender is not
    internal: not ours to judge) or "ignored" (no recipient). What to *do* is in the three texts, all
    printable ASCII and at most one of them set (none in audit mode, whatever the action):

    * ``reply``: refuse the recipient with this SMTP reply line (code, enhanced status code, text);
    * ``hold_reason``: keep the whole message for a person to review, for this reason;
    * ``header``: let it pass with this header line added (``name: value``).

    ``record``: the decision log record, a JSON object without its time (the log adds it); None when nothing
    was decided. ``assessment``: what the action rests on (None for "skip" and "ignored").
    """

    action: str
    reply: str
    hold_reason: str
    header: str
    record: bytes | None
    assessment: Assessment | None

    @property
    def code(self) -> int:
        """A refusal's SMTP reply code (``[policyd] reject_code``, 550); 0 when not refused."""
        return int(self.reply[:3]) if self.reply else 0

    @property
    def status(self) -> str:
        """A refusal's enhanced status code ("5.1.2"; "" when not refused)."""
        return self.reply.split(" ", 2)[1] if self.reply else ""

    @property
    def text(self) -> str:
        """A refusal's text after its codes ("" when not refused)."""
        return self.reply.split(" ", 2)[2] if self.reply else ""

    @property
    def header_name(self) -> str:
        return self.header.partition(": ")[0]

    @property
    def header_value(self) -> str:
        return self.header.partition(": ")[2]


# The SASL login, or a function returning it (called only when the sender's domain does not settle it).
Sasl = str | Callable[[], str]
# ``Decision``'s fields as a plain tuple, in its order (``Decider.decide_fields``).
DecisionFields = tuple[str, str, str, str, bytes | None, Assessment | None]
IGNORED: Final = Decision("ignored", "", "", "", None, None)
# What a recipient's assessment says, prepared once: (action, what to do, template left to fill, log tail).
_NOTHING, _REFUSE, _HOLD, _WARN = range(4)
_Prepared = tuple[str, int, str, bytes]


def check_template(template: str, where: str) -> None:
    try:
        names = {field for _, field, _, _ in string.Formatter().parse(template) if field is not None}
    except ValueError as exc:
        raise ConfigError(f"{where}: {exc}") from None
    unknown = names - TEMPLATE_FIELDS
    if unknown:
        known = ", ".join(sorted(TEMPLATE_FIELDS))
        raise ConfigError(f"{where}: unknown field(s) {', '.join(sorted(unknown))}; known: {known}")
    if "\n" in template or "\r" in template:
        raise ConfigError(f"{where} must be one line")
    try:
        template.format(**dict.fromkeys(TEMPLATE_FIELDS, "x"))
    except (ValueError, KeyError, IndexError) as exc:
        raise ConfigError(f"{where}: {exc}") from None


_PER_REQUEST_FIELDS: Final = frozenset({"recipient", "suggestion", "sender"})


def _escape(text: str) -> str:
    return text.replace("{", "{{").replace("}", "}}")


def _prefill(template: str, fixed: dict[str, str]) -> str:
    """``template`` with the per-assessment fields filled in; the per-request ones stay ``{fields}``."""
    out = []
    for literal, name, spec, conversion in string.Formatter().parse(template):
        out.append(_escape(literal))
        if name is None:
            continue
        if name in _PER_REQUEST_FIELDS:
            out.append(
                "{" + name + (f"!{conversion}" if conversion else "") + (f":{spec}" if spec else "") + "}"
            )
        else:
            value = fixed[name]
            value = repr(value) if conversion == "r" else ascii(value) if conversion == "a" else value
            out.append(_escape(format(value, spec or "")))
    return "".join(out)


def reply_limit(recipient: str) -> int:
    """How long a refusal (code and text) may be so that Postfix's line stays within 510 octets."""
    return max(_MIN_REPLY_TEXT, min(MAX_REPLY_TEXT, 510 - _POSTFIX_PREFIX_OCTETS - len(recipient)))


_OPENING: Final = re.compile(r"\S+ looks like \S+ ")


def why_of(verdict: Verdict | Assessment) -> str:
    """The short explanation inside a reply or header, in ASCII: the reason minus its "X looks like Y"
    opening (whichever form, A-label or Unicode, it names the domains in)."""
    reason = verdict.reason
    m = _OPENING.match(reason)
    why = reason[m.end() :] if m else reason
    if why.startswith("(") and why.endswith(")") and why.count("(") == why.count(")"):
        why = why[1:-1]  # templates put it in parentheses themselves
    return ascii_words(why)


def split_dsn(template: str) -> tuple[str, str]:
    """(enhanced status code, text): a template may start with its own code ("5.7.1 ..."); else 5.1.2."""
    m = _DSN.match(template)
    if m is None:
        return DEFAULT_DSN, template
    return m.group().strip(), template[m.end() :]


def _lookalikes(a: Assessment) -> str:
    """For an IDN, the sentence naming its look-alike letters, with a leading space (for example
    ``It contains a Cyrillic letter (U+0430) that looks like a Latin 'a'.``); else ""."""
    typed = unicode_of(a.domain or "")
    if typed.isascii() or a.intended is None:
        return ""
    intended = unicode_of(a.intended)
    typed_core, intended_core = typed.split(".", 1)[0], intended.split(".", 1)[0]
    sentence = lookalike_sentence(typed_core, intended_core, ascii_only=True)
    if not sentence:  # the foreign letters are elsewhere in the name
        sentence = lookalike_sentence(typed, intended, ascii_only=True)
    return f" {sentence}" if sentence else ""


def _prepared_bytes(a: Assessment, p: _Prepared) -> int:
    return assessment_bytes("", a) + 4 * len(p[2]) + len(p[3]) + 200


class Decider:
    """Decides recipients for one configuration. Immutable: reloading builds a new one and swaps it."""

    def __init__(
        self,
        config: Config,
        guard: Guard,
        senders: InternalSenders,
        *,
        context: LiveContext | None = None,
        names_recipient: bool = False,
    ) -> None:
        """``context``: the store's overrides and history (None: the detector's word alone).
        ``names_recipient``: refusals start with ``<rcpt>:`` (the enforcement point is the SMTP server)."""
        pd = config.policyd
        check_template(pd.reject_template, "[policyd] reject_template")
        check_template(pd.hold_template, "[policyd] hold_template")
        if not pd.warn_header or not set(pd.warn_header) <= _HEADER_NAME_CHARS:
            raise ConfigError(f"[policyd] warn_header {pd.warn_header!r} is not a valid header name")
        self.config = config
        self.guard = guard
        self.senders = senders
        self.context = context
        self.audit = config.policy.mode == "audit"
        self.mode = config.policy.mode
        self.instance = config.policyd.instance or socket.gethostname()
        self.names_recipient = names_recipient
        dsn, self._reject_template = split_dsn(pd.reject_template)
        self._reject_prefix = f"{pd.reject_code} {dsn} " + ("<{recipient}>: " if names_recipient else "")
        self._help = f" {config.policy.help_text}" if config.policy.help_text else ""
        self._hold_template = pd.hold_template
        self._header_prefix = f"{pd.warn_header}: "
        self._reject_code = pd.reject_code
        self._prepared: IdentityMemo[Assessment, _Prepared] = IdentityMemo(
            self._prepare, ENTRY_CACHE_BYTES, _prepared_bytes, guard.detector.retains
        )
        self._assess = guard.detector.assess  # Guard.assess, one call less per request
        # (recipient, sender) -> (assessment, reply, hold reason, header): the texts of a refusal, hold or
        # warning filled in once for a recipient a sender writes to again (a thread, a retried message).
        # (An OrderedDict: dropping a plain dict's oldest entry, ``del d[next(iter(d))]``, scans the holes
        # earlier deletions left, ~4 us an entry at these sizes while every recipient is new.)
        self._texts: OrderedDict[tuple[str, str], tuple[Assessment, str, str, str]] = OrderedDict()
        # (recipient, sender, client) -> (context generation, internal, action, reply, hold reason, header,
        # record up to its queue id, record tail, assessment): see DECISION_CACHE_ENTRIES
        self._decided: OrderedDict[tuple[str, str, str], _Decided] = OrderedDict()
        self._generation: Callable[[], int] = context.generation if context is not None else _no_generation
        self._head = b'{"event":"decision","instance":' + orjson.dumps(self.instance) + b',"sender":'
        self._skip_tail = b"," + orjson.dumps({"action": "skip", "reply": "DUNNO", "mode": self.mode})[1:]

    @classmethod
    def build(cls, config: Config, *, names_recipient: bool = False) -> Decider:
        """Compile the Guard and matchers for ``config``; raises ``ConfigError`` (slow: run off the loop)."""
        senders = InternalSenders.from_config(config.policy)
        return cls(config, Guard.from_config(config), senders, names_recipient=names_recipient)

    @property
    def protected_domains(self) -> int:
        return len(self.guard.index.protected)

    def decide(
        self, sender: str, recipient: str, client: str = "", sasl: Sasl = "", queue_id: str = ""
    ) -> Decision:
        """The decision for ``recipient`` of mail from ``sender`` sent by ``client`` (an IP address) after
        SASL login ``sasl``. ``sasl`` may be a function returning the login: it is called only when the
        sender's domain does not settle whether the sender is internal (most mail)."""
        return _new(Decision, self.decide_fields(sender, recipient, client, sasl, queue_id))

    def decide_fields(
        self, sender: str, recipient: str, client: str = "", sasl: Sasl = "", queue_id: str = ""
    ) -> DecisionFields:
        """``decide()``, its fields as a plain tuple: for the policy service, tens of thousands of requests
        a second. A named tuple is an instance of a class of its own, made and freed without the free
        lists of plain tuples: one per request cost the service about 0.4 us of its 5.5 (measured)."""
        if not recipient:
            return IGNORED
        # (never kept for an address too long to be valid: a client's 8 KB names are not even hashed here)
        known = (
            self._decided.get((recipient, sender, client)) if len(recipient) <= MAX_LOGGED_ADDRESS else None
        )
        if (
            known is not None
            and known[0] == self._generation()
            and (known[1] == "sender" or not sasl)  # "network": a SASL login would make it "sasl"
            and len(queue_id) <= MAX_LOGGED_ADDRESS
        ):
            try:
                line = known[6] + (_dumps(queue_id) if queue_id else b'""') + known[7]
            except TypeError:  # invalid UTF-8 in the queue id: the long way writes it readably
                pass
            else:
                return (known[2], known[3], known[4], known[5], line, known[8])
        return self._decide(sender, recipient, client, sasl, queue_id)

    def _decide(self, sender: str, recipient: str, client: str, sasl: Sasl, queue_id: str) -> DecisionFields:
        """``decide_fields`` for a decision it does not have at hand."""
        # Read before deciding: a snapshot a refresh publishes meanwhile is a later generation, so what is
        # decided here is never kept under it.
        generation = self._generation()
        senders = self.senders
        # The sender's domain (cached) usually decides; the SASL login is only looked up when it does not.
        if sender and senders.sender_domain_is_internal(sender):
            internal: str | None = "sender"
        else:
            internal = senders.match("", sasl if isinstance(sasl, str) else sasl(), client)
        if internal is None:
            skipped = self._json_record(sender, recipient, client, b"false", "", self._skip_tail)
            return ("skip", "", "", "", skipped, None)
        a = self._assess(recipient)
        context = self.context
        if context is not None:
            a = context.adjust(a, sender)
        hit = self._prepared.new.get(id(a))
        shared = hit is not None and hit[0] is a  # an assessment the detector keeps and returns again
        action, todo, template, tail = hit[1] if shared else self._prepared.miss(a)  # type: ignore[index]
        flag = _INTERNAL_JSON[internal]
        record: bytes | None = None
        if (  # _json_record inlined for nearly every request: addresses of a length that can be valid
            len(recipient) <= MAX_LOGGED_ADDRESS
            and len(sender) <= MAX_LOGGED_ADDRESS
            and len(client) <= MAX_LOGGED_ADDRESS
            and len(queue_id) <= MAX_LOGGED_ADDRESS
        ):
            try:
                record = b"".join(
                    (self._head, _dumps(sender), b',"recipient":', _dumps(recipient), b',"client":',
                     _dumps(client), b',"internal":', flag, b',"queue_id":',
                     _dumps(queue_id) if queue_id else b'""', tail)
                )  # fmt: skip
            except TypeError:  # invalid UTF-8 from the wire: _json_record writes it readably
                record = None
        if record is None:
            record = self._json_record(sender, recipient, client, flag, queue_id, tail)
        if todo == _NOTHING:
            if shared and internal != "sasl":
                self._remember(
                    generation, sender, recipient, client, internal, (action, "", "", ""), flag, tail, a
                )
            return (action, "", "", "", record, a)
        texts = self._texts
        key = (recipient, sender)
        done = texts.get(key)
        if done is not None and done[0] is a:  # the same recipient from the same sender again
            if shared and internal != "sasl":
                self._remember(
                    generation, sender, recipient, client, internal, (action, *done[1:]), flag, tail, a
                )
            return (action, done[1], done[2], done[3], record, a)
        local, at, _ = recipient.rpartition("@")
        suggestion = f"{local}@{a.intended}" if at else (a.intended or "")
        text = template.format(recipient=recipient, suggestion=suggestion, sender=sender)
        if todo == _REFUSE:
            done = (a, smtp_text(text, reply_limit(recipient)), "", "")
        elif todo == _HOLD:
            done = (a, "", smtp_text(text, MAX_HOLD_REASON), "")
        else:
            done = (a, "", "", smtp_text(text, MAX_HEADER_LINE))
        if shared and len(recipient) <= MAX_LOGGED_ADDRESS and len(sender) <= MAX_LOGGED_ADDRESS:
            if len(texts) >= TEXT_CACHE_ENTRIES:
                texts.popitem(last=False)  # the oldest
            texts[key] = done
            if internal != "sasl":
                self._remember(
                    generation, sender, recipient, client, internal, (action, *done[1:]), flag, tail, a
                )
        return (action, done[1], done[2], done[3], record, a)

    def _remember(  # noqa: PLR0917 - the pieces decide_fields has at hand
        self,
        generation: int,
        sender: str,
        recipient: str,
        client: str,
        internal: str,
        result: tuple[str, str, str, str],
        flag: bytes,
        tail: bytes,
        a: Assessment,
    ) -> None:
        """Keep a decision for ``decide_fields`` to give again (addresses of a length that can be valid, an
        assessment the detector keeps, an internal sender not known by its SASL login)."""
        if len(recipient) > MAX_LOGGED_ADDRESS or len(sender) > MAX_LOGGED_ADDRESS:
            return
        if len(client) > MAX_LOGGED_ADDRESS:
            return
        try:
            head = b"".join(
                (self._head, _dumps(sender), b',"recipient":', _dumps(recipient), b',"client":',
                 _dumps(client), b',"internal":', flag, b',"queue_id":')
            )  # fmt: skip
        except TypeError:  # invalid UTF-8 from the wire: decided the long way each time
            return
        decided = self._decided
        if len(decided) >= DECISION_CACHE_ENTRIES:
            decided.popitem(last=False)  # the oldest
        decided[recipient, sender, client] = (generation, internal, *result, head, tail, a)

    def _json_record(  # noqa: PLR0917 - plain positional strings, no tuple or dict built
        self, sender: str, recipient: str, client: str, internal: bytes, queue_id: str, tail: bytes
    ) -> bytes:
        """The decision's JSON object (no time: the log adds it), from cached pieces and four strings (what
        ``decide_fields`` does inline, and the way for a skipped sender, long or undecodable addresses).
        Addresses too long to be valid are clipped (``clip_address``): the log and the store never hold
        a client's 8 KB recipient."""
        if len(recipient) > MAX_LOGGED_ADDRESS or len(sender) > MAX_LOGGED_ADDRESS:
            recipient, sender = clip_address(recipient), clip_address(sender)
        if len(client) > MAX_LOGGED_ADDRESS or len(queue_id) > MAX_LOGGED_ADDRESS:
            client, queue_id = clip_address(client), clip_address(queue_id)
        try:
            return b"".join(
                (
                    self._head,
                    _dumps(sender),
                    b',"recipient":',
                    _dumps(recipient),
                    b',"client":',
                    _dumps(client),
                    b',"internal":',
                    internal,
                    b',"queue_id":',
                    _dumps(queue_id),
                    tail,
                )
            )
        except TypeError:  # invalid UTF-8 from the wire (kept as surrogates): log it readably
            s, r, c = (printable(v) for v in (sender, recipient, client))
            return self._json_record(s, r, c, internal, printable(queue_id), tail)

    def _tail(self, action: str, word: str, fields: dict[str, Any]) -> bytes:
        """``,"action":...,"mode":...}``: the end of a decision record, serialised once per assessment.
        ``word``: what the Postfix policy service answers (the log's ``reply`` field, for every MTA)."""
        body = orjson.dumps({"action": action, "reply": word, **fields, "mode": self.mode})
        return b"," + body[1:]

    def _prepare(self, a: Assessment) -> _Prepared:
        """(action, what to do, template left to fill per recipient, log tail) for an assessment."""
        fields: dict[str, Any] = {
            "domain": a.domain or "",
            "intended": a.intended,
            "kind": a.kind,
            "score": round(a.score, 4),
        }
        if a.action is not Action.ALLOW or a.intended is not None:  # flagged, or allowed despite a finding
            fields["reason"] = readable_reason(a.reason, a.domain)
        action = a.action.value
        if self.audit or a.action in (Action.ALLOW, Action.INVALID):
            return (action, _NOTHING, "", self._tail(action, "DUNNO", fields))
        reject = a.action is Action.REJECT
        word = str(self._reject_code) if reject else "HOLD" if a.action is Action.HOLD else "PREPEND"
        if a.intended is None:  # an admin's block override of a domain that looks like nothing protected
            if reject:
                rcpt = "<{recipient}>: " if self.names_recipient else ""
                text = BLOCKED_TEXT.format(domain=a.domain or "", help=self._help)
                return (
                    action,
                    _REFUSE,
                    f"{word} 5.7.1 {rcpt}" + _escape(text),
                    self._tail(action, word, fields),
                )
            # (never reached: an override only blocks or allows) held, as the reply word always said
            reason = _escape(f"typoguard: {ascii_words(a.reason)}")
            return (action, _HOLD, reason, self._tail(action, "HOLD", fields))
        fixed = {
            "domain": a.domain or "",
            "intended": a.intended,
            "why": why_of(a),
            "kind": a.kind or "",
            "score": f"{a.score:.2f}",
            "lookalikes": _lookalikes(a),
            "help": self._help,
        }
        tail = self._tail(action, word, fields)
        if reject:
            return (action, _REFUSE, self._reject_prefix + _prefill(self._reject_template, fixed), tail)
        if a.action is Action.HOLD:
            return (action, _HOLD, _prefill(self._hold_template, fixed), tail)
        return (action, _WARN, _escape(self._header_prefix) + _prefill(WARN_TEXT, fixed), tail)

    def content_record(  # noqa: PLR0917 - one record's fields
        self,
        sender: str,
        recipient: str,
        client: str,
        rcpt: Decision | None,
        action: str,
        reason: str,
        counts: Mapping[str, int],
        internal: str = "relay",
    ) -> bytes:
        """The decision log record of a content rule (stage DATA) for ``recipient``, which replaces the RCPT
        decision's record: ``action`` because ``reason``, the content's category counts. ``rcpt``: the
        RCPT decision, when it flagged the recipient (its finding is named again)."""
        a = rcpt.assessment if rcpt is not None else None
        word = {"reject": "550", "hold": "HOLD", "warn": "PREPEND"}.get(action, "DUNNO")
        body = {
            "event": "decision", "instance": self.instance, "sender": sender, "recipient": recipient,
            "client": client, "internal": internal, "queue_id": "", "stage": "DATA",
            "action": action, "reply": "DUNNO" if self.audit else word,
            "domain": (a.domain if a is not None else None) or domain_of(recipient),
            "intended": a.intended if a is not None else None,
            "kind": a.kind if a is not None else None,
            "score": round(a.score, 4) if a is not None else 0.0,
            "reason": reason, "content": dict(sorted(counts.items())), "mode": self.mode,
        }  # fmt: skip
        return orjson.dumps(body)
