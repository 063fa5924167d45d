"""Detector: a recipient string in, a ``Verdict`` out, in microseconds.

The work for a domain (normalise, look up, decide) is done once and cached; a stream of mail mostly repeats
a few thousand domains, so the hot path is: split at the last '@', check the local part, one dict probe.

Only what can be valid is cached: a name that fails validation (8 KB of junk, a random invalid label) is
refused again each time, which costs microseconds because lengths are checked first (``core/names.py``),
and costs no memory. The cache is bounded by bytes (``core/memo.py``), not entries, and admits a name on
its second use.
"""

from __future__ import annotations

import re

from typoguard.core.index import LookalikeIndex
from typoguard.core.memo import AdmittingCache, str_bytes
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
# ~100,000 typical domains; names seen once (an attack of random names) only churn its trial quarter
DEFAULT_CACHE_BYTES = 48 << 20


def assessment_bytes(key: str, a: Assessment) -> int:
    """An estimate of what caching ``a`` under ``key`` holds (the assessment may be shared by keys)."""
    size = str_bytes(key) + 120 + str_bytes(a.reason) + str_bytes(a.error) + str_bytes(a.domain)
    for f in a.findings or ((a.finding,) if a.finding is not None else ()):
        size += 80 + str_bytes(f.reason) + str_bytes(f.kind)
    return size


_AS_TYPED = "\x00"  # cache-key prefix of names judged as typed: no normalised name starts with it


class Detector:
    """Checks recipients against a compiled ``LookalikeIndex`` under a ``Policy``."""

    def __init__(
        self, index: LookalikeIndex, policy: Policy, *, cache_bytes: int = DEFAULT_CACHE_BYTES
    ) -> None:
        self.index = index
        self.policy = policy
        self._cache: AdmittingCache[str, Assessment] = AdmittingCache(
            cache_bytes, assessment_bytes, str_bytes
        )
        self._main = self._cache.main
        self._get = self._cache.get

    @property
    def cache(self) -> AdmittingCache[str, Assessment]:
        return self._cache

    def for_batch(self) -> None:
        """Keep a name's assessment from its first use (a batch of recipients, such as ``typoguard check
        -``, where nobody else waits on the cycle collector): a name's second use is not assessed again."""
        self._cache.values_on_trial = True

    def retains(self, a: Assessment) -> bool:
        """Whether ``a`` is the assessment this detector keeps for its domain, and so will return again for
        it: what is worth preparing once per object (an assessment of a name seen once is dropped)."""
        domain = a.domain
        return domain is not None and self._main.peek(domain) is a

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
            found = self._main.new.get(key)  # the hot path: one dict probe
            if found is None:
                found = self._get(key)
            return found if found is not None else self._assess_text(key)
        return self._assess_slow(recipient)

    def assess_domain(self, domain: str) -> Assessment:
        """The assessment of a bare domain (cached)."""
        found = self._get(domain)
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
        return self._assess_domain(parsed.domain)

    def _assess_text(self, text: str) -> Assessment:
        try:
            domain = normalise_domain(text)
        except InvalidAddress as exc:
            return _invalid(str(exc))  # not cached: refusing again is cheap, remembering junk is not
        result = self._assess_domain(domain)
        if text != domain.ascii:  # typed otherwise (capitals, a trailing dot, Unicode): its own key too
            self._cache.put(text, result)
        return result

    def _assess_domain(self, domain: Domain) -> Assessment:
        result = self._get(domain.ascii)
        if result is None:
            result = self._assess(domain)
            self._cache.put(domain.ascii, result)
        typed = domain.as_typed
        if typed is not None and result.action is Action.ALLOW and result.finding is None:
            # Typed with characters UTS #46 maps away (gⅿail.com, fullwidth letters): where the mapping
            # leads is allowed, but what was typed is a name of its own that may read as a protected one.
            # Kept under its own key: the same A-label typed as such is normalised on its own path and
            # may be judged differently (an IDNA2008-invalid label), and neither may answer for the other.
            key = _AS_TYPED + typed.ascii
            as_typed = self._get(key)
            if as_typed is None:
                as_typed = self._assess(typed)
                self._cache.put(key, as_typed)
            if as_typed.action is not Action.ALLOW:
                return as_typed
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
