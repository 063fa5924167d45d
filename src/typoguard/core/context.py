"""What the store knows (overrides, correspondents, first contact), applied to a detector's ``Assessment``.

Pure: the store's records and snapshots come in through the small protocols below, never by importing
``store``.

Order of precedence (first match wins):

1. an admin's **block** override: ``reject``, whatever the detector said;
2. an admin's **allow** override: ``allow`` (an explicit human decision, so it holds even for a suffix typo);
3. an already allowed or invalid recipient stays as it is;
4. a **confirmed correspondent** (an admin confirmed the domain and people here wrote to it often enough;
   the caller's snapshot only holds those) is allowed, unless the finding is a suffix typo of a protected
   domain (``army.ml`` for ``army.mil``): those are never trusted from history;
5. a look-alike **never written to before** from this sender domain (``known is False``) is treated as if its
   score were ``first_contact_bump`` higher, when ``thresholds`` are given; the action only ever goes up and
   a suffix swap is still never held or rejected (as in ``core.policy``).

The finding itself (the evidence, its score) is never changed; only the action and the reason.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any, Protocol

from typoguard.core.names import domain_of
from typoguard.core.policy import Thresholds
from typoguard.core.verdict import Action, Assessment, is_suffix_typo

FIRST_CONTACT_BUMP = 0.1
_NEVER = float("inf")


class Override(Protocol):
    """An admin's decision about a domain (``store.Override`` has it)."""

    @property
    def action(self) -> str: ...  # "block" or "allow"
    @property
    def summary(self) -> str: ...


class CorrespondentDomain(Protocol):
    """A confirmed correspondent domain (``store.CorrespondentDomain`` has it)."""

    @property
    def confirmed_by(self) -> str | None: ...
    @property
    def confirmed_reason(self) -> str | None: ...
    @property
    def count(self) -> int: ...


def apply_context(
    assessment: Assessment,
    *,
    override: Override | None = None,
    confirmed: CorrespondentDomain | None = None,
    known: bool | None = None,
    thresholds: Thresholds | None = None,
    first_contact_bump: float = FIRST_CONTACT_BUMP,
) -> Assessment:
    """``assessment`` adjusted by an override and correspondent history (see the module docstring).

    ``override``: the active override for the domain (``OverrideCache.lookup``). ``confirmed``: the
    domain's entry in ``CorrespondentCache`` (or None). ``known``: whether this sender domain wrote to this
    domain before (None: not known / not asked).
    """
    if override is not None:
        if override.action == "block":
            return replace(
                assessment, action=Action.REJECT, reason=f"blocked by override ({override.summary})"
            )
        return replace(assessment, action=Action.ALLOW, reason=f"allowed by override ({override.summary})")
    if assessment.action in (Action.ALLOW, Action.INVALID):
        return assessment
    if confirmed is not None and not is_suffix_typo(assessment.kind):
        return replace(
            assessment,
            action=Action.ALLOW,
            reason=(
                f"confirmed correspondent ({confirmed.confirmed_by}, {confirmed.confirmed_reason}; "
                f"{confirmed.count} mails); {assessment.reason}"
            ),
        )
    if known is False and thresholds is not None and first_contact_bump > 0:
        action = thresholds.action_for_finding(
            min(1.0, assessment.score + first_contact_bump), assessment.kind
        )
        if action.severity > assessment.action.severity:
            return replace(assessment, action=action, reason=f"{assessment.reason}; never written to before")
    return assessment


class _Lookup(Protocol):
    snapshot: dict[str, Any]

    def lookup(self, domain: str) -> Any: ...


class _Pairs(Protocol):
    loaded: frozenset[str]

    def lookup(self, sender_domain: str, recipient_domain: str) -> bool | None: ...


class LiveContext:
    """``apply_context`` on the hot path, over the store's snapshots (``OverrideCache``,
    ``CorrespondentCache``, ``KnownPairsCache``).

    Mail to allowed domains with no override costs one attribute test. Adjusted assessments are memoised
    per (assessment, override, correspondent, known) so that the same inputs give the *same* object: the
    policy service caches its reply per assessment object.
    """

    def __init__(
        self,
        overrides: _Lookup,
        confirmed: _Lookup,
        known: _Pairs | None = None,
        thresholds: Thresholds | None = None,
        clock: Callable[[], float] | None = None,
    ) -> None:
        """``clock`` (``time.time``; core reads no clock itself) tells ``generation`` when an override
        expires; without it a snapshot with an expiring override is a new generation at every call."""
        self.overrides = overrides
        self.confirmed = confirmed
        self.known = known
        self.thresholds = thresholds
        self._memo: dict[tuple[int, int, int, bool | None], tuple[Any, ...]] = {}
        self._senders: dict[str, str] = {}  # sender address -> its domain
        self._generation = 0
        self._seen: tuple[object, object, object] | None = None  # the snapshots of that generation
        self._expires = _NEVER  # the first moment an override of those snapshots expires
        self._clock = clock

    def with_thresholds(self, thresholds: Thresholds | None) -> LiveContext:
        """The same store snapshots (and clock) under new thresholds: a reload's context."""
        return LiveContext(self.overrides, self.confirmed, self.known, thresholds, clock=self._clock)

    def generation(self) -> int:
        """A number that changes whenever ``adjust`` may answer otherwise: when a snapshot is replaced
        (the store's refreshers publish a new object, never change one in place) or an override expires.
        A caller may keep what ``adjust`` gave while the number stays the same."""
        seen = self._seen
        known = self.known
        if (
            seen is None
            or seen[0] is not self.overrides.snapshot
            or seen[1] is not self.confirmed.snapshot
            or (known is not None and seen[2] is not known.loaded)
            or (self._expires is not _NEVER and (self._clock is None or self._clock() >= self._expires))
        ):
            self._new_generation()
        return self._generation

    def _new_generation(self) -> None:
        overrides = self.overrides.snapshot
        known = self.known
        self._seen = (overrides, self.confirmed.snapshot, known.loaded if known is not None else None)
        now = self._clock() if self._clock is not None else -_NEVER
        self._expires = min(
            (e for o in overrides.values() if (e := getattr(o, "expires_at", None)) and e > now),
            default=_NEVER,
        )
        self._generation += 1

    def adjust(self, assessment: Assessment, sender: str) -> Assessment:
        a = assessment
        domain = a.domain
        if not domain:
            return a
        action = a.action
        overrides = self.overrides
        ov = overrides.lookup(domain) if overrides.snapshot else None
        if ov is None:
            if action is Action.ALLOW or action is Action.INVALID:
                return a  # most mail: allowed, and no override for it
            conf = self.confirmed.snapshot.get(domain) if self.confirmed.snapshot else None
        else:
            conf = None
        known: bool | None = None
        if (
            ov is None
            and conf is None
            and (action is Action.WARN or action is Action.HOLD)
            and self.known is not None
            and self.thresholds is not None
        ):
            known = self.known.lookup(self._sender_domain(sender), domain)
        if ov is None and conf is None and known is None:
            return a  # nothing the store knows changes it (a reject can only go one way: stay)
        key = (id(a), id(ov), id(conf), known)
        hit = self._memo.get(key)
        if hit is not None and hit[0] is a and hit[1] is ov and hit[2] is conf:
            result: Assessment = hit[3]
            return result
        result = apply_context(a, override=ov, confirmed=conf, known=known, thresholds=self.thresholds)
        if len(self._memo) >= 8192:
            self._memo.clear()
        self._memo[key] = (a, ov, conf, result)
        return result

    def _sender_domain(self, sender: str) -> str:
        found = self._senders.get(sender)
        if found is None:
            found = domain_of(sender)
            if len(self._senders) >= 8192:
                self._senders.clear()
            self._senders[sender] = found
        return found
