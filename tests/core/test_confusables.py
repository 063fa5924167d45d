"""core/confusables.py: UTS #39 skeletons, so characters that look alike compare equal."""

from __future__ import annotations

import pytest

from typoguard.core.confusables import DomainSkeletons, parse_confusables, skeleton

SAMPLE = """\ufeff# confusables.txt excerpt
0430 ;\t0061 ;\tMA\t# ( а → a ) CYRILLIC SMALL LETTER A → LATIN SMALL LETTER A
006D ;\t0072 006E ;\tMA\t# ( m → rn )
0030 ;\t004F ;\tMA\t# ( 0 → O )

0061 0062 ;\t0063 ;\tMA\t# two-character sources are not single substitutions: skipped
ZZZZ ;\t0061 ;\tMA\t# not hex: skipped
0431 ;\t;\tMA\t# no target: skipped
"""


def test_parse_confusables_keeps_single_character_sources() -> None:
    table = parse_confusables(SAMPLE)
    assert table == {"а": "a", "m": "rn", "0": "O"}


def test_skeleton_maps_through_the_table() -> None:
    table = parse_confusables(SAMPLE)
    assert skeleton("аrmy", table) == skeleton("army", table)
    assert skeleton("army", table) == "arrny"


@pytest.mark.parametrize(
    ("lookalike", "original"),
    [
        ("аrmy", "army"),  # Cyrillic а
        ("ARMY", "army"),  # case
        ("àrmy", "army"),  # a combining mark
        ("arrny", "army"),  # rn reads as m
        ("g00gle", "google"),  # zero reads as O
        ("gmαil", "gmail"),  # Greek alpha
        ("ԁisa", "disa"),  # Cyrillic komi de
    ],
)
def test_domain_skeletons_merge_lookalikes(skeletons: DomainSkeletons, lookalike: str, original: str) -> None:
    assert skeletons.of(lookalike) == skeletons.of(original)


@pytest.mark.parametrize(("a", "b"), [("army", "navy"), ("gmail", "gnail"), ("ibm", "ibn")])
def test_domain_skeletons_keep_different_names_apart(skeletons: DomainSkeletons, a: str, b: str) -> None:
    assert skeletons.of(a) != skeletons.of(b)


def test_skeleton_of_a_skeleton_is_stable(skeletons: DomainSkeletons) -> None:
    for text in ("аrmy.mil", "G00GLE.com", "münchen.de"):
        once = skeletons.of(text)
        assert skeletons.of(once) == once
