"""Policy: findings (evidence) + thresholds + context -> an action. The only place actions are chosen.

Detectors only say how likely a domain is a slip for a protected one; this module decides what to do about
it, as rspamd's actions do with symbol scores. Hard rules come before thresholds:

* a protected domain, or a name under a protected domain's organisation, is always allowed;
* configured trusted domains and the shipped list of well-known legitimate mail domains are never
  flagged, however close they sit to a protected domain (``ymail.com`` vs ``gmail.com``);
* a suffix swap (``verizon.com`` for ``verizon.net``) is never rejected or held, only warned about: such
  pairs are usually one organisation's.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from typoguard.core.verdict import Action, Assessment, Finding, is_suffix_swap
from typoguard.errors import ConfigError


@dataclass(frozen=True, slots=True)
class Thresholds:
    """Score at or above which each action applies."""

    reject_at: float = 0.9
    hold_at: float = 0.7
    warn_at: float = 0.4

    def __post_init__(self) -> None:
        if not 0.0 <= self.warn_at <= self.hold_at <= self.reject_at <= 1.0:
            raise ConfigError(
                "policy thresholds must satisfy 0 <= warn_at <= hold_at <= reject_at <= 1, got "
                f"warn_at={self.warn_at} hold_at={self.hold_at} reject_at={self.reject_at}"
            )

    def action_for(self, score: float) -> Action:
        if score >= self.reject_at:
            return Action.REJECT
        if score >= self.hold_at:
            return Action.HOLD
        if score >= self.warn_at:
            return Action.WARN
        return Action.ALLOW

    def action_for_finding(self, score: float, kind: str | None) -> Action:
        """``action_for(score)``, except that a suffix swap is at most warned about (see the module)."""
        action = self.action_for(score)
        if is_suffix_swap(kind) and action.severity > Action.WARN.severity:
            return Action.WARN
        return action


def _suffix_set(domains: Iterable[str]) -> frozenset[str]:
    return frozenset(d.lower().rstrip(".") for d in domains if d)


class Policy:
    """Maps findings for one domain to an ``Assessment``."""

    def __init__(
        self,
        thresholds: Thresholds,
        *,
        trusted: Iterable[str] = (),
        legitimate: Iterable[str] = (),
        registrable: Callable[[str], str | None] = lambda d: d,
    ) -> None:
        self.thresholds = thresholds
        self.trusted = _suffix_set(trusted)
        self.legitimate = _suffix_set(legitimate)
        self._registrable = registrable

    def _listed(self, domain: str, listed: frozenset[str]) -> bool:
        """``domain`` is listed, is under its listed registrable domain, or is a host under any listed name
        (``mail.a.example.net`` under a trusted ``a.example.net``: judged as its parent, ADR 0032)."""
        if domain in listed:
            return True
        reg = self._registrable(domain)
        if reg is not None and reg in listed:
            return True
        at = domain.find(".")
        while at >= 0:
            if domain[at + 1 :] in listed:
                return True
            at = domain.find(".", at + 1)
        return False

    def decide(
        self, domain: str, findings: Sequence[Finding], *, protected: bool = False, display: str | None = None
    ) -> Assessment:
        """The action for ``domain`` given its findings (best first). ``display``: its Unicode form."""
        shown = display or domain
        if protected:
            return Assessment(domain, Action.ALLOW, None, f"{shown} is a protected domain")
        if not findings:
            return Assessment(domain, Action.ALLOW, None, f"{shown} does not look like a protected domain")
        best = findings[0]
        if self._listed(domain, self.trusted):
            return Assessment(
                domain,
                Action.ALLOW,
                best,
                f"{shown} is a trusted domain (configured); {best.reason}",
                None,
                tuple(findings),
            )
        if self._listed(domain, self.legitimate):
            return Assessment(
                domain,
                Action.ALLOW,
                best,
                f"{shown} is a well-known legitimate mail domain; {best.reason}",
                None,
                tuple(findings),
            )
        action = self.thresholds.action_for_finding(best.score, best.kind)
        return Assessment(domain, action, best, best.reason, None, tuple(findings))
