"""core/detector.py through a Guard: the verdicts a sender would see for the issue's golden cases."""

from __future__ import annotations

import random
import string
import tracemalloc

import pytest

from typoguard.config import Config, ProtectConfig
from typoguard.core.detector import Detector
from typoguard.core.verdict import Action, Verdict
from typoguard.guard import Guard

FLAGGED = (Action.WARN, Action.HOLD, Action.REJECT)


def _name_of_length(n: int) -> str:
    labels, body = [], n - len(".com")
    while body > 0:
        take = min(60, body)
        labels.append("a" * take)
        body -= take + 1
    name = ".".join(labels) + ".com"
    assert len(name) == n
    return name


# ----------------------------------------------------------------------------- golden cases (issue 2)
@pytest.mark.parametrize(
    ("recipient", "intended"),
    [
        ("army.ml", "army.mil"),
        ("bob@army.ml", "army.mil"),
        ("navy.ml", "navy.mil"),
        ("john.doe@navy.ml", "navy.mil"),
        ("us.af.ml", "us.af.mil"),
        ("BOB@US.AF.ML", "us.af.mil"),
    ],
)
def test_suffix_typo_of_a_protected_domain_rejects(guard: Guard, recipient: str, intended: str) -> None:
    v = guard.check(recipient)
    assert v.action is Action.REJECT
    assert v.intended == intended
    assert v.kind == "suffix_typo"
    assert v.flagged


@pytest.mark.parametrize(
    ("recipient", "intended", "kind"),
    [
        ("bob@us.army.ml", "us.army.mil", "suffix_typo"),  # the classic Army address, one letter dropped
        ("mail.army.ml", "mail.army.mil", "suffix_typo"),
        ("bob@smtp.gmial.com", "smtp.gmail.com", "transposition"),
        ("x@a.b.caibm.com", "a.b.ca.ibm.com", "dot_omission"),
        ("bob@us.аrmy.mil", "us.army.mil", "homoglyph"),
        ("x@mail.ca.ibm.co", "mail.ca.ibm.com", "suffix_typo"),  # under ca.ibm.co, which is no registrable
        ("x@a.army.mil.com", "a.army.mil", "suffix_append"),  # under army.mil.com (registrable: mil.com)
    ],
)
def test_a_host_under_a_lookalike_is_judged_as_the_lookalike(
    guard: Guard, recipient: str, intended: str, kind: str
) -> None:
    # Whoever owns army.ml receives the mail of every host under it: us.army.ml is army.ml's, and the
    # sender meant the same host under army.mil.
    v = guard.check(recipient)
    assert (v.action, v.intended, v.kind) == (Action.REJECT, intended, kind)
    assert " is a host under " in v.reason


@pytest.mark.parametrize(
    "recipient", ["bob@us.army.mil", "bob@mail.google.com", "bob@lists.debian.org", "bob@x.mail.ca.ibm.com"]
)
def test_a_host_under_a_protected_or_unrelated_domain_is_not_flagged(guard: Guard, recipient: str) -> None:
    assert guard.check(recipient).action is Action.ALLOW


def test_army_ml_reason_is_a_sentence_a_person_understands(guard: Guard) -> None:
    assert guard.check("bob@army.ml").reason == "army.ml looks like army.mil with the 'i' of .mil dropped"


@pytest.mark.parametrize(
    ("recipient", "intended", "kind"),
    [
        ("caibm.com", "ca.ibm.com", "dot_omission"),
        ("jane@caibm.com", "ca.ibm.com", "dot_omission"),
        ("gmial.com", "gmail.com", "transposition"),
        ("someone@gmial.com", "gmail.com", "transposition"),
        ("outlo0k.com", "outlook.com", "ascii_lookalike"),
        ("armymil.com", "army.mil", "dot_omission"),
        ("army.mil.com", "army.mil", "suffix_append"),
        ("bob@аrmy.mil", "army.mil", "homoglyph"),  # Cyrillic а
        ("statte.gov", "state.gov", "repetition"),
    ],
)
def test_lookalikes_are_flagged_with_the_intended_domain(
    guard: Guard, recipient: str, intended: str, kind: str
) -> None:
    v = guard.check(recipient)
    assert v.action in FLAGGED
    assert (v.intended, v.kind) == (intended, kind)
    assert 0.0 < v.score <= 1.0
    assert intended in v.reason


@pytest.mark.parametrize("recipient", ["caibm.com", "gmial.com", "outlo0k.com", "xn--rmy-5cd.mil"])
def test_strong_lookalikes_reject_by_default(guard: Guard, recipient: str) -> None:
    assert guard.check(recipient).action is Action.REJECT


@pytest.mark.parametrize("recipient", ["ymail.com", "bob@ymail.com", "mail.com", "bob@mail.com"])
def test_well_known_mail_domains_near_gmail_are_allowed(guard: Guard, recipient: str) -> None:
    v = guard.check(recipient)
    assert v.action is Action.ALLOW
    assert not v.flagged


def test_gouv_ml_is_allowed_with_mil_protected(guard: Guard) -> None:
    # gouv.ml is Mali's government suffix: one letter from .mil's typo .ml is not a reason to block it.
    for r in ("gouv.ml", "info@gouv.ml", "contact@sante.gouv.ml"):
        assert guard.check(r).action is Action.ALLOW, r


@pytest.mark.parametrize("recipient", ["verizon.com", "bob@verizon.com", "army.com", "comcast.com"])
def test_swap_to_another_real_tld_warns_at_most(guard: Guard, recipient: str) -> None:
    v = guard.check(recipient)
    assert v.action is Action.WARN
    assert v.kind == "suffix_swap"


@pytest.mark.parametrize(
    "recipient",
    [
        "army.mil",
        "bob@army.mil",
        "BOB@ARMY.MIL.",
        "<bob@army.mil>",
        "us.af.mil",
        "ca.ibm.com",
        "us.ibm.com",
        "bob@us.ibm.com",
        "ibm.com",
        "mail.army.mil",
        "gmail.com",
        "verizon.net",
        "x@comcast.net",
    ],
)
def test_protected_domains_and_their_organisation_are_allowed(guard: Guard, recipient: str) -> None:
    v = guard.check(recipient)
    assert v.action is Action.ALLOW
    assert v.intended is None
    assert "protected" in v.reason


@pytest.mark.parametrize("recipient", ["example.com", "bob@wikipedia.org", "bob@[192.0.2.1]", "münchen.de"])
def test_unrelated_recipients_are_allowed(guard: Guard, recipient: str) -> None:
    assert guard.check(recipient).action is Action.ALLOW


def test_mixed_script_name_is_flagged_even_if_it_resembles_nothing(guard: Guard) -> None:
    v = guard.check("bob@pаypal.com")  # Cyrillic а in a Latin name
    assert v.action is Action.WARN
    assert v.kind == "mixed_script"
    assert v.intended is None
    assert "mixes scripts" in v.reason


def test_single_script_idn_is_allowed(guard: Guard) -> None:
    assert guard.check("info@пример.рф").action is Action.ALLOW


# ----------------------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    ("recipient", "why"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("notanaddress", "no '@'"),
        ("bob@", "empty domain"),
        ("@army.mil", "nothing before '@'"),
        ("bob@" + "a" * 64 + ".mil", "64 characters"),
        ("bob@" + _name_of_length(254), "254 characters"),
        (_name_of_length(260), "260 characters"),
        ("x" * 65 + "@army.mil", "local part"),
        ("bob@army..mil", "empty label"),
        ("bob@ar my.mil", "white space"),
        ("bob@arm\udcffy.mil", "UTF-8"),
        ("b\udcffob@army.mil", "UTF-8"),
    ],
)
def test_bad_input_is_invalid_never_an_exception(guard: Guard, recipient: str, why: str) -> None:
    v = guard.check(recipient)
    assert v.action is Action.INVALID
    assert v.flagged
    assert v.domain is None
    d = v.to_dict()
    assert why in d["error"]
    assert d["reason"].startswith("invalid recipient: ")


@pytest.mark.parametrize(
    "recipient", ["bob@arm\udcffy.mil", "\udcff", '"b\udcff"@army.mil', "\udcff@army.mil"]
)
def test_invalid_utf8_is_named_and_shown_readably(guard: Guard, recipient: str) -> None:
    error = guard.check(recipient).to_dict()["error"]
    assert "not valid UTF-8" in error
    assert "\\udc" not in error
    assert "\ufffd" in error  # the bad byte shown as the replacement character


def test_longest_valid_name_is_checked_not_refused(guard: Guard) -> None:
    assert guard.check("bob@" + _name_of_length(253)).action is Action.ALLOW


# ----------------------------------------------------------------------------- consistency
@pytest.mark.parametrize(
    "spellings",
    [
        (
            "army.ml",
            "bob@army.ml",
            "BOB@ARMY.ML",
            "<bob@army.ml>",
            "bob@army.ml.",
            '"j doe"@army.ml',
            "bob@ＡＲＭＹ．ｍｌ",
        ),
        ("gmial.com", "x@GMIAL.COM", "x+tag@gmial.com."),
    ],
)
def test_one_domain_one_verdict_whatever_the_spelling(guard: Guard, spellings: tuple[str, ...]) -> None:
    verdicts = [guard.check(r) for r in spellings]
    assert len({(v.action, v.domain, v.intended, v.kind, v.score, v.reason) for v in verdicts}) == 1
    assert all(v.recipient == r for v, r in zip(verdicts, spellings, strict=True))


def test_surrounding_white_space_does_not_change_the_verdict(guard: Guard) -> None:
    assert guard.check(" bob@army.ml").action is Action.REJECT
    assert guard.check("bob@army.ml ").action is Action.REJECT


def test_repeated_checks_agree_and_survive_a_cache_clear(guard: Guard) -> None:
    first = guard.check("bob@army.ml")
    again = guard.check("alice@army.ml")
    guard.detector.clear_cache()
    fresh = guard.check("bob@army.ml")
    assert first.assessment == again.assessment == fresh.assessment


def test_cache_bound_does_not_change_verdicts() -> None:
    g = Guard.from_config(Config(protect=ProtectConfig(domains=("army.mil",))))
    tiny = Detector(g.index, g.detector.policy, cache_bytes=1024)  # too small to keep any assessment
    names = ["army.ml", "example.com", "armymil.com", "army.mil", "army.ml", "navy.ml"]
    actions = [tiny.check(n).action for n in names]
    assert actions == [Action.REJECT, Action.ALLOW, Action.REJECT, Action.ALLOW, Action.REJECT, Action.ALLOW]


def test_verdict_dict_shape(guard: Guard) -> None:
    v: Verdict = guard.check("bob@army.ml")
    d = v.to_dict()
    score = d.pop("score")
    assert d == {
        "recipient": "bob@army.ml",
        "domain": "army.ml",
        "action": "reject",
        "intended": "army.mil",
        "kind": "suffix_typo",
        "reason": "army.ml looks like army.mil with the 'i' of .mil dropped",
    }
    assert isinstance(score, float) and 0.9 <= score <= 1.0


def test_assess_domain_matches_check(guard: Guard) -> None:
    assert guard.assess_domain("army.ml") == guard.check("bob@army.ml").assessment


# ----------------------------------------------------------------------------- internationalised names
@pytest.fixture(scope="module")
def idn_guard() -> Guard:
    return Guard.from_config(Config(protect=ProtectConfig(domains=("münchen.de", "army.mil"))))


@pytest.mark.parametrize("recipient", ["münchen.de", "bob@MÜNCHEN.DE", "bob@xn--mnchen-3ya.de"])
def test_protected_idn_is_allowed_in_either_form(idn_guard: Guard, recipient: str) -> None:
    assert idn_guard.check(recipient).action is Action.ALLOW


@pytest.mark.parametrize("recipient", ["bob@mûnchen.de", "bob@munchen.de", "bob@mümchen.de"])
def test_slips_of_a_protected_idn_are_flagged(idn_guard: Guard, recipient: str) -> None:
    v = idn_guard.check(recipient)
    assert v.action in FLAGGED
    assert v.intended == "xn--mnchen-3ya.de"


@pytest.mark.parametrize("recipient", ["bob@müncen.de", "bob@münchn.de"])
def test_letter_slips_of_a_protected_idn_are_flagged(idn_guard: Guard, recipient: str) -> None:
    v = idn_guard.check(recipient)
    assert v.action in FLAGGED
    assert v.intended == "xn--mnchen-3ya.de"


@pytest.mark.parametrize("recipient", ["bob@munchen.de", "bob@mümchen.de", "bob@mûnchen.de"])
def test_reasons_about_an_idn_read_as_a_person_writes_it(idn_guard: Guard, recipient: str) -> None:
    reason = idn_guard.check(recipient).reason
    assert "xn--" not in reason
    assert "münchen.de" in reason
    assert "'rn'" not in reason


@pytest.mark.parametrize(
    ("recipient", "shown"), [("bob@köln.de", "köln.de"), ("bob@münchen.de", "münchen.de")]
)
def test_allow_reasons_about_an_idn_read_as_a_person_writes_it(
    idn_guard: Guard, recipient: str, shown: str
) -> None:
    v = idn_guard.check(recipient)
    assert v.action is Action.ALLOW
    assert shown in v.reason
    assert "xn--" not in v.reason


# ----------------------------------------------------------------- issue 15 item 6: long and random names
def _random_name(rng: random.Random) -> str:
    labels, total = [], 0
    while total < 180:  # 180-240 characters with the suffix: long, and valid
        n = rng.randint(20, 55)
        labels.append("".join(rng.choices(string.ascii_lowercase + string.digits, k=n)))
        total += n + 1
    return ".".join(labels) + ".com"


def test_long_invalid_names_are_not_remembered() -> None:
    """Each distinct 8 KB name was cached under its text: 1.29 GB of RSS in the issue's attack."""
    g = Guard.from_config(Config(protect=ProtectConfig(domains=("army.mil", "gmail.com"))))
    g.check("bob@army.ml")
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for i in range(1500):
            assert g.check(f"x@{i:05d}{'a' * 8000}.com").action is Action.INVALID
            assert g.check(f"{i:05d}{'b' * 8000}.com").action is Action.INVALID
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert grown < 1 << 20, f"{grown / 2**20:.1f} MiB kept for 3,000 invalid names"
    assert g.check("bob@army.ml").action is Action.REJECT


def test_random_valid_names_hold_at_most_the_byte_budget() -> None:
    """Distinct valid names are cached, within a budget in bytes however many there are."""
    budget = 2 << 20
    g = Guard.from_config(Config(protect=ProtectConfig(domains=("army.mil", "gmail.com"))))
    d = Detector(g.index, g.detector.policy, cache_bytes=budget)
    rng = random.Random(15)
    names = [_random_name(rng) for _ in range(8000)]
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for name in names:
            assert d.check("x@" + name).action is Action.ALLOW
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert d.cache.bytes <= budget
    # what the detector holds is its budget; the rest is the bounded caches under it (suffix split, ...)
    assert grown < budget + (6 << 20), f"{grown / 2**20:.1f} MiB for 8,000 names"
    assert d.check("bob@army.ml").action is Action.REJECT


# ----------------------------------------------------------------- issue 15 item 11: what IDNA 2008 forbids
@pytest.mark.parametrize(
    "recipient", ["bob@xn--o38h.abrdns.com", "bob@\U0001f62d.abrdns.com", "bob@xn--ls8h.la"]
)
def test_dns_valid_names_idna_2008_forbids_are_checked_not_invalid(guard: Guard, recipient: str) -> None:
    v = guard.check(recipient)
    assert v.action is Action.ALLOW, v.reason
    assert v.domain is not None and v.domain.startswith("xn--")


@pytest.mark.parametrize(
    ("recipient", "domain", "intended"),
    [
        ("bob@xn--gail-0q8a.com", "xn--gail-0q8a.com", "gmail.com"),  # gⅿail.com, registered as such
        ("bob@g\u217fail.com", "xn--gail-0q8a.com", "gmail.com"),  # typed with U+217F
        ("bob@ｇｍａｉｌ.com", "xn--mi7clahmc.com", "gmail.com"),  # fullwidth letters
        ("bob@ＡＲＭＹ．ＭＩＬ", "xn--mi7cyao3a.xn--ui7cgb", "army.mil"),
        ("bob@g\u00admail.com", "xn--gmail-0ha.com", "gmail.com"),  # a soft hyphen: invisible
    ],
)
def test_compatibility_characters_are_lookalikes_never_silently_allowed(
    guard: Guard, recipient: str, domain: str, intended: str
) -> None:
    v = guard.check(recipient)
    assert v.action is Action.REJECT, v.reason
    assert (v.domain, v.intended, v.kind) == (domain, intended, "homoglyph")


def test_a_circled_letter_in_a_protected_name_is_flagged(guard: Guard) -> None:
    v = guard.check("bob@xn--rmy-1n4a.mil")  # ⓜrmy.mil
    assert v.action in FLAGGED
    assert v.intended == "army.mil"


def test_unicode_mapped_onto_an_unrelated_name_is_allowed_as_that_name(guard: Guard) -> None:
    v = guard.check("bob@ｅｘａｍｐｌｅ.com")
    assert v.action is Action.ALLOW
    assert v.domain == "example.com"


# ----------------------------------------------------------------- issue 15 item 12: a slip and a suffix swap
EXAMPLE_PROTECTED = (
    "army.mil", "navy.mil", "af.mil", "us.af.mil", "marines.mil", "uscg.mil", "mail.mil", "disa.mil",
    "state.gov", "dhs.gov", "usda.gov", "treasury.gov",
    "gmail.com", "outlook.com", "hotmail.com", "yahoo.com", "icloud.com", "comcast.net", "verizon.net",
)  # fmt: skip


@pytest.fixture(scope="module")
def example_guard() -> Guard:
    return Guard.from_config(Config(protect=ProtectConfig(domains=EXAMPLE_PROTECTED)))


@pytest.mark.parametrize(
    ("recipient", "intended"),
    [
        ("bob@yafoo.net", "yahoo.com"),  # 'h' -> 'f', not a neighbour; .net out of habit
        ("bob@oudlook.net", "outlook.com"),  # 't' -> 'd': one bit apart
        ("bob@gmaqil.org", "gmail.com"),  # an extra 'q', nowhere near
        ("bob@icpoud.net", "icloud.com"),
        ("bob@comcaqt.com", "comcast.net"),  # the other way round: .com for .net
    ],
)
def test_one_slip_in_the_label_and_a_swapped_suffix_warns(
    example_guard: Guard, recipient: str, intended: str
) -> None:
    v = example_guard.check(recipient)
    assert v.action is Action.WARN, (v.kind, v.score)
    assert v.intended == intended
    assert v.kind is not None and v.kind.endswith("+suffix_swap")


def test_a_slip_and_a_swap_never_warns_on_a_shipped_legitimate_domain() -> None:
    """Without the legit list's protection, no real mail domain is caught by this class (the measured
    before/after counts: benchmarks/legit_flags.py)."""
    from typoguard import resources

    g = Guard.from_config(Config(protect=ProtectConfig(domains=EXAMPLE_PROTECTED, use_legit_list=False)))
    hit = []
    for name in sorted(resources.legitimate_domains()):
        v = g.check(name)
        if v.flagged and v.kind in ("edit+suffix_swap", "bitsquat+suffix_swap"):
            hit.append(f"{name}: {v.kind} {v.score:.2f}")
    assert hit == []


# A name typed with characters UTS #46 maps away (a soft hyphen, fullwidth letters, U+217F) is judged as
# typed too; the A-label of what was typed is also a name someone can type. The answer for each must not
# depend on which of them was checked first in the same process (the cache must not mix the two).
_TYPED_FORMS = [
    "xn--gmail-1ha.com",
    "gm\u00adail.com",
    "ar\u00admy.mil",
    "xn--army-rga.mil",
    "g\u217fail.com",
    "\uff47mail.com",
    "gmail.com",
    "army.mil",
]


@pytest.mark.parametrize("first", _TYPED_FORMS)
def test_a_verdict_does_not_depend_on_what_was_checked_before(first: str) -> None:
    def fresh() -> Guard:
        return Guard.from_config(Config(protect=ProtectConfig(domains=["gmail.com", "army.mil"])))

    def seen(v: Verdict) -> tuple[object, ...]:
        return (v.action, v.intended, v.domain, v.reason)

    alone = {name: seen(fresh().check(f"bob@{name}")) for name in _TYPED_FORMS}
    for name in _TYPED_FORMS:
        guard = fresh()
        guard.check(f"bob@{first}")
        assert seen(guard.check(f"bob@{name}")) == alone[name], f"{name!r} checked after {first!r}"


def test_a_batch_detector_keeps_a_name_from_its_first_use() -> None:
    # typoguard check - over a file: a name's second use takes the first's assessment (a server's detector
    # assesses it again, keeping nothing of names seen once).
    g = Guard.from_config(Config(protect=ProtectConfig(domains=("army.mil",))))
    server = Detector(g.index, g.detector.policy)
    batch = Detector(g.index, g.detector.policy)
    batch.for_batch()
    for d in (server, batch):
        first, second, third = (d.assess("bob@armyy.mil") for _ in range(3))
        assert first == second and second is third
        assert (first is second) is (d is batch)
        assert d.assess("bob@army.ml").action is Action.REJECT
