"""core/index.py: protected domains compiled once; a typed domain looked up to the finding a person needs."""

from __future__ import annotations

import pytest

from typoguard.core.confusables import DomainSkeletons
from typoguard.core.index import LookalikeIndex, length_factor
from typoguard.core.models import ModelContext
from typoguard.core.names import normalise_domain
from typoguard.errors import InvalidAddress

try:  # the reason phrases are moving to core/describe.py; until then they live in core/index.py
    from typoguard.core.describe import describe_change
except ImportError:  # pragma: no cover - depends on the core's progress
    from typoguard.core.index import describe_change  # type: ignore[attr-defined,no-redef]


def _compile(ctx: ModelContext, skeletons: DomainSkeletons, *domains: str, **kw: object) -> LookalikeIndex:
    return LookalikeIndex.compile([normalise_domain(d) for d in domains], ctx, skeletons, **kw)  # type: ignore[arg-type]


def best(index: LookalikeIndex, typed: str):  # type: ignore[no-untyped-def]
    found = index.lookup(normalise_domain(typed))
    assert found, f"{typed} matched nothing"
    return found[0]


# ----------------------------------------------------------------------------- look-up, golden
@pytest.mark.parametrize(
    ("typed", "intended", "kind"),
    [
        ("army.ml", "army.mil", "suffix_typo"),
        ("navy.ml", "navy.mil", "suffix_typo"),
        ("us.af.ml", "us.af.mil", "suffix_typo"),
        ("army.mi", "army.mil", "suffix_typo"),  # no such suffix, still a slip
        ("gmail.co", "gmail.com", "suffix_typo"),
        ("comcast.ne", "comcast.net", "suffix_typo"),
        ("caibm.com", "ca.ibm.com", "dot_omission"),
        ("armymil.com", "army.mil", "dot_omission"),
        ("army.mil.com", "army.mil", "suffix_append"),
        ("gmial.com", "gmail.com", "transposition"),
        ("gmal.com", "gmail.com", "omission"),
        ("gmaill.com", "gmail.com", "repetition"),
        ("gnail.com", "gmail.com", "replacement"),
        ("gma-il.com", "gmail.com", "hyphenation"),
        ("gm.ail.com", "gmail.com", "dot_insertion"),
        ("outlo0k.com", "outlook.com", "ascii_lookalike"),
        ("arrny.mil", "army.mil", "ascii_lookalike"),
        ("xn--rmy-5cd.mil", "army.mil", "homoglyph"),  # аrmy.mil, Cyrillic а
        ("verizon.com", "verizon.net", "suffix_swap"),
        ("amry.ml", "army.mil", "transposition+suffix_typo"),
        ("gmial.net", "gmail.com", "transposition+suffix_swap"),
        ("wwwgmail.com", "gmail.com", "www_prefix"),  # www.gmail.com without its dot: registered squats
        ("wwwarmy.mil", "army.mil", "www_prefix"),
        ("wwwcomcast.net", "comcast.net", "www_prefix"),
    ],
)
def test_lookup_golden(index: LookalikeIndex, typed: str, intended: str, kind: str) -> None:
    f = best(index, typed)
    assert (f.intended, f.kind) == (intended, kind)
    assert f.typed == typed
    assert 0.0 < f.score <= 1.0
    assert f.reason.startswith(normalise_domain(typed).unicode + " looks like " + intended)


def test_reason_names_the_slip(index: LookalikeIndex) -> None:
    assert best(index, "army.ml").reason == "army.ml looks like army.mil with the 'i' of .mil dropped"
    assert best(index, "caibm.com").reason == "caibm.com looks like ca.ibm.com with the dot of ca.ibm dropped"
    assert "'ai' of gmail swapped" in best(index, "gmial.com").reason
    assert "bounces" in best(index, "army.mi").reason
    assert best(index, "wwwgmail.com").reason == (
        "wwwgmail.com looks like gmail.com with 'www' typed before gmail without its dot"
    )
    homo = best(index, "xn--rmy-5cd.mil").reason
    assert "cyrillic small letter a" in homo and homo.startswith("аrmy.mil looks like army.mil")


@pytest.mark.parametrize(
    "typed", ["gouv.ml", "example.com", "sante.gouv.ml", "wikipedia.org", "ibm.co.uk.example"]
)
def test_unrelated_domains_match_nothing(index: LookalikeIndex, typed: str) -> None:
    assert index.lookup(normalise_domain(typed)) == []


def test_suffix_typo_outranks_suffix_swap(index: LookalikeIndex) -> None:
    assert best(index, "army.ml").score > best(index, "army.com").score


def test_findings_come_best_first(ctx: ModelContext, skeletons: DomainSkeletons) -> None:
    idx = _compile(ctx, skeletons, "gmail.com", "gmail.net", "email.com")
    found = idx.lookup(normalise_domain("gmaill.com"))
    assert len(found) >= 2
    assert [f.score for f in found] == sorted((f.score for f in found), reverse=True)
    assert found[0].intended == "gmail.com"


# ----------------------------------------------------------------------------- protected names
@pytest.mark.parametrize(
    "name", ["army.mil", "ca.ibm.com", "us.ibm.com", "ibm.com", "mail.army.mil", "x.us.af.mil"]
)
def test_protected_and_same_organisation_names_are_not_lookalikes(index: LookalikeIndex, name: str) -> None:
    assert index.is_protected(name)
    assert index.lookup(normalise_domain(name)) == []


def test_bare_public_suffix_cannot_be_protected(ctx: ModelContext, skeletons: DomainSkeletons) -> None:
    idx = _compile(ctx, skeletons, "co.uk", "gouv.ml", "army.mil")
    assert idx.domains == frozenset({"army.mil"})


def test_duplicates_compile_once(ctx: ModelContext, skeletons: DomainSkeletons) -> None:
    idx = _compile(ctx, skeletons, "army.mil", "ARMY.MIL", "army.mil.")
    assert [p.domain for p in idx.protected] == ["army.mil"]


def test_protected_unicode_domain_is_matched_by_its_a_label(
    ctx: ModelContext, skeletons: DomainSkeletons
) -> None:
    idx = _compile(ctx, skeletons, "münchen.de")
    assert idx.is_protected("xn--mnchen-3ya.de")
    assert best(idx, "munchen.de").intended == "xn--mnchen-3ya.de"


# ----------------------------------------------------------------------------- configuration of the index
def test_weights_scale_scores(ctx: ModelContext, skeletons: DomainSkeletons) -> None:
    full = _compile(ctx, skeletons, "army.mil")
    half = _compile(ctx, skeletons, "army.mil", weights={"army.mil": 0.5})
    assert best(half, "army.ml").score == pytest.approx(best(full, "army.ml").score * 0.5)


def test_disabled_model_no_longer_precomputes_its_variants(
    ctx: ModelContext, skeletons: DomainSkeletons
) -> None:
    idx = _compile(ctx, skeletons, "army.mil", models=["omission"])
    assert idx.lookup(normalise_domain("armymil.com")) == []
    assert {m.name for m in idx.models} == {"omission"}
    # Suffix relations are checked at look-up for every index: army.ml is always caught.
    assert best(idx, "army.ml").kind == "suffix_typo"


def test_fuzzy_stage_catches_what_no_model_made(ctx: ModelContext, skeletons: DomainSkeletons) -> None:
    idx = _compile(ctx, skeletons, "googlemail.com", models=["omission"])
    one = best(idx, "googlemaxl.com")  # x is nowhere near i
    assert one.kind == "edit" and one.intended == "googlemail.com"
    two = best(idx, "gooxlemaxl.com")
    assert two.kind == "two_edits"
    assert two.score < one.score


def test_short_names_get_no_two_edit_matches(ctx: ModelContext, skeletons: DomainSkeletons) -> None:
    idx = _compile(ctx, skeletons, "army.mil")
    assert idx.lookup(normalise_domain("axmx.mil")) == []


def test_short_names_are_damped(index: LookalikeIndex) -> None:
    # ibn.com is far more likely someone else's domain than gnail.com is.
    assert best(index, "ca.ibn.com").score < best(index, "gnail.com").score


@pytest.mark.parametrize(
    ("protected", "typed", "most"),
    [
        # Real agencies an 'l' for an 'i' apart: the skeleton (i, l and 1 read as one) matched them at the
        # undamped 0.95 and refused mail to the Defense Logistics Agency when the DIA was protected.
        ("dia.mil", "dla.mil", 0.95 * 0.7),
        ("dla.mil", "dia.mil", 0.95 * 0.7),
        ("cia.gov", "cla.gov", 0.95 * 0.7),
        ("ibm.com", "lbm.com", 0.95 * 0.7),
        ("dtic.mil", "dtlc.mil", 0.95 * 0.93),
        ("aol.com", "ao1.com", 0.95 * 0.7),
    ],
)
def test_ascii_lookalikes_of_short_names_are_damped_on_every_path(
    ctx: ModelContext, skeletons: DomainSkeletons, protected: str, typed: str, most: float
) -> None:
    """An ASCII look-alike is a letter edit of the name (DAMPED_FOR_SHORT_NAMES): found by the skeleton or by
    the model's variants, a short name's gets the same short-name factor."""
    f = best(_compile(ctx, skeletons, protected), typed)
    assert f.kind == "ascii_lookalike" and f.intended == protected
    assert f.score == pytest.approx(most)


def test_ascii_lookalikes_of_longer_names_and_homoglyphs_of_short_ones_stay_undamped(
    ctx: ModelContext, skeletons: DomainSkeletons
) -> None:
    idx = _compile(ctx, skeletons, "paypal.com", "dia.mil")
    assert best(idx, "paypai.com").score == pytest.approx(0.95)  # PAYPAI.COM shows an I
    assert best(idx, "xn--da-hoc.mil").kind == "homoglyph"  # dіa.mil, a Cyrillic і: no honest typing
    assert best(idx, "xn--da-hoc.mil").score == pytest.approx(0.98)


def test_length_factor_damps_short_main_labels_only() -> None:
    factors = [length_factor("a" * n) for n in range(1, 12)]
    assert factors == sorted(factors), "a longer name is never damped more than a shorter one"
    assert all(0.0 < f <= 1.0 for f in factors)
    assert length_factor("gmail") == 1.0
    assert length_factor("ibm") < 1.0
    assert length_factor("ca.ibm") == length_factor("ibm"), "the main label decides, not the whole core"


# ----------------------------------------------------------------------------- variants_of
def test_variants_of_are_ranked_and_exclude_the_domain(index: LookalikeIndex) -> None:
    out = list(index.variants_of(normalise_domain("army.mil")))
    names = [name for name, _, _ in out]
    assert "army.mil" not in names
    assert len(names) == len(set(names))
    scores = [score for _, _, score in out]
    assert scores == sorted(scores, reverse=True)
    kinds = {name: kind for name, kind, _ in out}
    assert kinds["army.ml"] == "suffix_typo"
    assert kinds["armymil.com"] == "dot_omission"
    assert kinds["army.mil.com"] == "suffix_append"
    assert kinds["army.com"] == "suffix_swap"
    assert kinds["xn--rmy-5cd.mil"] == "homoglyph"


def test_variants_of_a_bare_suffix_is_empty(index: LookalikeIndex) -> None:
    assert list(index.variants_of(normalise_domain("co.uk"))) == []


# ----------------------------------------------------------------------------- describe_change
@pytest.mark.parametrize(
    ("typed", "intended", "phrase"),
    [
        ("ml", "mil", "the 'i' of X dropped"),
        ("gmal", "gmail", "the 'i' of X dropped"),
        ("caibm", "ca.ibm", "the dot of X dropped"),
        ("gmaill", "gmail", "the 'l' of X doubled"),
        ("aarmy", "army", "the 'a' of X doubled"),
        ("gmaiol", "gmail", "an extra 'o' in X"),
        ("gma-il", "gmail", "an extra hyphen in X"),
        ("gmial", "gmail", "the 'ai' of X swapped"),
        ("outlo0k", "outlook", "the 'o' of X typed as '0'"),
        ("arrny", "army", "the 'm' of X typed as 'rn'"),
    ],
)
def test_describe_change(typed: str, intended: str, phrase: str) -> None:
    assert describe_change(typed, intended, "X") == phrase


def test_variants_of_an_idn_are_valid_slips_of_what_a_person_reads(
    ctx: ModelContext, skeletons: DomainSkeletons
) -> None:
    idx = _compile(ctx, skeletons, "münchen.de")
    names = [name for name, _, _ in idx.variants_of(normalise_domain("münchen.de"))]
    assert names
    bad = []
    for name in names:
        try:
            normalise_domain(name)
        except InvalidAddress:
            bad.append(name)
    assert bad == []
    assert not [n for n in names if n.startswith("nx--") or "x-n-" in n]
    assert normalise_domain("müncen.de").ascii in names  # the h left out
