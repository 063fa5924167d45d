"""From one Postfix policy request to one reply: who is sending, what the Guard says, what Postfix is told.

    request (RCPT)  --internal sender?--no-->  DUNNO                          action "skip"
                        | yes
                    Guard.check(recipient) -> Verdict
                        reject  -> "550 5.1.2 Not sent: army.ml is not army.mil. Did you mean ..?"
                        hold    -> "HOLD typoguard: ..."         (Postfix holds the whole message)
                        warn    -> "PREPEND X-Typoguard-Warning: ..."   (the mail passes, marked)
                        allow   -> DUNNO
                        invalid -> DUNNO   (not a look-alike question; smtpd judges the syntax)
    mode = "audit": the same decision is logged, the reply is always DUNNO.
    any other protocol_state (or no recipient) -> DUNNO, action "ignored", not logged.

``DUNNO`` ("no opinion") lets Postfix go on with the next restriction, so typoguard never *accepts*
anything by itself. A ``PolicyDecider`` is immutable: reloading builds a new one and swaps it.

Reply texts (ADR 0017) are for the sender, in plain words and ASCII: Postfix puts
``<rcpt>: Recipient address rejected:`` in front of them, so they do not name the recipient again (the
relay, which is the SMTP server itself, asks for ``names_recipient``); a policy request does not say
whether the session uses SMTPUTF8, so a look-alike character is written as U+XXXX with its script named.
"""

from __future__ import annotations

import re
import socket
import string
from typing import TYPE_CHECKING, Any, Final

import orjson

from typoguard.config import Config
from typoguard.core.describe import ascii_words, lookalike_sentence, readable_reason, unicode_of
from typoguard.core.detector import assessment_bytes
from typoguard.core.verdict import Action, Assessment, Verdict
from typoguard.errors import ConfigError
from typoguard.guard import Guard
from typoguard.obs import MAX_LOGGED_ADDRESS, clip_address
from typoguard.protocols.postfix_policy import PolicyReply, PolicyRequest
from typoguard.senders import InternalSenders

if TYPE_CHECKING:
    from typoguard.core.context import LiveContext


DUNNO: Final = PolicyReply("DUNNO")
BLOCKED_TEXT: Final = "Not sent: mail to {domain} is blocked by this organisation's policy (typoguard).{help}"
WARN_TEXT: Final = "{recipient} may be a typo for {suggestion}: {domain} looks like {intended} ({why})"
TEMPLATE_FIELDS: Final = frozenset(
    {"recipient", "domain", "intended", "why", "suggestion", "kind", "score", "sender", "lookalikes", "help"}
)
MAX_REPLY_TEXT: Final = 400  # SMTP reply lines are at most 512 octets, Postfix adds its own prefix
# RFC 5321 4.5.3.1.5: a reply line is at most 512 octets with its CRLF. Postfix sends
# "550 5.1.2 <rcpt>: Recipient address rejected: " + our text after the code: 32 octets and the recipient.
_POSTFIX_PREFIX_OCTETS: Final = len("<>: Recipient address rejected: ")
_MIN_REPLY_TEXT: Final = 120
DEFAULT_DSN: Final = "5.1.2"  # "bad destination mailbox address" (RFC 3463)
_DSN: Final = re.compile(r"[245]\.\d{1,3}\.\d{1,3}(?: |$)")
_HEADER_NAME_CHARS: Final = frozenset(chr(c) for c in range(33, 127)) - {":"}


# What to answer, and what to log and count: (reply, action, record). ``action`` is a verdict action
# ("reject", ...), "skip" (sender not internal) or "ignored" (not a RCPT request); ``record`` is the
# decision log record as a JSON object without its time (``JsonLog.record_json`` adds it), None when
# nothing was decided. A plain tuple of ready-made parts: one is made per request, tens of thousands a second.
Decision = tuple[PolicyReply, str, bytes | None]


IGNORED: Final[Decision] = (DUNNO, "ignored", None)
_Entry = tuple[Assessment, str, PolicyReply | None, str, str, bytes]
# The prepared replies are bounded by bytes (issue 15 item 6): an entry holds its assessment, reply text and
# log tail, a few hundred bytes to a few KB. An invalid recipient's assessment is never shared: not kept.
ENTRY_CACHE_BYTES: Final = 4 << 20
_INTERNAL_JSON: Final = {"sender": b'"sender"', "sasl": b'"sasl"', "network": b'"network"'}
_dumps = orjson.dumps


def _check_template(template: str, where: str) -> None:
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


def _printable(text: str) -> str:
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def reply_limit(recipient: str) -> int:
    """How long our reply (code and text) may be so that Postfix's line stays within 510 octets."""
    return max(_MIN_REPLY_TEXT, min(MAX_REPLY_TEXT, 510 - _POSTFIX_PREFIX_OCTETS - len(recipient)))


def smtp_text(text: str, limit: int = MAX_REPLY_TEXT) -> str:
    """One line of printable ASCII (what an SMTP reply or a header can carry), at most ``limit`` chars."""
    if not (text.isascii() and text.isprintable()):
        text = "".join(ch if " " <= ch <= "~" else "?" for ch in text)
    return text if len(text) <= limit else text[: limit - 3] + "..."


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


class PolicyDecider:
    """Answers policy requests for one configuration."""

    def __init__(
        self,
        config: Config,
        guard: Guard,
        senders: InternalSenders,
        *,
        context: LiveContext | None = None,
        names_recipient: bool = False,
    ) -> None:
        """``names_recipient``: put ``<rcpt>:`` in refusals ourselves (the relay: no Postfix adds it)."""
        pd = config.policyd
        _check_template(pd.reject_template, "[policyd] reject_template")
        _check_template(pd.hold_template, "[policyd] hold_template")
        if not pd.warn_header or not set(pd.warn_header) <= _HEADER_NAME_CHARS:
            raise ConfigError(f"[policyd] warn_header {pd.warn_header!r} is not a valid header name")
        self.config = config
        self.guard = guard
        self.senders = senders
        self.context = context  # the store's overrides and history; None: the detector's word alone
        self.audit = config.policy.mode == "audit"
        self.mode = config.policy.mode
        self.instance = config.policyd.instance or socket.gethostname()
        self.names_recipient = names_recipient
        dsn, self._reject_template = split_dsn(pd.reject_template)
        self._reject_prefix = f"{pd.reject_code} {dsn} " + ("<{recipient}>: " if names_recipient else "")
        self._help = f" {config.policy.help_text}" if config.policy.help_text else ""
        self._hold_template = pd.hold_template
        self._warn_prefix = f"PREPEND {pd.warn_header}: "
        self._reject_code = pd.reject_code
        self._by_assessment: dict[int, _Entry] = {}
        self._by_assessment_bytes = 0
        self._head = b'{"event":"decision","instance":' + orjson.dumps(self.instance) + b',"sender":'
        self._skip_tail = b"," + orjson.dumps({"action": "skip", "reply": "DUNNO", "mode": self.mode})[1:]

    @classmethod
    def build(cls, config: Config) -> PolicyDecider:
        """Compile the Guard and matchers for ``config``; raises ``ConfigError`` (slow: run off the loop)."""
        senders = InternalSenders.from_config(config.policy)
        return cls(config, Guard.from_config(config), senders)

    @property
    def protected_domains(self) -> int:
        return len(self.guard.index.protected)

    def decide(self, request: PolicyRequest) -> Decision:
        state, recipient, sender, client, queue_id = request.rcpt_fields()
        if not recipient or state != "RCPT":
            return IGNORED
        senders = self.senders
        # The sender's domain (cached) usually decides; the SASL login is only looked up when it does not.
        if sender and senders.sender_domain_is_internal(sender):
            internal: str | None = "sender"
        else:
            internal = senders.match("", request.get("sasl_username"), client)
        if internal is None:
            record = self._json_record(sender, recipient, client, b"false", "", self._skip_tail)
            return (DUNNO, "skip", record)
        a = self.guard.assess(recipient)
        context = self.context
        if context is not None:
            a = context.adjust(a, sender)
        # Everything but the recipient depends only on the assessment, which the detector shares
        # between every recipient at one domain: prepare it once per assessment.
        entry = self._by_assessment.get(id(a))
        if entry is None or entry[0] is not a:
            entry = self._assessment_entry(a)
        _, action, reply, word, partial, tail = entry
        if reply is None:
            local, at, _ = recipient.rpartition("@")
            suggestion = f"{local}@{a.intended}" if at else (a.intended or "")
            text = partial.format(recipient=recipient, suggestion=suggestion, sender=sender)
            limit = 900 if word == "PREPEND" else MAX_REPLY_TEXT if word == "HOLD" else reply_limit(recipient)
            reply = PolicyReply(smtp_text(text, limit))
        record = self._json_record(sender, recipient, client, _INTERNAL_JSON[internal], queue_id, tail)
        return (reply, action, record)

    def _json_record(  # noqa: PLR0917 - the hot path: plain positional strings, no tuple or dict built
        self, sender: str, recipient: str, client: str, internal: bytes, queue_id: str, tail: bytes
    ) -> bytes:
        """The decision's JSON object (no time: the log adds it), from cached pieces and three strings.
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
            s, r, c = (_printable(v) for v in (sender, recipient, client))
            return self._json_record(s, r, c, internal, _printable(queue_id), tail)

    def _tail(self, action: str, word: str, fields: dict[str, Any]) -> bytes:
        """``,"action":...,"mode":...}``: the end of a decision record, serialised once per assessment."""
        body = orjson.dumps({"action": action, "reply": word, **fields, "mode": self.mode})
        return b"," + body[1:]

    def _assessment_entry(self, a: Assessment) -> _Entry:
        """(assessment, action, fixed reply or None, reply word, reply template left to fill, log fields)."""
        fields: dict[str, Any] = {
            "domain": a.domain or "",
            "intended": a.intended,
            "kind": a.kind,
            "score": round(a.score, 4),
        }
        if a.action is not Action.ALLOW or a.intended is not None:  # flagged, or allowed despite a finding
            fields["reason"] = readable_reason(a.reason, a.domain)
        entry: _Entry
        if self.audit or a.action in (Action.ALLOW, Action.INVALID):
            entry = (a, a.action.value, DUNNO, "DUNNO", "", self._tail(a.action.value, "DUNNO", fields))
        elif a.intended is None:  # an admin's block override of a domain that looks like nothing protected
            word = str(self._reject_code) if a.action is Action.REJECT else "HOLD"
            if a.action is Action.REJECT:
                rcpt = "<{recipient}>: " if self.names_recipient else ""
                text = BLOCKED_TEXT.format(domain=a.domain or "", help=self._help)
                partial = f"{word} 5.7.1 {rcpt}" + _escape(text)
            else:
                partial = _escape(f"{word} typoguard: {ascii_words(a.reason)}")
            entry = (a, a.action.value, None, word, partial, self._tail(a.action.value, word, fields))
        else:
            if a.action is Action.REJECT:
                word, prefix, template = str(self._reject_code), self._reject_prefix, self._reject_template
            elif a.action is Action.HOLD:
                word, prefix, template = "HOLD", "HOLD ", self._hold_template
            else:
                word, prefix, template = "PREPEND", self._warn_prefix, WARN_TEXT

            fixed = {
                "domain": a.domain or "",
                "intended": a.intended,
                "why": why_of(a),
                "kind": a.kind or "",
                "score": f"{a.score:.2f}",
                "lookalikes": _lookalikes(a),
                "help": self._help,
            }
            partial = (prefix if word != "PREPEND" else _escape(prefix)) + _prefill(template, fixed)
            entry = (a, a.action.value, None, word, partial, self._tail(a.action.value, word, fields))
        if a.action is Action.INVALID:
            return entry
        size = assessment_bytes("", a) + 4 * len(entry[4]) + len(entry[5]) + 200
        if self._by_assessment_bytes + size > ENTRY_CACHE_BYTES:
            self._by_assessment.clear()
            self._by_assessment_bytes = 0
        self._by_assessment[id(a)] = entry
        self._by_assessment_bytes += size
        return entry
