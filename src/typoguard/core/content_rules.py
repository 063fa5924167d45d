"""What sensitive content in a message does to its recipients' actions (the relay's DATA stage). Pure.

The content scan says which categories a message holds (``typoguard.content``: counts, never the text), the
RCPT decisions what each recipient got, the store which recipients are first contacts. From those plain
values (ADR 0010):

* a **flagged** recipient (warned at RCPT) of any sensitive content gets ``flagged_action``;
* a recipient allowed at RCPT that is a **first contact** (external, never written to from the sender's
  domain) gets ``first_contact_action`` when the content holds a **high** category;
* the message goes by its most severe action: refused (the first recipient rejected by a rule names it),
  held (also when a recipient was held at RCPT) or delivered; a recipient warned by a rule gets its
  warning header;
* in **audit** mode every rule that fired is reported, to be logged, and nothing else changes.

Actions only go up: a rule whose action is ``allow`` does nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import NamedTuple

from typoguard.core.verdict import Action


class Escalation(NamedTuple):
    """A rule that fired: for the recipient at ``position`` (in the order given), ``action``, because
    ``reason``."""

    position: int
    action: Action
    reason: str


@dataclass(frozen=True, slots=True)
class ContentJudgement:
    """What the content does to one message."""

    outcome: Action  # ALLOW (deliver), HOLD or REJECT
    escalations: tuple[Escalation, ...] = ()  # every rule that fired, in recipient order (to log)
    refusal: Escalation | None = None  # outcome REJECT: the rule that refuses the message
    hold_reasons: tuple[str, ...] = ()  # why the message is held, beyond the RCPT decisions' reasons
    warned: tuple[Escalation, ...] = ()  # recipients that get a warning header for the content


@dataclass(frozen=True, slots=True)
class ContentRules:
    """The configured rules (``[relay] content_*``) and the policy mode."""

    flagged_action: Action = Action.HOLD
    first_contact_action: Action = Action.HOLD
    high: frozenset[str] = frozenset()
    audit: bool = False

    def asks_first_contact(self, action: Action, categories: Iterable[str]) -> bool:
        """Whether ``judge`` must know if a recipient that got ``action`` at RCPT is a first contact (the
        caller asks the store only then): an allowed recipient, and high content, and a rule for it."""
        return (
            action is Action.ALLOW
            and self.first_contact_action is not Action.ALLOW
            and not self.high.isdisjoint(categories)
        )

    def judge(
        self, actions: Sequence[Action], categories: Iterable[str], first_contact: Sequence[bool]
    ) -> ContentJudgement:
        """The judgement for a message whose recipients got ``actions`` at RCPT (allow, warn or hold: a
        rejected one is no recipient), whose content holds ``categories``, and whose recipients are first
        contacts as ``first_contact`` says (only asked where ``asks_first_contact``; False elsewhere)."""
        worst = Action.HOLD if Action.HOLD in actions else Action.ALLOW
        found = sorted(set(categories))
        if not found:
            return ContentJudgement(worst)
        high = [c for c in found if c in self.high]
        escalations: list[Escalation] = []
        hold_reasons: list[str] = []
        warned: list[Escalation] = []
        refusal = None
        for i, got in enumerate(actions):
            if got is Action.WARN:
                rule = Escalation(
                    i, self.flagged_action, f"sensitive content ({', '.join(found)}) to a flagged recipient"
                )
            elif high and got is Action.ALLOW and first_contact[i]:
                rule = Escalation(
                    i,
                    self.first_contact_action,
                    f"sensitive content ({', '.join(high)}) to a first-time external recipient",
                )
            else:
                continue
            action = rule.action
            if action is Action.ALLOW:
                continue
            escalations.append(rule)
            if self.audit:
                continue
            if action is Action.WARN:
                warned.append(rule)
            elif action.severity > worst.severity:
                worst = action
                if action is Action.REJECT:
                    refusal = rule
            if action is Action.HOLD:
                hold_reasons.append(rule.reason)
        return ContentJudgement(worst, tuple(escalations), refusal, tuple(hold_reasons), tuple(warned))
