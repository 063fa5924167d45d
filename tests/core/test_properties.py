"""Invariants, checked with hypothesis over generated names (STYLE.md principle 6 and issue 2)."""

from __future__ import annotations

import json
import string

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from typoguard.config import Config, ProtectConfig
from typoguard.core.confusables import DomainSkeletons
from typoguard.core.index import LookalikeIndex
from typoguard.core.keyboard import LAYOUTS, Layout, merged_adjacency
from typoguard.core.models import REGISTRY, ModelContext, Target
from typoguard.core.names import normalise_domain
from typoguard.core.verdict import Action
from typoguard.errors import InvalidAddress
from typoguard.guard import Guard

SUFFIXES = ["com", "net", "org", "mil", "gov", "de", "fr", "io", "co.uk", "gov.uk", "com.au"]
labels = st.from_regex(r"[a-z][a-z0-9]{2,9}", fullmatch=True)
domains = st.builds(
    lambda sub, main, suffix: ".".join([*sub, main, suffix]),
    st.lists(labels, max_size=1),
    labels,
    st.sampled_from(SUFFIXES),
)


# ----------------------------------------------------------------------------- keyboard
@st.composite
def layouts(draw: st.DrawFn) -> Layout:
    keys = draw(st.lists(st.sampled_from(string.ascii_lowercase + string.digits), min_size=2, unique=True))
    cuts = sorted(draw(st.lists(st.integers(1, len(keys) - 1), max_size=3, unique=True)))
    rows = tuple("".join(keys[a:b]) for a, b in zip([0, *cuts], [*cuts, len(keys)], strict=True))
    offsets = tuple(
        draw(
            st.lists(
                st.sampled_from([0.0, 0.25, 0.5, 0.75, 1.25, 1.5]), min_size=len(rows), max_size=len(rows)
            )
        )
    )
    return Layout("generated", rows, offsets)


@given(layouts())
def test_adjacency_of_any_layout_is_symmetric(layout: Layout) -> None:
    for key, near in layout.adjacency.items():
        for other in near:
            assert key in layout.adjacency[other], (key, other)
        assert key not in near


@given(st.sets(st.sampled_from(sorted(LAYOUTS)), min_size=1), st.data())
def test_shipped_and_merged_adjacency_is_symmetric(names: set[str], data: st.DataObject) -> None:
    adjacency = merged_adjacency(LAYOUTS[n] for n in sorted(names))
    a = data.draw(st.sampled_from(sorted(adjacency)))
    b = data.draw(st.sampled_from(sorted(adjacency)))
    assert (b in adjacency[a]) == (a in adjacency[b])


# ----------------------------------------------------------------------------- normalisation
domainish = st.lists(
    st.sampled_from([*"abcxyzAMIL019-.", *"äöüßéаеорсαοΑ", *"ＡＭ．。ｍ", "xn--", ".com", ".mil"]),
    min_size=1,
    max_size=20,
).map("".join)


@given(st.one_of(domainish, domains))
def test_normalising_twice_changes_nothing(text: str) -> None:
    try:
        once = normalise_domain(text)
    except InvalidAddress:
        return
    assert normalise_domain(once.ascii) == once
    assert normalise_domain(once.unicode) == once
    assert once.ascii == once.ascii.lower() and once.ascii.isascii()
    assert not once.ascii.endswith(".")


# ----------------------------------------------------------------------------- variants map back
@settings(max_examples=40)
@given(protected=domains, fused_suffix=st.sampled_from(SUFFIXES))
def test_every_variant_of_a_protected_domain_maps_back_to_it(
    protected: str, fused_suffix: str, ctx: ModelContext, skeletons: DomainSkeletons
) -> None:
    target_domain = normalise_domain(protected)
    index = LookalikeIndex.compile([target_domain, normalise_domain("example.org")], ctx, skeletons)
    core, suffix = ctx.suffixes.split(target_domain.ascii)
    assume(core)
    target = Target(target_domain.ascii, core, suffix)
    for model in REGISTRY.values():
        for v in model.variants(target, ctx):
            name = v.domain(fused_suffix)
            try:
                typed = normalise_domain(name)
            except InvalidAddress:
                continue  # e.g. a fused name over 253 characters: never a deliverable address
            if index.is_protected(typed.ascii):
                continue  # same organisation (cb.ibm.com for ca.ibm.com): allowed by design
            if not ctx.suffixes.split(typed.ascii)[0]:
                continue  # itself a public suffix (aaa.pro, a swap of aaa.com): nobody can register it
            if ctx.suffixes.split(typed.ascii) != (v.core, v.suffix or fused_suffix):
                continue  # the slip made a new public suffix; models must not (test below)
            intended = {f.intended for f in index.lookup(typed)}
            assert target.domain in intended, (
                f"{model.name} made {name}, which does not map back to {protected}"
            )


# ----------------------------------------------------------------------------- never flagged
@st.composite
def protection(draw: st.DrawFn) -> tuple[list[str], list[str]]:
    protected = draw(st.lists(domains, min_size=1, max_size=4, unique=True))
    # trusted names close to a protected one (the organisation's own .com), plus an arbitrary one
    near = [p.rsplit(".", 1)[0] + "." + draw(st.sampled_from(["com", "net", "ml", "co"])) for p in protected]
    trusted = draw(st.lists(st.sampled_from([*near, *draw(st.lists(domains, max_size=1))]), max_size=3))
    return protected, trusted


@settings(max_examples=30)
@given(protection())
def test_protected_and_trusted_domains_are_never_flagged(case: tuple[list[str], list[str]]) -> None:
    protected, trusted = case
    guard = Guard.from_config(Config(protect=ProtectConfig(domains=tuple(protected), trusted=tuple(trusted))))
    for name in [*protected, *trusted]:
        if not ctx_split_has_core(guard, name):
            continue
        for recipient in (name, f"bob@{name}", f"Bob@{name.upper()}.", f"x@mail.{name}"):
            v = guard.check(recipient)
            assert v.action is Action.ALLOW, (recipient, v.reason)


def ctx_split_has_core(guard: Guard, name: str) -> bool:
    """A protected 'domain' that is itself a public suffix is not a domain anyone can be protected by."""
    return bool(guard.index._suffixes.split(normalise_domain(name).ascii)[0])


# ----------------------------------------------------------------------------- the detector never raises
@given(st.text(max_size=80) | st.builds(lambda a, b: f"{a}@{b}", st.text(max_size=20), st.text(max_size=40)))
def test_any_text_gets_a_verdict_never_an_exception(guard: Guard, text: str) -> None:
    v = guard.check(text)
    d = v.to_dict()
    json.dumps(d)
    assert d["action"] in {a.value for a in Action}
    assert 0.0 <= d["score"] <= 1.0
    if v.action is Action.INVALID:
        assert d["domain"] is None and d["error"]
    else:
        assert "error" not in d and d["domain"]


@given(domains, st.from_regex(r"[a-z0-9.+_-]{1,20}", fullmatch=True))
def test_an_address_gets_the_verdict_of_its_domain(guard: Guard, domain: str, local: str) -> None:
    assume(not local.startswith(".") and not local.endswith(".") and ".." not in local)
    assert guard.check(f"{local}@{domain}").assessment == guard.check(domain).assessment


@pytest.mark.parametrize(
    ("protected", "typed"),
    [("examplecom.au", "example.com.au"), ("shopgov.uk", "shop.gov.uk"), ("abcco.uk", "abc.co.uk")],
)
def test_dot_insertion_that_lands_on_a_public_suffix_maps_back(
    protected: str, typed: str, ctx: ModelContext, skeletons: DomainSkeletons
) -> None:
    index = LookalikeIndex.compile([normalise_domain(protected)], ctx, skeletons)
    core, suffix = ctx.suffixes.split(protected)
    made = {v.domain() for v in REGISTRY["dot_insertion"].variants(Target(protected, core, suffix), ctx)}
    if typed in made:  # what a model generates must map back (or the model must not generate it)
        assert protected in {f.intended for f in index.lookup(normalise_domain(typed))}


@pytest.mark.parametrize(
    ("protected", "typed", "model"),
    [
        ("neta.neta.au", "neta.net.au", "omission"),
        ("scom.scom.ml", "scom.com.ml", "omission"),
        ("aa.aa.au", "aa.wa.au", "replacement"),
        ("a00.kep.com", "a00.kep.tr", "suffix_swap"),
    ],
)
def test_letter_slip_that_lands_on_a_public_suffix_maps_back(
    protected: str, typed: str, model: str, ctx: ModelContext, skeletons: DomainSkeletons
) -> None:
    index = LookalikeIndex.compile([normalise_domain(protected)], ctx, skeletons)
    core, suffix = ctx.suffixes.split(protected)
    made = {v.domain() for v in REGISTRY[model].variants(Target(protected, core, suffix), ctx)}
    if typed in made:  # what a model generates must map back (or the model must not generate it)
        assert protected in {f.intended for f in index.lookup(normalise_domain(typed))}


# ----------------------------------------------------------------------------- suffix swaps
@settings(max_examples=40)
@given(protected=domains, data=st.data())
def test_a_swap_to_another_real_tld_never_rejects_or_holds(
    protected: str, data: st.DataObject, ctx: ModelContext
) -> None:
    guard = Guard.from_config(Config(protect=ProtectConfig(domains=(protected,), use_legit_list=False)))
    core, suffix = ctx.suffixes.split(protected)
    far = sorted(t for t in ctx.swap_tlds if ctx.suffixes.edit_distance(t, suffix) >= 2)
    tld = data.draw(st.sampled_from(far))
    v = guard.check(f"bob@{core}.{tld}")
    assert v.action in (Action.ALLOW, Action.WARN), (v.domain, v.kind, v.reason)
