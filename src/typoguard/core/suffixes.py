"""Public suffixes: where the registrable part of a domain ends.

Backed by the Public Suffix List through ``publicsuffixlist`` (ICANN section only: that is what registries
sell names under). The list object and the set of ICANN suffixes are passed in, never loaded here, so this
module stays pure. Nothing here knows a suffix by heart.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

from rapidfuzz.distance import OSA

from typoguard.core.memo import BoundedMemo, set_bytes, str_bytes

_EDIT_ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789-."
SPLIT_CACHE_BYTES = 8 << 20
SUFFIX_CACHE_BYTES = 2 << 20


def _split_bytes(domain: str, parts: tuple[str, str]) -> int:
    return str_bytes(domain) + 56 + str_bytes(parts[0]) + str_bytes(parts[1])


def _suffixes_bytes(suffix: str, found: frozenset[str]) -> int:
    return str_bytes(suffix) + set_bytes(found)


class PublicSuffixSource(Protocol):
    """What we need of ``publicsuffixlist.PublicSuffixList``."""

    def publicsuffix(self, domain: str, accept_unknown: bool = ...) -> str | None: ...


class SuffixRules:
    """Splits domains at their public suffix and relates suffixes to each other."""

    def __init__(self, psl: PublicSuffixSource, icann_suffixes: Iterable[str]) -> None:
        self._psl = psl
        self.known: frozenset[str] = frozenset(icann_suffixes)
        self.tlds: frozenset[str] = frozenset(s for s in self.known if "." not in s)
        self._landing: dict[str, frozenset[str]] = {}
        # Bounded by bytes: the names split here come from recipients, and a stream of distinct ones
        # (an attack of random names) must not grow memory.
        self.split = BoundedMemo(self._split, SPLIT_CACHE_BYTES, _split_bytes)
        self.one_edit_suffixes = BoundedMemo(self._one_edit_suffixes, SUFFIX_CACHE_BYTES, _suffixes_bytes)

    def split_once(self, domain: str) -> tuple[str, str]:
        """``split`` without keeping the result: for names made while the index is built (tens of
        thousands, never looked up again), which would fill the cache meant for recipients."""
        return self._split(domain)

    def _split(self, domain: str) -> tuple[str, str]:
        """``us.af.mil`` -> (``us.af``, ``mil``); a bare suffix gives (``""``, suffix)."""
        suffix = self._psl.publicsuffix(domain, accept_unknown=True) or domain.rsplit(".", 1)[-1]
        if suffix == domain:
            return "", suffix
        return domain[: -len(suffix) - 1], suffix

    def is_known(self, suffix: str) -> bool:
        return suffix in self.known

    def landing(self, suffix: str) -> frozenset[str]:
        """The labels ``L`` for which ``L.suffix`` is itself a public suffix (``net`` for ``au``): a core
        ending in one would not be split as a slip under ``suffix`` (``models.base.lands_on_suffix``).
        Kept per suffix: at most one entry per public suffix."""
        found = self._landing.get(suffix)
        if found is None:
            tail = "." + suffix
            found = frozenset(s[: -len(tail)] for s in self.known if s.endswith(tail))
            self._landing[suffix] = found
        return found

    def _one_edit_suffixes(self, suffix: str) -> frozenset[str]:
        """Real public suffixes one edit (omission, insertion, replacement, transposition) from ``suffix``."""
        cands: set[str] = set()
        n = len(suffix)
        for i in range(n):
            cands.add(suffix[:i] + suffix[i + 1 :])
            if i + 1 < n:
                cands.add(suffix[:i] + suffix[i + 1] + suffix[i] + suffix[i + 2 :])
            for ch in _EDIT_ALPHABET:
                cands.add(suffix[:i] + ch + suffix[i + 1 :])
        for i in range(n + 1):
            for ch in _EDIT_ALPHABET:
                cands.add(suffix[:i] + ch + suffix[i:])
        cands.discard(suffix)
        return frozenset(c for c in cands if c in self.known)

    @staticmethod
    def edit_distance(a: str, b: str) -> int:
        return int(OSA.distance(a, b))

    def registrable(self, domain: str) -> str | None:
        """The registrable domain (one label below the public suffix), or None for a bare suffix."""
        core, suffix = self.split(domain)
        if not core:
            return None
        return core.rsplit(".", 1)[-1] + "." + suffix
