"""A dot dropped or hyphenated inside a multi-label suffix leaves a real, shorter one: bbcco.uk."""

from __future__ import annotations

import pytest

from typoguard.config import Config, ProtectConfig
from typoguard.core.verdict import Action
from typoguard.guard import Guard


@pytest.fixture(scope="module")
def guard() -> Guard:
    return Guard.from_config(Config(protect=ProtectConfig(domains=("bbc.co.uk", "hmrc.gov.uk", "army.mil"))))


@pytest.mark.parametrize(
    ("recipient", "intended", "kind"),
    [
        ("news@bbcco.uk", "bbc.co.uk", "dot_omission"),
        ("news@bbc-co.uk", "bbc.co.uk", "dot_hyphen"),
        ("tax@hmrcgov.uk", "hmrc.gov.uk", "dot_omission"),
        ("tax@hmrc-gov.uk", "hmrc.gov.uk", "dot_hyphen"),
    ],
)
def test_a_dot_lost_inside_the_suffix_is_refused_naming_the_domain(
    guard: Guard, recipient: str, intended: str, kind: str
) -> None:
    a = guard.check(recipient).assessment
    assert (a.action, a.intended, a.kind) == (Action.REJECT, intended, kind)
    assert "the dot between" in a.reason


def test_the_real_domains_and_unrelated_uk_names_pass(guard: Guard) -> None:
    for rcpt in ("a@bbc.co.uk", "a@hmrc.gov.uk", "a@bbcnews.co.uk", "a@cco.uk", "a@gov.uk"):
        assert guard.check(rcpt).assessment.action is Action.ALLOW, rcpt


@pytest.fixture(scope="module")
def providers() -> Guard:
    return Guard.from_config(Config(protect=ProtectConfig(domains=("gmail.com", "comcast.net", "af.mil"))))


@pytest.mark.parametrize(
    ("recipient", "intended", "action"),
    [
        ("a@gmailc.om", "gmail.com", Action.REJECT),  # .om: Oman
        ("a@comcastn.et", "comcast.net", Action.REJECT),  # .et: Ethiopia
        ("a@afm.il", "af.mil", Action.WARN),  # a two-letter name: damped, it may be someone's own
    ],
)
def test_the_dot_typed_one_key_late_lands_under_another_suffix(
    providers: Guard, recipient: str, intended: str, action: Action
) -> None:
    a = providers.check(recipient).assessment
    assert (a.action, a.intended, a.kind) == (action, intended, "dot_shift")
    assert "the dot typed one letter late" in a.reason
