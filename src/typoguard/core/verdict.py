"""The values every layer speaks: a scored ``Finding`` (evidence) and a ``Verdict`` (the action taken)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Final

from typoguard.core.describe import readable_reason


class Action(StrEnum):
    """What to do with a recipient, mildest first: the order is the severity (``severity``). ``invalid``:
    the recipient could not be parsed; it outranks them all (the address must be fixed before sending)."""

    ALLOW = "allow"
    WARN = "warn"
    HOLD = "hold"
    REJECT = "reject"
    INVALID = "invalid"

    @property
    def severity(self) -> int:
        """0 (allow) to 4 (invalid): of several actions for one message, the most severe one applies."""
        return _SEVERITY[self]


_SEVERITY: Final[dict[Action, int]] = {a: i for i, a in enumerate(Action)}
SUFFIX_TYPO: Final = "suffix_typo"
SUFFIX_SWAP: Final = "suffix_swap"


def is_suffix_typo(kind: str | None) -> bool:
    """A finding of this kind is a suffix typo of a protected domain (``army.ml`` for ``army.mil``), alone
    or with another slip (``omission+suffix_typo``): never trusted from history, never learned."""
    return kind is not None and SUFFIX_TYPO in kind


def is_suffix_swap(kind: str | None) -> bool:
    """A finding of this kind is a suffix swap (``verizon.com`` for ``verizon.net``): such pairs are usually
    one organisation's, so it is warned about, never held or rejected (``core.policy``)."""
    return kind is not None and SUFFIX_SWAP in kind


@dataclass(frozen=True, slots=True)
class Finding:
    """Evidence that ``typed`` may be a slip for the protected domain ``intended``."""

    typed: str
    intended: str | None
    kind: str
    score: float
    reason: str


@dataclass(frozen=True, slots=True)
class Assessment:
    """Everything decided about one domain; shared by every recipient at that domain (it is cached)."""

    domain: str | None
    action: Action
    finding: Finding | None  # the finding the action rests on, if any
    reason: str
    error: str | None = None
    findings: tuple[Finding, ...] = ()

    @property
    def intended(self) -> str | None:
        return self.finding.intended if self.finding else None

    @property
    def kind(self) -> str | None:
        return self.finding.kind if self.finding else None

    @property
    def score(self) -> float:
        return self.finding.score if self.finding else 0.0


@dataclass(frozen=True, slots=True)
class Verdict:
    """The decision for one recipient."""

    recipient: str
    assessment: Assessment

    @property
    def action(self) -> Action:
        return self.assessment.action

    @property
    def domain(self) -> str | None:
        return self.assessment.domain

    @property
    def intended(self) -> str | None:
        return self.assessment.intended

    @property
    def kind(self) -> str | None:
        return self.assessment.kind

    @property
    def score(self) -> float:
        return self.assessment.score

    @property
    def reason(self) -> str:
        """Why, for a person: a homoglyph's Unicode name with its A-label next to it (ADR 0017)."""
        return readable_reason(self.assessment.reason, self.assessment.domain)

    @property
    def flagged(self) -> bool:
        return self.assessment.action is not Action.ALLOW

    def to_dict(self) -> dict[str, Any]:
        """The JSON shape of ``typoguard check --format json`` (and of the HTTP API)."""
        a = self.assessment
        out: dict[str, Any] = {
            "recipient": self.recipient,
            "domain": a.domain,
            "action": a.action.value,
            "intended": a.intended,
            "kind": a.kind,
            "score": round(a.score, 4),
            "reason": self.reason,
        }
        if a.error is not None:
            out["error"] = a.error
        return out
