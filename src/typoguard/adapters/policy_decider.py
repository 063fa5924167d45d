"""From one Postfix policy request to one reply: who is sending, what the Guard says, what Postfix is told.

    request (RCPT)  --internal sender?--no-->  DUNNO                          action "skip"
                        | yes
                    Guard.check(recipient) -> Verdict
                        reject  -> "550 5.1.2 <rcpt>: army.ml looks like army.mil (...); did you mean ..?"
                        hold    -> "HOLD typoguard: ..."         (Postfix holds the whole message)
                        warn    -> "PREPEND X-Typoguard-Warning: ..."   (the mail passes, marked)
                        allow   -> DUNNO
                        invalid -> DUNNO   (not a look-alike question; smtpd judges the syntax)
    mode = "audit": the same decision is logged, the reply is always DUNNO.
    any other protocol_state (or no recipient) -> DUNNO, action "ignored", not logged.

``DUNNO`` ("no opinion") lets Postfix go on with the next restriction, so typoguard never *accepts*
anything by itself. A ``PolicyDecider`` is immutable: reloading builds a new one and swaps it.
"""

from __future__ import annotations

import socket
import string
from typing import TYPE_CHECKING, Any, Final

import orjson

from typoguard.config import Config
from typoguard.core.detector import assessment_bytes
from typoguard.core.verdict import Action, Assessment, Verdict
from typoguard.errors import ConfigError
from typoguard.protocols.postfix_policy import PolicyReply, PolicyRequest
from typoguard.senders import InternalSenders
from typoguard.service import Guard

if TYPE_CHECKING:
    from typoguard.store.context import LiveContext


DUNNO: Final = PolicyReply("DUNNO")
BLOCKED_TEXT: Final = "5.7.1 <{{recipient}}>: mail to {domain} is blocked by this organisation's policy"
WARN_TEXT: Final = "{recipient} may be a typo for {suggestion}: {domain} looks like {intended} ({why})"
TEMPLATE_FIELDS: Final = frozenset(
    {"recipient", "domain", "intended", "why", "suggestion", "kind", "score", "sender"}
)
MAX_REPLY_TEXT: Final = 400  # SMTP reply lines are at most 512 octets, Postfix adds its own prefix
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


def smtp_text(text: str, limit: int = MAX_REPLY_TEXT) -> str:
    """One line of printable ASCII (what an SMTP reply or a header can carry), at most ``limit`` chars."""
    if not (text.isascii() and text.isprintable()):
        text = "".join(ch if " " <= ch <= "~" else "?" for ch in text)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def why_of(verdict: Verdict | Assessment) -> str:
    """The short explanation inside the reply: the reason minus its "X looks like Y" opening."""
    reason = verdict.reason
    opening = f"{verdict.domain} looks like {verdict.intended} "
    return reason[len(opening) :] if reason.startswith(opening) else reason


class PolicyDecider:
    """Answers policy requests for one configuration."""

    def __init__(
        self, config: Config, guard: Guard, senders: InternalSenders, *, context: LiveContext | None = None
    ) -> None:
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
        self._reject_prefix = f"{pd.reject_code} "
        self._reject_template = pd.reject_template
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
            reply = PolicyReply(smtp_text(text, MAX_REPLY_TEXT if word != "PREPEND" else 900))
        record = self._json_record(sender, recipient, client, _INTERNAL_JSON[internal], queue_id, tail)
        return (reply, action, record)

    def _json_record(  # noqa: PLR0917 - the hot path: plain positional strings, no tuple or dict built
        self, sender: str, recipient: str, client: str, internal: bytes, queue_id: str, tail: bytes
    ) -> bytes:
        """The decision's JSON object (no time: the log adds it), from cached pieces and three strings."""
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
            fields["reason"] = a.reason
        entry: _Entry
        if self.audit or a.action in (Action.ALLOW, Action.INVALID):
            entry = (a, a.action.value, DUNNO, "DUNNO", "", self._tail(a.action.value, "DUNNO", fields))
        elif a.intended is None:  # an admin's block override of a domain that looks like nothing protected
            word = str(self._reject_code) if a.action is Action.REJECT else "HOLD"
            text = BLOCKED_TEXT if a.action is Action.REJECT else "typoguard: {reason}"
            partial = _escape(f"{word} ") + _escape(text.format(domain=a.domain or "", reason=a.reason))
            partial = partial.replace("<{{recipient}}>", "<{recipient}>")
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
            }
            partial = _escape(prefix) + _prefill(template, fixed)
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
