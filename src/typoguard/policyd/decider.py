"""From one Postfix policy request to one reply: ``typoguard.decide`` decides, this words it for Postfix.

    request (RCPT)  ->  Decider.decide(sender, recipient, client, SASL login, queue id) -> Decision
                        reply        -> "550 5.1.2 Not sent: army.ml is not army.mil. Did you mean ..?"
                        hold_reason  -> "HOLD typoguard: ..."         (Postfix holds the whole message)
                        header       -> "PREPEND X-Typoguard-Warning: ..."   (the mail passes, marked)
                        nothing      -> DUNNO   (allow, invalid, a sender not ours to judge, audit mode)
    any other protocol_state (or no recipient) -> DUNNO, action "ignored", not logged.

``DUNNO`` ("no opinion") lets Postfix go on with the next restriction, so typoguard never *accepts*
anything by itself. A ``PolicyDecider`` is immutable: reloading builds a new one and swaps it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from typoguard.config import Config
from typoguard.decide import Decider
from typoguard.guard import Guard
from typoguard.protocols.postfix_policy import PolicyReply, PolicyRequest
from typoguard.senders import InternalSenders

if TYPE_CHECKING:
    from typoguard.core.context import LiveContext


DUNNO: Final = PolicyReply("DUNNO")

# What to answer, and what to log and count: (reply, action, record). ``action`` is a ``Decision``'s
# ("reject", ..., "skip", "ignored"); ``record`` the decision log record (``JsonLog.record_json`` adds its
# time), None when nothing was decided. A plain tuple: one is made per request, tens of thousands a second.
Answer = tuple[PolicyReply, str, bytes | None]

IGNORED: Final[Answer] = (DUNNO, "ignored", None)


class _SaslLogin:
    """The SASL login of the request being decided, read only when ``Decider.decide`` asks (when the
    sender's domain does not settle it: rarely). One per decider, pointed at each request in turn, so no
    object is made per request; like the detector, a decider serves one thread (the event loop)."""

    __slots__ = ("request",)

    def __init__(self) -> None:
        self.request: PolicyRequest | None = None

    def __call__(self) -> str:
        return self.request.get("sasl_username") if self.request is not None else ""


class PolicyDecider:
    """Answers policy requests for one configuration (a ``Decider``, worded for Postfix)."""

    def __init__(
        self,
        config: Config,
        guard: Guard,
        senders: InternalSenders,
        *,
        context: LiveContext | None = None,
        names_recipient: bool = False,
    ) -> None:
        """As ``Decider``; ``names_recipient`` is for tests of the relay's wording only (Postfix names the
        recipient in front of a refusal itself)."""
        self.decider = Decider(config, guard, senders, context=context, names_recipient=names_recipient)
        self._decide = self.decider.decide_fields  # (the plain tuple: no named one per request)
        self._sasl = _SaslLogin()
        self.config = config
        self.guard = guard
        self.senders = senders
        self.context = context
        self.mode = self.decider.mode
        self.audit = self.decider.audit
        self.instance = self.decider.instance

    @classmethod
    def build(cls, config: Config) -> PolicyDecider:
        """Compile the Guard and matchers for ``config``; raises ``ConfigError`` (slow: run off the loop)."""
        built = Decider.build(config)
        return cls(config, built.guard, built.senders)

    @property
    def protected_domains(self) -> int:
        return self.decider.protected_domains

    def decide(self, request: PolicyRequest) -> Answer:
        state, recipient, sender, client, queue_id = request.rcpt_fields()
        if not recipient or state != "RCPT":
            return IGNORED
        login = self._sasl
        login.request = request
        action, reply, hold, header, record, _ = self._decide(sender, recipient, client, login, queue_id)
        if reply:
            return (PolicyReply(reply), action, record)
        if hold:
            return (PolicyReply("HOLD " + hold), action, record)
        if header:
            return (PolicyReply("PREPEND " + header), action, record)
        return (DUNNO, action, record)
