"""Coverage against dnstwist: every look-alike dnstwist generates must map back to the domain it came from.

dnstwist (the usual peer) *generates* permutations of a domain; typoguard answers the inverse question (given
what was typed, which protected domain was meant). So for a sample of protected domains we run
``dnstwist.Fuzzer(domain).generate()`` with its default fuzzers and require, for every variant, that
``index.lookup`` returns a finding whose ``intended`` is the domain dnstwist started from — unless the variant
is legitimately allowed: protected itself, under a protected domain's organisation, or on the shipped list of
well-known legitimate mail domains (those are pinned below, with the reason for each, so a change to the legit
list that silently lets a dnstwist look-alike through fails here).

Misses are collected per fuzzer and sorted into documented gap classes (see docs/dnstwist-coverage.md). A
known gap is a core bug or model gap for the core owner to fix, not a deliberate choice; its recorded count
is a ceiling: the test fails when a gap grows or a miss of a new kind appears, and passes when coverage
improves (then lower the ceiling, or delete the class once it is gone, here and in the docs).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from typoguard import resources
from typoguard.config import Config, ProtectConfig
from typoguard.core.names import normalise_domain
from typoguard.errors import InvalidAddress
from typoguard.guard import Guard

dnstwist = pytest.importorskip("dnstwist")

PROTECTED: tuple[str, ...] = (
    "army.mil",
    "navy.mil",
    "us.af.mil",
    "state.gov",
    "gmail.com",
    "outlook.com",
    "comcast.net",
    "ca.ibm.com",
    "paypal.com",
    "microsoft.com",
)

# The fuzzers dnstwist runs by default that produce variants for these domains. ("dictionary" and
# "tld-swap" need word lists and produce nothing by default.) Pinned so that a new dnstwist fuzzer is
# noticed here rather than silently left unchecked.
FUZZERS: tuple[str, ...] = (
    "addition",
    "bitsquatting",
    "cyrillic",
    "homoglyph",
    "hyphenation",
    "insertion",
    "omission",
    "plural",
    "repetition",
    "replacement",
    "subdomain",
    "transposition",
    "various",
    "vowel-swap",
)

# Deliberate exceptions: dnstwist variants that are allowed on purpose because they are real, well-known
# mail domains (the shipped legit list, matched on the registrable domain). Variant -> reason.
LEGITIMATE_BY_DESIGN: dict[str, str] = {
    "mail.com": "mail.com is a large real mail provider (United Internet), one omission from gmail.com",
    "email.com": "one of mail.com's own alias domains; a bit flip (g->e) from gmail.com",
    "ymail.com": "Yahoo's own mail domain, one key (g->y) from gmail.com",
    "g.mail.com": "a host under mail.com: the legit list covers a registrable domain's subdomains",
}


@dataclass(frozen=True)
class Gap:
    """A known miss class: how many dnstwist variants fall in it today (a ceiling) and why they are missed."""

    fuzzer: str
    ceiling: int
    why: str


# Known gaps in the core, by class. Counts are exact for dnstwist 20250130 and the core at the time of
# writing; they are ceilings. Each class is described in docs/dnstwist-coverage.md.
KNOWN_GAPS: dict[str, Gap] = {
    "homoglyph/two-substitutions": Gap(
        "homoglyph",
        34,
        "two substitutions at once from dnstwist's ASCII glyph table where at least one pair is one few "
        "readers confuse and UTS #39 does not list (c/e, g/q, k/lc, b/id, n/r, u/v): coneast.net, "
        "qnail.com, outloolc.com, ca.idn.com, rauy.mil. typoguard matches one such substitution (plus one "
        "more slip, as read) but not two: too many real names lie two such steps from a short name",
    ),
}


@dataclass
class Outcome:
    """What happened to one fuzzer's variants."""

    total: int = 0
    recognised: int = 0
    allowed: list[str] = field(default_factory=list)  # protected / same organisation / legit list
    outranked: list[tuple[str, str, str | None]] = field(default_factory=list)  # (variant, intended, first)
    missed: dict[str, list[tuple[str, str]]] = field(default_factory=lambda: defaultdict(list))


def _one_glyph_variants(fuzzer: Any) -> set[str]:
    """The names dnstwist's homoglyph fuzzer makes with ONE substitution (it applies two rounds).

    Mirrors the inner ``mix`` of ``Fuzzer._homoglyph``, using dnstwist's own glyph tables.
    """
    ascii_glyphs: dict[str, tuple[str, ...]] = fuzzer.glyphs_ascii
    idn_glyphs: dict[str, tuple[str, ...]] = fuzzer.glyphs_idn_by_tld.get(fuzzer.tld, fuzzer.glyphs_unicode)
    glyphs = {k: {*ascii_glyphs.get(k, ()), *idn_glyphs.get(k, ())} for k in {*ascii_glyphs, *idn_glyphs}}
    name: str = fuzzer.domain
    cores: set[str] = set()
    for i, c in enumerate(name):
        cores.update(name[:i] + g + name[i + 1 :] for g in glyphs.get(c, ()))
    for i in range(len(name) - 1):
        win = name[i : i + 2]
        for c in {win[0], win[1], win}:
            cores.update(name[:i] + win.replace(c, g) + name[i + 2 :] for g in glyphs.get(c, ()))
    out: set[str] = set()
    for core in cores:
        try:
            out.add(".".join(x for x in (fuzzer.subdomain, core, fuzzer.tld) if x).encode("idna").decode())
        except UnicodeError:
            continue
    return out


def _gap_class(fuzzer: str, intended: str, variant: str, one_glyph: set[str]) -> str | None:
    """The documented gap a miss belongs to, or None for a miss of a kind not seen before."""
    if fuzzer == "homoglyph" and variant not in one_glyph:
        return "homoglyph/two-substitutions"
    return None


@dataclass
class Coverage:
    outcomes: dict[str, Outcome]
    unclassified: list[tuple[str, str, str]]  # (fuzzer, intended, variant)
    by_gap: dict[str, list[tuple[str, str]]]
    legit_allowed: dict[str, str]  # variant -> intended


@pytest.fixture(scope="module")
def coverage() -> Coverage:
    guard = Guard.from_config(Config(protect=ProtectConfig(domains=PROTECTED)))
    index = guard.index
    legit = resources.legitimate_domains()
    registrable: Callable[[str], str | None] = resources.suffix_rules().registrable
    outcomes: dict[str, Outcome] = defaultdict(Outcome)
    unclassified: list[tuple[str, str, str]] = []
    by_gap: dict[str, list[tuple[str, str]]] = defaultdict(list)
    legit_allowed: dict[str, str] = {}
    for intended in PROTECTED:
        fuzzer = dnstwist.Fuzzer(intended)
        fuzzer.generate()
        one_glyph = _one_glyph_variants(fuzzer)
        for perm in sorted(fuzzer.domains, key=lambda p: (p["fuzzer"], p["domain"])):
            name, variant = perm["fuzzer"], perm["domain"]
            if name == "*original":
                continue
            out = outcomes[name]
            out.total += 1
            try:
                domain = normalise_domain(variant)
            except InvalidAddress:  # refused as invalid: never delivered, so not a miss
                out.recognised += 1
                continue
            if index.is_protected(domain.ascii):
                out.allowed.append(variant)
                continue
            if domain.ascii in legit or registrable(domain.ascii) in legit:
                out.allowed.append(variant)
                legit_allowed[domain.ascii] = intended
                continue
            findings = index.lookup(domain)
            if findings and findings[0].intended == intended:
                out.recognised += 1
            elif any(f.intended == intended for f in findings):
                out.outranked.append((variant, intended, findings[0].intended))
            else:
                gap = _gap_class(name, intended, variant, one_glyph)
                out.missed[gap or "unclassified"].append((intended, variant))
                if gap is None:
                    unclassified.append((name, intended, variant))
                else:
                    by_gap[gap].append((intended, variant))
    return Coverage(dict(outcomes), unclassified, dict(by_gap), legit_allowed)


def _examples(pairs: list[tuple[str, str]], n: int = 5) -> str:
    return ", ".join(f"{v} (for {d})" for d, v in pairs[:n])


def test_dnstwist_runs_exactly_the_pinned_fuzzers(coverage: Coverage) -> None:
    assert sorted(coverage.outcomes) == sorted(FUZZERS)


@pytest.mark.parametrize("fuzzer", FUZZERS)
def test_every_variant_maps_back_to_its_domain(coverage: Coverage, fuzzer: str) -> None:
    out = coverage.outcomes[fuzzer]
    assert out.total > 0
    assert not out.outranked, (
        f"{fuzzer}: the right domain is found but another ranks first: {out.outranked[:5]}"
    )
    unknown = out.missed.get("unclassified", [])
    assert not unknown, f"{fuzzer}: {len(unknown)} misses of a new kind, e.g. {_examples(unknown)}"
    for gap_name, misses in out.missed.items():
        gap = KNOWN_GAPS[gap_name]
        assert gap.fuzzer == fuzzer
        assert len(misses) <= gap.ceiling, (
            f"{gap_name}: {len(misses)} misses, over the {gap.ceiling} recorded, e.g. {_examples(misses)}"
        )
    missed = sum(len(m) for m in out.missed.values())
    assert out.recognised + len(out.allowed) + missed == out.total


def test_the_only_legitimately_allowed_variants_are_the_documented_ones(coverage: Coverage) -> None:
    assert sorted(coverage.legit_allowed) == sorted(LEGITIMATE_BY_DESIGN)
