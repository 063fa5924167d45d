"""Recipient domain -> ``Hit`` (a look-alike of a protected domain) or None, cached per domain.

Logs repeat the same few thousand recipient domains millions of times, so the cache turns the Guard's
per-domain work into one dict look-up per line. Keys are the raw bytes from the log, before decoding.
"""

from __future__ import annotations

from typing import Protocol

from typoguard.audit.model import Hit
from typoguard.core.verdict import Action, Assessment


class DomainAssessor(Protocol):
    """What the audit needs of a ``Guard``."""

    def assess_domain(self, domain: str) -> Assessment: ...


_MISS: object = object()
_CACHE_LIMIT = 1 << 18  # distinct domains; a log with more is odd, and a cleared cache only costs time


def decode(raw: bytes) -> str:
    """Log bytes as text: UTF-8 when valid (SMTPUTF8 addresses), else Latin-1 (never fails)."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


class Classifier:
    """Decides, once per recipient domain, whether mail to it went to a look-alike."""

    def __init__(self, guard: DomainAssessor) -> None:
        self._guard = guard
        self.cache: dict[bytes, Hit | None] = {}  # read directly by the hot loops of the log scanners

    def domain_hit(self, domain: bytes) -> Hit | None:
        cached = self.cache.get(domain, _MISS)
        if cached is not _MISS:
            return cached  # type: ignore[return-value]
        hit = self._assess(domain)
        if len(self.cache) >= _CACHE_LIMIT:
            self.cache.clear()
        self.cache[domain] = hit
        return hit

    def recipient_hit(self, recipient: bytes) -> Hit | None:
        """The hit for an address (``user@domain``); None for local names and unflagged domains."""
        at = recipient.rfind(b"@")
        if at < 0:
            return None
        return self.domain_hit(recipient[at + 1 :])

    def _assess(self, raw: bytes) -> Hit | None:
        name = decode(raw).strip().strip(">").rstrip(".").lower()
        if not name:
            return None
        a = self._guard.assess_domain(name)
        if a.action in (Action.ALLOW, Action.INVALID) or a.finding is None or a.intended is None:
            return None
        return Hit(
            domain=a.domain or name,
            intended=a.intended,
            kind=a.finding.kind,
            score=round(a.finding.score, 4),
            action=a.action.value,
        )
