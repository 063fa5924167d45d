"""core/models: one test class per typo model, plus the registry and what every model promises."""

from __future__ import annotations

import idna
import pytest

from typoguard.core.confusables import DomainSkeletons
from typoguard.core.models import (
    REGISTRY,
    ModelContext,
    Target,
    TypoModel,
    Variant,
    select_models,
    valid_core,
)
from typoguard.errors import ConfigError, UnknownModel

GMAIL = Target("gmail.com", "gmail", "com")
ARMY = Target("army.mil", "army", "mil")
CA_IBM = Target("ca.ibm.com", "ca.ibm", "com")
US_AF = Target("us.af.mil", "us.af", "mil")
OUTLOOK = Target("outlook.com", "outlook", "com")


def cores(model: str, target: Target, ctx: ModelContext) -> set[str]:
    return {v.core for v in REGISTRY[model].variants(target, ctx)}


def variants(model: str, target: Target, ctx: ModelContext) -> list[Variant]:
    return list(REGISTRY[model].variants(target, ctx))


# ----------------------------------------------------------------------------- registry
def test_registry_names_are_stable() -> None:
    # Configuration files name these; renaming or dropping one breaks deployed configs (adding is fine).
    assert set(REGISTRY) >= {
        "omission",
        "insertion",
        "replacement",
        "transposition",
        "repetition",
        "vowel_swap",
        "bitsquat",
        "hyphenation",
        "dot_omission",
        "dot_insertion",
        "suffix_typo",
        "suffix_append",
        "suffix_swap",
        "ascii_lookalike",
        "homoglyph",
    }


@pytest.mark.parametrize("model", list(REGISTRY.values()), ids=list(REGISTRY))
def test_every_model_is_documented_and_scored(model: TypoModel) -> None:
    assert REGISTRY[model.name] is model
    assert 0.0 < model.prior <= 1.0
    assert model.description.strip()


def test_select_all_models_by_default() -> None:
    assert select_models() == tuple(REGISTRY.values())


def test_select_models_keeps_registry_order() -> None:
    chosen = select_models(["suffix_typo", "omission"])
    assert [m.name for m in chosen] == ["omission", "suffix_typo"]


def test_unknown_model_is_an_error_not_a_skip() -> None:
    with pytest.raises(UnknownModel, match="omision") as info:
        select_models(["omission", "omision"])
    assert isinstance(info.value, ConfigError)
    assert "omission" in str(info.value)  # the message lists the known names


@pytest.mark.parametrize(
    ("core", "ok"),
    [
        ("gmail", True),
        ("ca.ibm", True),
        ("a-b", True),
        ("-ab", False),
        ("ab-", False),
        ("a..b", False),
        ("", False),
        ("a" * 63, True),
        ("a" * 64, False),
        ("gm_ail", False),
    ],
)
def test_valid_core(core: str, ok: bool) -> None:
    assert valid_core(core) is ok


@pytest.mark.parametrize("name", [n for n, m in REGISTRY.items() if m.name != "homoglyph"])
@pytest.mark.parametrize("target", [GMAIL, ARMY, CA_IBM, US_AF], ids=lambda t: t.domain)
def test_every_variant_is_a_valid_different_name(name: str, target: Target, ctx: ModelContext) -> None:
    out = variants(name, target, ctx)
    one_label_only = name == "www_prefix" and "." in target.core  # wwwca.ibm.com is a host of ibm.com
    assert out or one_label_only, f"{name} made no variant of {target.domain}"
    for v in out:
        assert v.kind == name
        assert valid_core(v.core), v
        assert (v.core, v.suffix) != (target.core, target.suffix), "a variant equal to the domain itself"
    assert len({(v.core, v.suffix) for v in out}) == len(out), "duplicate variants"


# ----------------------------------------------------------------------------- label slips
class TestOmission:
    def test_drops_each_character(self, ctx: ModelContext) -> None:
        assert cores("omission", GMAIL, ctx) == {"mail", "gail", "gmil", "gmal", "gmai"}

    def test_never_drops_the_dot_between_labels(self, ctx: ModelContext) -> None:
        assert "caibm" not in cores("omission", CA_IBM, ctx)  # that is dot_omission's
        assert {"a.ibm", "ca.bm"} <= cores("omission", CA_IBM, ctx)


class TestInsertion:
    def test_inserts_neighbouring_keys(self, ctx: ModelContext) -> None:
        out = cores("insertion", GMAIL, ctx)
        assert {"gmaiol", "gmnail", "gmaikl"} <= out
        assert "gmaizl" not in out  # z is next to neither i nor l on any shipped layout


class TestReplacement:
    def test_replaces_with_neighbouring_keys(self, ctx: ModelContext) -> None:
        out = cores("replacement", GMAIL, ctx)
        assert {"gnail", "fmail", "gmsil"} <= out
        assert "gqail" not in out  # q is nowhere near m

    def test_same_length(self, ctx: ModelContext) -> None:
        assert all(len(c) == len("gmail") for c in cores("replacement", GMAIL, ctx))


class TestTransposition:
    def test_swaps_neighbours(self, ctx: ModelContext) -> None:
        assert cores("transposition", GMAIL, ctx) == {"mgail", "gamil", "gmial", "gmali"}

    def test_never_swaps_across_a_dot(self, ctx: ModelContext) -> None:
        out = cores("transposition", CA_IBM, ctx)
        assert "c.aibm" not in out and "cai.bm" not in out
        assert {"ac.ibm", "ca.bim"} <= out


class TestRepetition:
    def test_doubles_each_character(self, ctx: ModelContext) -> None:
        assert cores("repetition", ARMY, ctx) == {"aarmy", "arrmy", "armmy", "armyy"}


class TestVowelSwap:
    def test_swaps_vowels_only(self, ctx: ModelContext) -> None:
        out = cores("vowel_swap", GMAIL, ctx)
        assert {"gmeil", "gmail".replace("i", "o")} <= out
        assert all(c[0] == "g" and c[1] == "m" and c[4] == "l" for c in out)


class TestBitsquat:
    def test_flips_one_bit(self, ctx: ModelContext) -> None:
        out = cores("bitsquat", GMAIL, ctx)
        assert "gmaim" in out  # l (0x6c) ^ 1 = m (0x6d)
        for c in out:
            diffs = [(a, b) for a, b in zip(c, "gmail", strict=True) if a != b]
            assert len(diffs) == 1
            a, b = diffs[0]
            assert bin(ord(a) ^ ord(b)).count("1") == 1


class TestHyphenation:
    def test_inserts_hyphens_inside_only(self, ctx: ModelContext) -> None:
        assert cores("hyphenation", ARMY, ctx) == {"a-rmy", "ar-my", "arm-y"}


class TestDotInsertion:
    def test_inserts_dots_inside_a_label(self, ctx: ModelContext) -> None:
        assert cores("dot_insertion", ARMY, ctx) == {"a.rmy", "ar.my", "arm.y"}


class TestDotOmission:
    def test_fuses_labels_of_the_name(self, ctx: ModelContext) -> None:
        assert Variant("caibm", "com", "dot_omission") in variants("dot_omission", CA_IBM, ctx)
        assert Variant("usaf", "mil", "dot_omission") in variants("dot_omission", US_AF, ctx)

    def test_fuses_the_suffix_into_the_name_under_any_suffix(self, ctx: ModelContext) -> None:
        out = variants("dot_omission", ARMY, ctx)
        assert out == [Variant("armymil", None, "dot_omission")]
        assert out[0].domain() == "armymil.com"
        assert out[0].domain("net") == "armymil.net"


# ----------------------------------------------------------------------------- suffix slips
class TestSuffixTypo:
    def test_mil_to_ml(self, ctx: ModelContext) -> None:
        out = variants("suffix_typo", ARMY, ctx)
        assert Variant("army", "ml", "suffix_typo") in out
        assert all(v.core == "army" for v in out)

    def test_only_real_suffixes_one_edit_away(self, ctx: ModelContext) -> None:
        out = variants("suffix_typo", GMAIL, ctx)
        suffixes = {v.suffix for v in out}
        assert {"co", "cm", "om"} <= suffixes
        for s in suffixes:
            assert s is not None
            assert ctx.suffixes.is_known(s)
            assert ctx.suffixes.edit_distance(s, "com") == 1

    def test_not_indexed_by_copying(self) -> None:
        # Matched by relating suffixes at look-up, so the index holds no copy per suffix.
        assert REGISTRY["suffix_typo"].indexed is False


class TestSuffixAppend:
    def test_appends_any_suffix(self, ctx: ModelContext) -> None:
        out = variants("suffix_append", ARMY, ctx)
        assert out == [Variant("army.mil", None, "suffix_append")]
        assert out[0].domain() == "army.mil.com"


class TestSuffixSwap:
    def test_other_real_tlds_not_typos(self, ctx: ModelContext) -> None:
        out = {v.suffix for v in variants("suffix_swap", Target("verizon.net", "verizon", "net"), ctx)}
        assert "com" in out
        assert "net" not in out
        assert "ne" not in out  # .ne is a suffix *typo* of .net, reported as such
        assert all(v.core == "army" for v in variants("suffix_swap", ARMY, ctx))

    def test_weak_prior(self) -> None:
        assert REGISTRY["suffix_swap"].prior < REGISTRY["suffix_typo"].prior
        assert REGISTRY["suffix_swap"].prior < 0.5


# ----------------------------------------------------------------------------- visual slips
class TestAsciiLookalike:
    def test_zero_for_o(self, ctx: ModelContext) -> None:
        out = cores("ascii_lookalike", OUTLOOK, ctx)
        assert {"outlo0k", "0utlook", "0utl00k"} <= out

    def test_rn_for_m(self, ctx: ModelContext) -> None:
        assert "arrny" in cores("ascii_lookalike", ARMY, ctx)
        assert "gmai1" in cores("ascii_lookalike", GMAIL, ctx)


class TestHomoglyph:
    def test_variants_are_a_labels_that_look_like_the_original(
        self, ctx: ModelContext, skeletons: DomainSkeletons
    ) -> None:
        out = variants("homoglyph", ARMY, ctx)
        assert out
        assert "xn--rmy-5cd" in {v.core for v in out}  # аrmy with Cyrillic а
        for v in out:
            assert v.core.startswith("xn--")
            shown = idna.decode(v.core)
            assert skeletons.of(shown) == skeletons.of("army")
            assert v.suffix == "mil"

    def test_matched_by_skeleton_not_enumerated(self) -> None:
        assert REGISTRY["homoglyph"].indexed is False


def test_www_prefix_is_www_run_into_the_name(ctx: ModelContext) -> None:
    # www.gmail.com typed without its dot: wwwgmail.com, a name squatters register for every big provider.
    assert variants("www_prefix", Target("gmail.com", "gmail", "com"), ctx) == [
        Variant("wwwgmail", "com", "www_prefix")
    ]
    # wwwca.ibm.com is a host of ibm.com (IBM's own); www.example.com already has its www
    assert variants("www_prefix", Target("ca.ibm.com", "ca.ibm", "com"), ctx) == []
    assert variants("www_prefix", Target("www.example.com", "www.example", "com"), ctx) == []
