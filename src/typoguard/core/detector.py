"""Detector: a recipient string in, a ``Verdict`` out, in microseconds.

The work for a domain (normalise, look up, decide) is done once and cached; a stream of mail mostly repeats
a few thousand domains, so the hot path is: split at the last '@', check the local part, one dict probe.
"""

from __future__ import annotations

import re

from typoguard.core.index import LookalikeIndex
from typoguard.core.names import (
    MAX_LOCAL_OCTETS,
    Domain,
    mixed_script_labels,
    normalise_domain,
    parse_recipient,
)
from typoguard.core.policy import Policy
from typoguard.core.verdict import Action, Assessment, Finding, Verdict
from typoguard.errors import InvalidAddress

_PLAIN_LOCAL = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*")
MIXED_SCRIPT_SCORE = 0.6


class Detector:
    """Checks recipients against a compiled ``LookalikeIndex`` under a ``Policy``."""

    def __init__(self, index: LookalikeIndex, policy: Policy, *, cache_size: int = 1 << 17) -> None:
        self.index = index
        self.policy = policy
        self._cache: dict[str, Assessment] = {}
        self._cache_size = cache_size

    def check(self, recipient: str) -> Verdict:
        """The verdict for one recipient: an address or a bare domain. Never raises for bad input."""
        return Verdict(recipient, self.assess(recipient))

    def assess(self, recipient: str) -> Assessment:
        """``check(recipient).assessment`` without building the ``Verdict`` (the policy service's path)."""
        at = recipient.rfind("@")
        if (
            0 < at <= MAX_LOCAL_OCTETS
            and _PLAIN_LOCAL.fullmatch(recipient, 0, at)
            and recipient[-1] != "]"
            and not recipient[-1].isspace()
        ):
            key = recipient[at + 1 :]
            found = self._cache.get(key)
            return found if found is not None else self._assess_text(key)
        return self._assess_slow(recipient)

    def assess_domain(self, domain: str) -> Assessment:
        """The assessment of a bare domain (cached)."""
        found = self._cache.get(domain)
        return found if found is not None else self._assess_text(domain)

    def _assess_slow(self, recipient: str) -> Assessment:
        try:
            parsed = parse_recipient(recipient)
        except InvalidAddress as exc:
            return _invalid(str(exc))
        if parsed.domain is None:
            return Assessment(
                parsed.literal,
                Action.ALLOW,
                None,
                f"{parsed.literal} is an address literal, not a domain name",
            )
        return self.assess_domain(parsed.domain.ascii)

    def _assess_text(self, text: str) -> Assessment:
        try:
            domain = normalise_domain(text)
        except InvalidAddress as exc:
            result = _invalid(str(exc))
        else:
            result = self._cache.get(domain.ascii) or self._assess(domain)
        if len(self._cache) >= self._cache_size:
            self._cache.clear()  # generational: cheap, and the hot set refills in a few hundred checks
        self._cache[text] = result
        return result

    def _assess(self, domain: Domain) -> Assessment:
        name = domain.ascii
        if self.index.is_protected(name):
            return self.policy.decide(name, (), protected=True, display=domain.unicode)
        findings = self.index.lookup(domain)
        if not findings and domain.is_idn:
            odd = mixed_script_labels(domain)
            if odd:
                findings = [
                    Finding(
                        name,
                        None,
                        "mixed_script",
                        MIXED_SCRIPT_SCORE,
                        f"{domain.unicode} mixes scripts in {odd[0]!r}, as spoofed names do",
                    )
                ]
        return self.policy.decide(name, findings, display=domain.unicode)

    def clear_cache(self) -> None:
        self._cache.clear()


def _invalid(error: str) -> Assessment:
    return Assessment(None, Action.INVALID, None, f"invalid recipient: {error}", error)
