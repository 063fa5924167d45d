"""core/describe.py: the words a person reads about a look-alike (ADR 0017)."""

from __future__ import annotations

import pytest

from typoguard.core.describe import (
    deceptive,
    lookalike_sentence,
    readable_reason,
    unicode_of,
    with_unicode,
)


def test_a_cyrillic_letter_is_named_by_script_in_unicode_and_in_ascii() -> None:
    assert lookalike_sentence("\u0430rmy", "army", ascii_only=False) == (
        "It contains a Cyrillic '\u0430' that looks like a Latin 'a'."
    )
    assert lookalike_sentence("\u0430rmy", "army") == (
        "It contains a Cyrillic letter (U+0430) that looks like a Latin 'a'."
    )
    assert lookalike_sentence("army", "army") == ""
    assert lookalike_sentence("mümchen", "münchen") == ""  # the protected name's own letters


def test_several_look_alikes_and_one_of_no_script() -> None:
    two = lookalike_sentence("\u0430rm\u0443", "army")  # Cyrillic а and у
    assert two == (
        "It contains a Cyrillic letter (U+0430) that looks like a Latin 'a' and a Cyrillic letter (U+0443)"
        " that looks like a Latin 'y'."
    )
    assert lookalike_sentence("g\u217fail", "gmail") == (  # SMALL ROMAN NUMERAL ONE THOUSAND
        "It contains the character U+217F that looks like a Latin 'm'."
    )
    assert lookalike_sentence("\u0430\u0435\u043e\u0440", "aeop").endswith(", and 1 more.")


def test_a_label_and_unicode_side_by_side() -> None:
    assert unicode_of("xn--rmy-5cd.mil") == "\u0430rmy.mil"
    assert unicode_of("xn--zz-not-punycode!.mil") == "xn--zz-not-punycode!.mil"  # shown as it is
    assert with_unicode("bob@xn--rmy-5cd.mil") == "bob@\u0430rmy.mil (bob@xn--rmy-5cd.mil)"
    assert with_unicode("bob@army.mil") == "bob@army.mil"


@pytest.mark.parametrize(
    ("name", "expected"),
    [("\u0430rmy.mil", True), ("g\u217fail.com", True), ("\u0251rmy.mil", True), ("münchen.de", False)],
)
def test_deceptive_names_are_those_a_reader_takes_for_ascii(name: str, expected: bool) -> None:
    assert deceptive(name) is expected


def test_a_homoglyph_reason_never_reads_as_the_same_name_twice() -> None:
    reason = "\u0430rmy.mil looks like army.mil (look-alike characters ...)"
    assert readable_reason(reason, "xn--rmy-5cd.mil") == (
        "\u0430rmy.mil (xn--rmy-5cd.mil) looks like army.mil (look-alike characters ...)"
    )
    plain = "mümchen.de looks like münchen.de with the 'n' typed as 'm'"
    assert readable_reason(plain, "xn--mmchen-3ya.de") == plain  # an accented letter reads as itself
    assert readable_reason("army.ml looks like army.mil", "army.ml") == "army.ml looks like army.mil"
