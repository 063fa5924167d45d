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
from dataclasses import dataclass
from typing import Any, Final

from typoguard.config import Config
from typoguard.core.verdict import Action, Verdict
from typoguard.errors import ConfigError
from typoguard.protocols.postfix_policy import PolicyReply, PolicyRequest
from typoguard.senders import InternalSenders
from typoguard.service import Guard

DUNNO: Final = PolicyReply("DUNNO")
WARN_TEXT: Final = "{recipient} may be a typo for {suggestion}: {domain} looks like {intended} ({why})"
TEMPLATE_FIELDS: Final = frozenset(
    {"recipient", "domain", "intended", "why", "suggestion", "kind", "score", "sender"}
)
MAX_REPLY_TEXT: Final = 400  # SMTP reply lines are at most 512 octets, Postfix adds its own prefix
_HEADER_NAME_CHARS: Final = frozenset(chr(c) for c in range(33, 127)) - {":"}


@dataclass(frozen=True, slots=True)
class Decision:
    """What to answer, and what to log and count."""

    reply: PolicyReply
    action: str  # a verdict action ("reject", ...), or "skip" (sender not internal) / "ignored"
    record: dict[str, Any] | None  # the decision log record, None when nothing was decided


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


def smtp_text(text: str, limit: int = MAX_REPLY_TEXT) -> str:
    """One line of printable ASCII (what an SMTP reply or a header can carry), at most ``limit`` chars."""
    if not (text.isascii() and text.isprintable()):
        text = "".join(ch if " " <= ch <= "~" else "?" for ch in text)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def why_of(verdict: Verdict) -> str:
    """The short explanation inside the reply: the reason minus its "X looks like Y" opening."""
    reason = verdict.reason
    opening = f"{verdict.domain} looks like {verdict.intended} "
    return reason[len(opening) :] if reason.startswith(opening) else reason


class PolicyDecider:
    """Answers policy requests for one configuration."""

    def __init__(self, config: Config, guard: Guard, senders: InternalSenders) -> None:
        pd = config.policyd
        _check_template(pd.reject_template, "[policyd] reject_template")
        _check_template(pd.hold_template, "[policyd] hold_template")
        if not pd.warn_header or not set(pd.warn_header) <= _HEADER_NAME_CHARS:
            raise ConfigError(f"[policyd] warn_header {pd.warn_header!r} is not a valid header name")
        self.config = config
        self.guard = guard
        self.senders = senders
        self.audit = config.policy.mode == "audit"
        self.mode = config.policy.mode
        self.instance = config.policyd.instance or socket.gethostname()
        self._reject_prefix = f"{pd.reject_code} "
        self._reject_template = pd.reject_template
        self._hold_template = pd.hold_template
        self._warn_prefix = f"PREPEND {pd.warn_header}: "

    @classmethod
    def build(cls, config: Config) -> PolicyDecider:
        """Compile the Guard and matchers for ``config``; raises ``ConfigError`` (slow: run off the loop)."""
        senders = InternalSenders.from_config(config.policy)
        return cls(config, Guard.from_config(config), senders)

    @property
    def protected_domains(self) -> int:
        return len(self.guard.index.protected)

    def decide(self, request: PolicyRequest) -> Decision:
        attrs = request.attributes
        recipient = attrs.get("recipient", "")
        if not recipient or attrs.get("protocol_state") != "RCPT":
            return Decision(DUNNO, "ignored", None)
        sender = attrs.get("sender", "")
        client = attrs.get("client_address", "")
        internal = self.senders.match(sender, attrs.get("sasl_username", ""), client)
        record: dict[str, Any] = {
            "event": "decision",
            "instance": self.instance,
            "sender": sender,
            "recipient": recipient,
            "client": client,
        }
        if internal is None:
            record.update(action="skip", reply="DUNNO", internal=False, mode=self.mode)
            return Decision(DUNNO, "skip", record)
        verdict = self.guard.check(recipient)
        action = verdict.action
        reply = DUNNO if self.audit else self._reply(verdict, sender)
        record.update(
            action=action.value,
            reply=reply.action.split(" ", 1)[0],
            intended=verdict.intended,
            kind=verdict.kind,
            score=round(verdict.score, 4),
            internal=internal,
            mode=self.mode,
            txn=attrs.get("instance", ""),
        )
        if action is not Action.ALLOW:
            record["reason"] = verdict.reason
        return Decision(reply, action.value, record)

    def _reply(self, verdict: Verdict, sender: str) -> PolicyReply:
        action = verdict.action
        if action is Action.ALLOW or action is Action.INVALID or verdict.intended is None:
            return DUNNO
        fields = self._fields(verdict, sender)
        if action is Action.REJECT:
            return PolicyReply(self._reject_prefix + smtp_text(self._reject_template.format(**fields)))
        if action is Action.HOLD:
            return PolicyReply("HOLD " + smtp_text(self._hold_template.format(**fields)))
        return PolicyReply(self._warn_prefix + smtp_text(WARN_TEXT.format(**fields), 900))

    @staticmethod
    def _fields(verdict: Verdict, sender: str) -> dict[str, str]:
        local, at, _ = verdict.recipient.rpartition("@")
        intended = verdict.intended or ""
        return {
            "recipient": verdict.recipient,
            "domain": verdict.domain or "",
            "intended": intended,
            "why": why_of(verdict),
            "suggestion": f"{local}@{intended}" if at else intended,
            "kind": verdict.kind or "",
            "score": f"{verdict.score:.2f}",
            "sender": sender,
        }
