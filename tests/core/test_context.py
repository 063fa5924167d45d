"""apply_context: overrides and correspondent history applied to an Assessment (pure)."""

from __future__ import annotations

from typoguard.core.context import LiveContext, apply_context
from typoguard.core.policy import Thresholds
from typoguard.core.verdict import Action, Assessment, Finding
from typoguard.guard import Guard
from typoguard.store import CorrespondentDomain, Override


def _assessment(kind: str, score: float, action: Action) -> Assessment:
    f = Finding("partnr.org", "partner.org", kind, score, "one letter missing")
    return Assessment("partnr.org", action, f, f.reason, None, (f,))


BLOCK = Override(1, "partnr.org", "block", "phishing", "alice", 0.0)
ALLOW = Override(2, "partnr.org", "allow", "real partner", "bob", 0.0)
CONFIRMED = CorrespondentDomain("partnr.org", 40, 0.0, 1.0, "carol", 1.0, "vetted")


def test_block_override_rejects_anything() -> None:
    out = apply_context(_assessment("omission", 0.1, Action.ALLOW), override=BLOCK)
    assert out.action is Action.REJECT and out.reason == "blocked by override (alice, phishing)"
    assert out.finding == _assessment("omission", 0.1, Action.ALLOW).finding  # evidence unchanged


def test_allow_override_allows_with_who_and_why() -> None:
    out = apply_context(_assessment("omission", 0.95, Action.REJECT), override=ALLOW)
    assert out.action is Action.ALLOW and out.reason == "allowed by override (bob, real partner)"


def test_confirmed_correspondent_is_allowed_unless_suffix_typo() -> None:
    ok = apply_context(_assessment("omission", 0.8, Action.HOLD), confirmed=CONFIRMED)
    assert ok.action is Action.ALLOW and "confirmed correspondent" in ok.reason
    typo = apply_context(_assessment("suffix_typo", 0.95, Action.REJECT), confirmed=CONFIRMED)
    assert typo.action is Action.REJECT


def test_first_contact_bumps_the_action_only_upwards() -> None:
    t = Thresholds(0.9, 0.7, 0.4)
    bumped = apply_context(_assessment("omission", 0.65, Action.WARN), known=False, thresholds=t)
    assert bumped.action is Action.HOLD and bumped.reason.endswith("never written to before")
    assert (
        apply_context(_assessment("omission", 0.65, Action.WARN), known=True, thresholds=t).action
        is Action.WARN
    )
    swap = apply_context(_assessment("suffix_swap", 0.69, Action.WARN), known=False, thresholds=t)
    assert swap.action is Action.WARN  # a suffix swap is never held, as in core.policy
    allowed = _assessment("omission", 0.2, Action.ALLOW)
    assert apply_context(allowed, known=False, thresholds=t) is allowed


def test_real_suffix_typo_from_the_guard_is_never_trusted(guard: Guard) -> None:
    v = guard.check("someone@army.ml")
    assert v.kind is not None and "suffix_typo" in v.kind
    out = apply_context(
        v.assessment, confirmed=CorrespondentDomain("army.ml", 10_000, 0.0, 1.0, "x", 1.0, "y")
    )
    assert out.action is v.action and out.action is not Action.ALLOW


class _KnownPairs:
    """The store's known (sender domain, recipient domain) pairs, as ``KnownPairsCache`` answers."""

    def __init__(self, *pairs: tuple[str, str]) -> None:
        self.pairs = set(pairs)
        self.loaded: frozenset[str] = frozenset()

    def lookup(self, sender_domain: str, recipient_domain: str) -> bool | None:
        return (sender_domain, recipient_domain) in self.pairs


class _Empty:
    def __init__(self) -> None:
        self.snapshot: dict[str, object] = {}

    def lookup(self, domain: str) -> None:
        return None


def test_a_sender_written_with_the_roots_dot_is_the_same_sender_domain() -> None:
    """``alice@Army.MIL.`` writes from army.mil, the domain the store learned its pairs under (the store
    strips the trailing dot): no first-contact bump for a pair it knows."""
    warned = _assessment("omission", 0.65, Action.WARN)
    context = LiveContext(
        _Empty(), _Empty(), _KnownPairs(("army.mil", "partnr.org")), Thresholds(0.9, 0.7, 0.4)
    )
    assert context.adjust(warned, "alice@army.mil") is warned
    assert context.adjust(warned, "alice@Army.MIL.") is warned
    assert context.adjust(warned, "bob@navy.mil").action is Action.HOLD  # a first contact: bumped


def test_the_generation_changes_when_the_store_may_answer_otherwise() -> None:
    # What a caller may keep from ``adjust`` (decide.py keeps whole decisions) lasts while the number
    # stays: a snapshot replaced by a refresh, or an override of the snapshot expiring, changes it.
    import time

    from typoguard.store.overrides import Override

    overrides, confirmed, known = _Empty(), _Empty(), _KnownPairs()
    context = LiveContext(overrides, confirmed, known, Thresholds(0.9, 0.7, 0.4), clock=time.time)
    first = context.generation()
    assert context.generation() == first
    overrides.snapshot = {
        "army.ml": Override(1, "army.ml", "allow", "partner", "admin", 0.0, time.time() + 0.3)
    }
    second = context.generation()
    assert second != first and context.generation() == second
    time.sleep(0.35)
    third = context.generation()
    assert third != second and context.generation() == third
    for cache in (confirmed, known):
        if isinstance(cache, _Empty):
            cache.snapshot = {}
        else:
            cache.loaded = frozenset({"army.ml"})
        assert context.generation() != third
        third = context.generation()

    # Without a clock (core reads none) an expiring override cannot be timed: every call is a new
    # generation, so nothing is kept past it; the reload's context keeps the clock.
    overrides.snapshot = {
        "army.ml": Override(2, "army.ml", "allow", "partner", "admin", 0.0, time.time() + 60)
    }
    clockless = LiveContext(overrides, confirmed, known, Thresholds(0.9, 0.7, 0.4))
    assert clockless.generation() != clockless.generation()
    reloaded = context.with_thresholds(Thresholds(0.95, 0.8, 0.5))
    assert reloaded.generation() == reloaded.generation()
    assert reloaded.thresholds == Thresholds(0.95, 0.8, 0.5)
