"""core/names.py: what counts as a domain or a recipient, and the one normal form every layer compares."""

from __future__ import annotations

import dataclasses

import pytest

from typoguard.core.names import (
    MAX_DOMAIN_OCTETS,
    Domain,
    char_script,
    mixed_script_labels,
    normalise_domain,
    parse_recipient,
)
from typoguard.errors import InvalidAddress, TypoguardError


def _name_of_length(n: int) -> str:
    """An LDH domain of exactly ``n`` characters ending in ``.com``, labels of at most 63."""
    body = n - len(".com")
    labels = []
    while body > 0:
        take = min(63, body)
        if body - take == 1:  # never leave a lone dot
            take -= 1
        labels.append("a" * take)
        body -= take + 1
    name = ".".join(labels) + ".com"
    assert len(name) == n, (n, len(name))
    return name


# ----------------------------------------------------------------------------- normalise_domain
@pytest.mark.parametrize(
    "text",
    ["army.mil", "Army.MIL", "ARMY.MIL.", "ＡＲＭＹ．ｍｉｌ", "army.mil."],
)
def test_spellings_of_one_domain_normalise_to_the_same_name(text: str) -> None:
    assert normalise_domain(text) == Domain("army.mil", "army.mil")


def test_ideographic_full_stop_separates_labels() -> None:
    assert normalise_domain("army。mil").ascii == "army.mil"


@pytest.mark.parametrize("text", ["army.mil。", "ＡＲＭＹ．ｍｉｌ．"])
def test_trailing_unicode_full_stop_is_the_root_like_an_ascii_dot(text: str) -> None:
    assert normalise_domain(text).ascii == "army.mil"


def test_u_label_and_a_label_give_the_same_domain() -> None:
    from_unicode = normalise_domain("München.DE")
    from_ascii = normalise_domain("XN--MNCHEN-3YA.de")
    assert from_unicode == from_ascii == Domain("xn--mnchen-3ya.de", "münchen.de")
    assert from_unicode.is_idn
    assert str(from_unicode) == "xn--mnchen-3ya.de"


def test_ascii_domain_is_not_idn() -> None:
    assert not normalise_domain("gmail.com").is_idn


def test_homoglyph_keeps_what_a_person_sees() -> None:
    d = normalise_domain("аrmy.mil")  # Cyrillic а
    assert d.ascii.startswith("xn--")
    assert d.unicode == "аrmy.mil"
    assert d.unicode != "army.mil"


def test_domain_is_immutable() -> None:
    d = normalise_domain("army.mil")
    with pytest.raises(dataclasses.FrozenInstanceError):
        d.ascii = "army.ml"  # type: ignore[misc]


def test_longest_allowed_name_and_label_are_accepted() -> None:
    assert normalise_domain(_name_of_length(MAX_DOMAIN_OCTETS)).ascii == _name_of_length(253)
    assert normalise_domain("a" * 63 + ".com").ascii == "a" * 63 + ".com"


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("", "empty"),
        (".", "empty"),
        ("mil", "two labels"),
        ("a" * 64 + ".com", "64 characters"),
        ("army." + "b" * 64 + ".mil", "64 characters"),
        (_name_of_length(254), "254 characters"),
        (_name_of_length(300), "300 characters"),
        ("ä" * 64 + ".com", "more than the 63 allowed"),
        ("army..mil", "empty label"),
        (".army.mil", "empty label"),
        ("army.mil..", "empty label"),
        ("-army.mil", "hyphen"),
        ("army-.mil", "hyphen"),
        ("ar_my.mil", "'_'"),
        ("ar my.mil", "white space"),
        ("army.mil\n", "white space"),
        ("army\x00.mil", "control"),
        ("arm\udcffy.mil", "UTF-8"),  # an undecodable byte, as surrogateescape keeps it
        ("xn--zz.com", "malformed punycode"),
        ("xn--99999999.com", "malformed punycode"),
        ("ä/b.com", "U+002F solidus) is not allowed in a host name"),
        ("\u2488.com", "is not allowed in a host name"),  # DIGIT ONE FULL STOP: "1." in one character
        ("a" * 8000 + ".com", "8004 characters, longer than any domain name"),
        ("ä" * 2000 + ".com", "2004 characters, longer than any domain name"),
    ],
)
def test_malformed_domains_are_rejected_with_a_reason(text: str, why: str) -> None:
    with pytest.raises(InvalidAddress) as info:
        normalise_domain(text)
    message = str(info.value)
    assert why in message
    assert "\\udc" not in message, "the message shows a surrogate escape instead of a readable character"
    assert len(message) < 200, "over-long input must be shortened in the message"


# ----------------------------------------------------------------------------- valid means "can exist in DNS"
@pytest.mark.parametrize(
    ("text", "ascii", "unicode"),
    [
        (
            "xn--o38h.abrdns.com",
            "xn--o38h.abrdns.com",
            "\U0001f62d.abrdns.com",
        ),  # an emoji name that resolves
        ("XN--O38H.abrdns.com", "xn--o38h.abrdns.com", "\U0001f62d.abrdns.com"),
        ("\U0001f62d.abrdns.com", "xn--o38h.abrdns.com", "\U0001f62d.abrdns.com"),  # the same, typed
        ("💩.la", "xn--ls8h.la", "💩.la"),
        ("xn--gail-0q8a.com", "xn--gail-0q8a.com", "g\u217fail.com"),  # gⅿail: a roman numeral ⅿ
        ("xn--rmy-1n4a.mil", "xn--rmy-1n4a.mil", "\u24dcrmy.mil"),  # ⓜrmy, circled m
        ("xn--a.com", "xn--a.com", "xn--a.com"),  # decodes to a control character: shown as it is
    ],
)
def test_dns_valid_names_idna_2008_forbids_are_valid_domains(text: str, ascii: str, unicode: str) -> None:
    d = normalise_domain(text)
    assert (d.ascii, d.unicode) == (ascii, unicode)


@pytest.mark.parametrize(
    ("text", "mapped", "typed"),
    [
        ("g\u217fail.com", "gmail.com", "xn--gail-0q8a.com"),  # gⅿail.com
        ("ｇｍａｉｌ.com", "gmail.com", "xn--mi7clahmc.com"),
        ("g\u00admail.com", "gmail.com", "xn--gmail-0ha.com"),  # a soft hyphen inside
    ],
)
def test_unicode_that_maps_to_another_name_keeps_the_name_as_typed(
    text: str, mapped: str, typed: str
) -> None:
    d = normalise_domain(text)
    assert d.ascii == mapped
    assert d.as_typed is not None
    assert d.as_typed.ascii == typed


@pytest.mark.parametrize("text", ["gmail.com", "München.DE", "xn--mnchen-3ya.de", "ARMY.MIL"])
def test_names_typed_as_they_map_have_no_other_typed_form(text: str) -> None:
    assert normalise_domain(text).as_typed is None


def test_over_long_input_is_refused_before_it_is_walked() -> None:
    """Issue 15 item 6: an 8 KB name cost ~2 ms (every character inspected before the length check)."""
    import time

    names = [f"{i:04d}" + "a" * 8000 + ".com" for i in range(300)]
    recipients = ["bob@" + n for n in names] + ["b" * 8000 + "@army.mil"] * 300
    t0 = time.perf_counter()
    for n in names:
        with pytest.raises(InvalidAddress):
            normalise_domain(n)
    for r in recipients:
        with pytest.raises(InvalidAddress):
            parse_recipient(r)
    per_call = (time.perf_counter() - t0) / (len(names) + len(recipients))
    assert per_call < 200e-6, f"{per_call * 1e6:.0f} us per over-long name"


def test_invalid_address_is_a_typoguard_error_and_a_value_error() -> None:
    with pytest.raises(TypoguardError):
        normalise_domain("")
    with pytest.raises(ValueError):
        normalise_domain("")


# ----------------------------------------------------------------------------- parse_recipient
@pytest.mark.parametrize(
    ("text", "local", "domain"),
    [
        ("bob@army.mil", "bob", "army.mil"),
        ("<bob@army.mil>", "bob", "army.mil"),
        ("  bob@Army.Mil.  ", "bob", "army.mil"),
        ('"j doe"@army.mil', '"j doe"', "army.mil"),
        ('"a@b"@army.mil', '"a@b"', "army.mil"),
        ("bob.smith+tag@us.af.mil", "bob.smith+tag", "us.af.mil"),
        ("jörg@münchen.de", "jörg", "xn--mnchen-3ya.de"),
        ("army.mil", None, "army.mil"),
        ("ARMY.ML.", None, "army.ml"),
    ],
)
def test_recipients_parse_into_local_part_and_domain(text: str, local: str | None, domain: str) -> None:
    r = parse_recipient(text)
    assert r.local == local
    assert r.domain is not None
    assert r.domain.ascii == domain
    assert r.literal is None


def test_address_literal_has_no_domain() -> None:
    r = parse_recipient("bob@[192.0.2.1]")
    assert r.domain is None
    assert r.literal == "[192.0.2.1]"


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("<>", "empty"),
        ("notanaddress", "no '@'"),
        ("bob@", "nothing after '@'"),
        ("@army.mil", "nothing before '@'"),
        ("x" * 65 + "@army.mil", "local part longer than 64"),
        ('"unterminated@army.mil', "unterminated"),
        (".bob@army.mil", "quoting"),
        ("bob.@army.mil", "quoting"),
        ("b..ob@army.mil", "quoting"),
        ("a@b@army.mil", "quoting"),
        ("bob@army..mil", "empty label"),
        ("bob@" + "a" * 64 + ".mil", "64 characters"),
        ("b\udcffob@army.mil", "UTF-8"),
    ],
)
def test_malformed_recipients_are_rejected_with_a_reason(text: str, why: str) -> None:
    with pytest.raises(InvalidAddress) as info:
        parse_recipient(text)
    assert why in str(info.value)


# ----------------------------------------------------------------------------- scripts
@pytest.mark.parametrize(
    ("ch", "script"),
    [
        ("a", "LATIN"),
        ("Z", "LATIN"),
        ("1", None),
        ("-", None),
        ("а", "CYRILLIC"),
        ("α", "GREEK"),
        ("中", "HAN"),
    ],
)
def test_char_script(ch: str, script: str | None) -> None:
    assert char_script(ch) == script


@pytest.mark.parametrize(
    ("text", "bad"),
    [
        ("pаypal.com", ["pаypal"]),  # Latin with one Cyrillic а
        ("gmαil.com", ["gmαil"]),  # Latin with Greek α
        ("пример.рф", []),  # all Cyrillic: a real Russian name
        ("münchen.de", []),  # Latin with a diacritic is one script
        ("東京abc.jp", []),  # Han + Latin is allowed (UTS #39 highly restrictive)
        ("gmail.com", []),
    ],
)
def test_mixed_script_labels(text: str, bad: list[str]) -> None:
    assert mixed_script_labels(normalise_domain(text)) == bad
