"""What the store knows, applied to a detector's ``Assessment``: one small pure function.

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

from dataclasses import replace

from typoguard.core.policy import Thresholds
from typoguard.core.verdict import Action, Assessment
from typoguard.store.correspondents import CorrespondentDomain
from typoguard.store.overrides import Override

_SEVERITY = {Action.ALLOW: 0, Action.WARN: 1, Action.HOLD: 2, Action.REJECT: 3, Action.INVALID: 4}
FIRST_CONTACT_BUMP = 0.1


def is_suffix_typo(assessment: Assessment) -> bool:
    return bool(assessment.kind and "suffix_typo" in assessment.kind)


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
    if confirmed is not None and not is_suffix_typo(assessment):
        return replace(
            assessment,
            action=Action.ALLOW,
            reason=(
                f"confirmed correspondent ({confirmed.confirmed_by}, {confirmed.confirmed_reason}; "
                f"{confirmed.count} mails); {assessment.reason}"
            ),
        )
    if known is False and thresholds is not None and first_contact_bump > 0:
        action = thresholds.action_for(min(1.0, assessment.score + first_contact_bump))
        if assessment.kind and "suffix_swap" in assessment.kind and action in (Action.REJECT, Action.HOLD):
            action = Action.WARN
        if _SEVERITY[action] > _SEVERITY[assessment.action]:
            return replace(assessment, action=action, reason=f"{assessment.reason}; never written to before")
    return assessment
