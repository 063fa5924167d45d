"""core/policy.py: evidence in, action out; the hard rules come before any threshold."""

from __future__ import annotations

import pytest

from typoguard.core.policy import Policy, Thresholds
from typoguard.core.verdict import Action, Finding, is_suffix_swap, is_suffix_typo
from typoguard.errors import ConfigError


def finding(typed: str, intended: str, kind: str, score: float) -> Finding:
    return Finding(typed, intended, kind, score, f"{typed} looks like {intended} with a slip")


def _registrable(domain: str) -> str | None:
    # enough of a public-suffix split for these tests: the last two labels
    labels = domain.split(".")
    return ".".join(labels[-2:]) if len(labels) >= 2 else None


POLICY = Policy(
    Thresholds(),
    trusted=["army.com", "Partner.ORG."],
    legitimate=["ymail.com", "mail.com"],
    registrable=_registrable,
)


# ----------------------------------------------------------------------------- thresholds
def test_default_thresholds() -> None:
    t = Thresholds()
    assert (t.warn_at, t.hold_at, t.reject_at) == (0.4, 0.7, 0.9)


@pytest.mark.parametrize(
    ("score", "action"),
    [
        (0.0, Action.ALLOW),
        (0.39, Action.ALLOW),
        (0.4, Action.WARN),
        (0.69, Action.WARN),
        (0.7, Action.HOLD),
        (0.89, Action.HOLD),
        (0.9, Action.REJECT),
        (1.0, Action.REJECT),
    ],
)
def test_threshold_boundaries_are_inclusive(score: float, action: Action) -> None:
    assert Thresholds().action_for(score) is action


@pytest.mark.parametrize(
    ("reject", "hold", "warn"),
    [(0.5, 0.7, 0.4), (0.9, 0.3, 0.4), (1.1, 0.7, 0.4), (0.9, 0.7, -0.1), (0.2, 0.3, 0.4)],
)
def test_thresholds_must_be_ordered_within_0_and_1(reject: float, hold: float, warn: float) -> None:
    with pytest.raises(ConfigError, match="warn_at <= hold_at <= reject_at"):
        Thresholds(reject_at=reject, hold_at=hold, warn_at=warn)


def test_equal_thresholds_are_allowed() -> None:
    t = Thresholds(reject_at=0.5, hold_at=0.5, warn_at=0.5)
    assert t.action_for(0.5) is Action.REJECT


# ----------------------------------------------------------------------------- decide
def test_protected_is_allowed_whatever_the_evidence() -> None:
    a = POLICY.decide("army.mil", [finding("army.mil", "navy.mil", "replacement", 1.0)], protected=True)
    assert a.action is Action.ALLOW
    assert "protected" in a.reason


def test_no_evidence_is_allowed() -> None:
    a = POLICY.decide("example.com", [])
    assert a.action is Action.ALLOW
    assert a.finding is None and a.intended is None and a.score == 0.0


@pytest.mark.parametrize("domain", ["army.com", "mail.army.com", "partner.org"])
def test_trusted_is_never_flagged(domain: str) -> None:
    a = POLICY.decide(domain, [finding(domain, "army.mil", "suffix_typo", 1.0)])
    assert a.action is Action.ALLOW
    assert "trusted" in a.reason
    assert a.finding is not None  # the evidence is still reported


@pytest.mark.parametrize("domain", ["ymail.com", "mail.com"])
def test_well_known_mail_domain_is_never_flagged(domain: str) -> None:
    a = POLICY.decide(domain, [finding(domain, "gmail.com", "replacement", 0.99)])
    assert a.action is Action.ALLOW
    assert "well-known legitimate" in a.reason


@pytest.mark.parametrize("kind", ["suffix_swap", "omission+suffix_swap", "homoglyph+suffix_swap"])
def test_suffix_swap_is_never_more_than_a_warning(kind: str) -> None:
    a = POLICY.decide("verizon.com", [finding("verizon.com", "verizon.net", kind, 1.0)])
    assert a.action is Action.WARN


def test_suffix_swap_below_warn_is_allowed() -> None:
    a = POLICY.decide("verizon.com", [finding("verizon.com", "verizon.net", "suffix_swap", 0.1)])
    assert a.action is Action.ALLOW


def test_suffix_typo_rejects() -> None:
    a = POLICY.decide("army.ml", [finding("army.ml", "army.mil", "suffix_typo", 0.97)])
    assert a.action is Action.REJECT
    assert (a.intended, a.kind, a.score) == ("army.mil", "suffix_typo", 0.97)
    assert a.reason == "army.ml looks like army.mil with a slip"


def test_action_rests_on_the_best_finding() -> None:
    strong = finding("gmial.com", "gmail.com", "transposition", 0.95)
    weak = finding("gmial.com", "email.com", "edit", 0.3)
    a = POLICY.decide("gmial.com", [strong, weak])
    assert a.action is Action.REJECT
    assert a.finding == strong
    assert a.findings == (strong, weak)


def test_custom_thresholds_change_the_action() -> None:
    strict = Policy(Thresholds(reject_at=0.5, hold_at=0.3, warn_at=0.1))
    lax = Policy(Thresholds(reject_at=1.0, hold_at=1.0, warn_at=1.0))
    f = [finding("gmial.com", "gmail.com", "transposition", 0.6)]
    assert strict.decide("gmial.com", f).action is Action.REJECT
    assert lax.decide("gmial.com", f).action is Action.ALLOW


# ----------------------------------------------------------------------------- actions and kinds
def test_actions_know_their_severity_mildest_first() -> None:
    assert [a.severity for a in Action] == [0, 1, 2, 3, 4]
    assert max([Action.WARN, Action.REJECT, Action.HOLD], key=lambda a: a.severity) is Action.REJECT
    assert Action.INVALID.severity > Action.REJECT.severity  # an address to fix outranks every verdict


@pytest.mark.parametrize(
    ("kind", "typo", "swap"),
    [
        ("suffix_typo", True, False),
        ("omission+suffix_typo", True, False),
        ("suffix_swap", False, True),
        ("replacement+suffix_swap", False, True),
        ("omission", False, False),
        (None, False, False),
    ],
)
def test_suffix_kinds_alone_or_combined(kind: str | None, typo: bool, swap: bool) -> None:
    assert (is_suffix_typo(kind), is_suffix_swap(kind)) == (typo, swap)


def test_a_suffix_swap_is_at_most_warned_about_whatever_its_score() -> None:
    t = Thresholds(0.9, 0.7, 0.4)
    assert t.action_for_finding(0.95, "suffix_swap") is Action.WARN
    assert t.action_for_finding(0.75, "omission+suffix_swap") is Action.WARN
    assert t.action_for_finding(0.2, "suffix_swap") is Action.ALLOW
    assert t.action_for_finding(0.95, "suffix_typo") is Action.REJECT
    assert t.action_for_finding(0.75, "omission") is Action.HOLD
