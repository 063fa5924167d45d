"""What the exposure scan resolves, against dnstwist: for 20 real domains, every variant dnstwist's default
fuzzers produce is in ``variants_of`` (what ``typoguard exposure`` resolves) or falls in a documented
category of deliberate or known omissions (docs/exposure.md, "Coverage against dnstwist").

The test fails when a left-out variant fits no category (a new gap) and when a category no longer occurs
(the docs are stale: delete it there and here). It also checks the other direction: the suffix typos
dnstwist never produces (army.ml for army.mil) are in typoguard's set.
"""

from __future__ import annotations

from collections import Counter

import pytest

from typoguard.config import Config, ProtectConfig
from typoguard.core.names import normalise_domain
from typoguard.guard import Guard

dnstwist = pytest.importorskip("dnstwist")

DOMAINS = (
    "army.mil", "navy.mil", "af.mil", "state.gov", "nasa.gov", "irs.gov", "gmail.com", "outlook.com",
    "hotmail.com", "yahoo.com", "comcast.net", "verizon.net", "paypal.com", "microsoft.com", "apple.com",
    "amazon.com", "google.com", "ibm.com", "bbc.co.uk", "hmrc.gov.uk",
)  # fmt: skip

# category -> why the variants in it are not in the exposure scan's list (docs/exposure.md repeats these).
CATEGORIES = {
    "addition": "dnstwist appends any letter or digit to the name; typoguard lists the keyboard-adjacent "
    "appends (insertion) and matches the others at look-up through its fuzzy stage",
    "multi-glyph": "dnstwist's homoglyph and cyrillic fuzzers substitute several characters or transliterate "
    "the whole name; typoguard lists single confusable substitutions and matches combinations at look-up "
    "through UTS #39 skeletons",
    "plural": "dnstwist's plural inserts an s inside the name (outlsook.com); matched at look-up by the "
    "fuzzy stage",
}


def _category(domain: str, variant: str, fuzzer: str, ours: set[str]) -> str | None:
    if fuzzer == "addition":
        return "addition"
    if fuzzer in ("homoglyph", "cyrillic"):
        return "multi-glyph"
    if fuzzer == "plural":
        return "plural"
    return None


@pytest.fixture(scope="module")
def guard() -> Guard:
    return Guard.from_config(Config(protect=ProtectConfig(domains=DOMAINS)))


def test_every_dnstwist_variant_is_listed_or_left_out_for_a_documented_reason(guard: Guard) -> None:
    unexplained: list[tuple[str, str, str]] = []
    seen: Counter[str] = Counter()
    for domain in DOMAINS:
        ours = {name for name, _, _ in guard.index.variants_of(normalise_domain(domain))}
        fuzzer = dnstwist.Fuzzer(domain)
        fuzzer.generate()
        for v in fuzzer.domains:
            name = v["domain"]
            if v["fuzzer"] == "*original" or name in ours or guard.index.is_protected(name):
                continue
            category = _category(domain, name, v["fuzzer"], ours)
            if category is None:
                unexplained.append((domain, name, v["fuzzer"]))
            else:
                seen[category] += 1
    assert unexplained == []
    assert set(seen) == set(CATEGORIES)


@pytest.mark.parametrize(
    ("domain", "typo"),
    [("army.mil", "army.ml"), ("navy.mil", "navy.ml"), ("gmail.com", "gmail.co"), ("gmail.com", "gmail.cm"),
     ("comcast.net", "comcast.ne"), ("army.mil", "armymil.mil"), ("bbc.co.uk", "bbcco.uk"),
     ("bbc.co.uk", "bbc-co.uk"), ("hmrc.gov.uk", "hmrcgov.uk")],
)  # fmt: skip
def test_suffix_and_dot_typos_are_scanned(guard: Guard, domain: str, typo: str) -> None:
    assert typo in {name for name, _, _ in guard.index.variants_of(normalise_domain(domain))}
