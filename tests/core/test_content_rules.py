"""core/content_rules.py: what sensitive content does to a message's recipients (the relay's DATA stage)."""

from __future__ import annotations

from typoguard.core.content_rules import ContentJudgement, ContentRules, Escalation
from typoguard.core.verdict import Action

ALLOW, WARN, HOLD, REJECT = Action.ALLOW, Action.WARN, Action.HOLD, Action.REJECT
HIGH = frozenset({"classified", "cui", "credential", "ssn", "payment_card", "passport"})
RULES = ContentRules(HOLD, HOLD, HIGH)
FLAGGED = "sensitive content (itinerary, ssn) to a flagged recipient"
FIRST = "sensitive content (ssn) to a first-time external recipient"


def test_no_sensitive_content_changes_nothing() -> None:
    assert RULES.judge([WARN, ALLOW], [], [False, True]) == ContentJudgement(ALLOW)
    assert RULES.judge([HOLD], [], [False]) == ContentJudgement(HOLD)  # held at RCPT stays held


def test_a_flagged_recipient_of_any_sensitive_content_is_held() -> None:
    judged = RULES.judge([WARN, ALLOW], ["ssn", "itinerary"], [False, False])
    assert judged.outcome is HOLD
    assert judged.escalations == (Escalation(0, HOLD, FLAGGED),)
    assert judged.hold_reasons == (FLAGGED,) and judged.warned == () and judged.refusal is None


def test_a_first_contact_gets_its_rule_only_for_high_content() -> None:
    assert RULES.asks_first_contact(ALLOW, ["ssn"]) and not RULES.asks_first_contact(ALLOW, ["itinerary"])
    assert not RULES.asks_first_contact(WARN, ["ssn"]) and not RULES.asks_first_contact(HOLD, ["ssn"])
    judged = RULES.judge([ALLOW, ALLOW], ["ssn", "itinerary"], [False, True])
    assert judged.outcome is HOLD and judged.escalations == (Escalation(1, HOLD, FIRST),)
    assert RULES.judge([ALLOW], ["itinerary"], [True]) == ContentJudgement(ALLOW)  # not high: no rule


def test_the_most_severe_rule_wins_and_the_first_refusal_names_the_message() -> None:
    rules = ContentRules(REJECT, WARN, HIGH)
    judged = rules.judge([ALLOW, WARN, WARN, ALLOW], ["ssn"], [True, False, False, True])
    flagged = "sensitive content (ssn) to a flagged recipient"
    assert judged.outcome is REJECT and judged.refusal == Escalation(1, REJECT, flagged)
    assert [e.position for e in judged.escalations] == [0, 1, 2, 3]
    assert judged.warned == (Escalation(0, WARN, FIRST), Escalation(3, WARN, FIRST))


def test_a_warning_rule_does_not_hold_and_an_allow_rule_is_no_rule() -> None:
    judged = ContentRules(WARN, ALLOW, HIGH).judge([WARN, ALLOW], ["ssn"], [False, True])
    assert judged.outcome is ALLOW and [e.position for e in judged.escalations] == [0]
    assert not ContentRules(WARN, ALLOW, HIGH).asks_first_contact(ALLOW, ["ssn"])


def test_audit_mode_reports_every_rule_and_changes_nothing() -> None:
    audit = ContentRules(REJECT, HOLD, HIGH, audit=True)
    judged = audit.judge([WARN, ALLOW], ["ssn"], [False, True])
    assert judged.outcome is ALLOW and judged.refusal is None and judged.hold_reasons == ()
    assert [(e.position, e.action) for e in judged.escalations] == [(0, REJECT), (1, HOLD)]
