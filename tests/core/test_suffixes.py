"""core/suffixes.py: where the registrable part ends, and which real suffixes sit one slip away."""

from __future__ import annotations

import pytest

from typoguard.core.models import ModelContext
from typoguard.core.suffixes import SuffixRules


@pytest.fixture(scope="module")
def rules(ctx: ModelContext) -> SuffixRules:
    return ctx.suffixes


@pytest.mark.parametrize(
    ("domain", "core", "suffix"),
    [
        ("army.mil", "army", "mil"),
        ("us.af.mil", "us.af", "mil"),
        ("ca.ibm.com", "ca.ibm", "com"),
        ("bbc.co.uk", "bbc", "co.uk"),
        ("gouv.ml", "", "gouv.ml"),  # a Malian public suffix itself
        ("sante.gouv.ml", "sante", "gouv.ml"),
        ("mail.example.internal", "mail.example", "internal"),  # unknown suffix: the last label
        ("com", "", "com"),
        ("co.uk", "", "co.uk"),
    ],
)
def test_split_at_the_public_suffix(rules: SuffixRules, domain: str, core: str, suffix: str) -> None:
    assert rules.split(domain) == (core, suffix)


@pytest.mark.parametrize(
    ("domain", "registrable"),
    [("us.af.mil", "af.mil"), ("ca.ibm.com", "ibm.com"), ("news.bbc.co.uk", "bbc.co.uk"), ("co.uk", None)],
)
def test_registrable(rules: SuffixRules, domain: str, registrable: str | None) -> None:
    assert rules.registrable(domain) == registrable


def test_known_suffixes_come_from_the_public_suffix_list(rules: SuffixRules) -> None:
    for suffix in ("mil", "ml", "com", "co", "net", "ne", "gov", "co.uk"):
        assert rules.is_known(suffix), suffix
    assert not rules.is_known("mi")
    assert not rules.is_known("cmo")
    assert "co.uk" not in rules.tlds and "uk" in rules.tlds


def test_mil_is_one_slip_from_ml(rules: SuffixRules) -> None:
    near = rules.one_edit_suffixes("mil")
    assert "ml" in near  # the army.ml leak
    assert "mil" not in near
    assert "mi" not in near  # not a real suffix
    assert near <= rules.known


def test_one_edit_suffixes_are_exactly_one_edit_away(rules: SuffixRules) -> None:
    for suffix in ("com", "net", "mil", "gov", "co.uk"):
        near = rules.one_edit_suffixes(suffix)
        assert near, suffix
        assert all(rules.edit_distance(s, suffix) == 1 for s in near), suffix


@pytest.mark.parametrize(
    ("a", "b", "d"), [("mil", "ml", 1), ("com", "cmo", 1), ("net", "com", 3), ("x", "x", 0)]
)
def test_edit_distance_counts_a_transposition_as_one(a: str, b: str, d: int) -> None:
    assert SuffixRules.edit_distance(a, b) == d


class _TinyList:
    """A stand-in Public Suffix List: the rules are data passed in, not knowledge of the module."""

    def publicsuffix(self, domain: str, accept_unknown: bool = True) -> str | None:
        return "example" if domain.endswith(".example") or domain == "example" else None


def test_rules_use_only_the_list_they_are_given() -> None:
    rules = SuffixRules(_TinyList(), ["example", "exampel"])
    assert rules.split("a.b.example") == ("a.b", "example")
    assert rules.split("bob.mil") == ("bob", "mil")  # unknown to this list: falls back to the last label
    assert rules.one_edit_suffixes("example") == frozenset({"exampel"})
    assert not rules.is_known("mil")
