"""What a typo model is: a named, documented generator of look-alike variants of one protected domain."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Protocol

import idna

from typoguard.core.memo import BoundedMemo, str_bytes
from typoguard.core.suffixes import SuffixRules

_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\Z")


@dataclass(frozen=True, slots=True)
class Target:
    """A protected domain as the models see it: ``ca.ibm.com`` is core ``ca.ibm`` + suffix ``com``."""

    domain: str
    core: str
    suffix: str


@dataclass(frozen=True, slots=True)
class Variant:
    """One look-alike. ``suffix`` None means "this core under any suffix" (``armymil`` + .com, .net...)."""

    core: str
    suffix: str | None
    kind: str

    def domain(self, default_suffix: str = "com") -> str:
        return f"{self.core}.{self.suffix if self.suffix is not None else default_suffix}"


@dataclass(frozen=True)
class ModelContext:
    """Data the models need, passed in so they stay pure."""

    adjacency: Mapping[str, frozenset[str]]
    suffixes: SuffixRules
    swap_tlds: frozenset[str]
    # ASCII letter -> non-ASCII characters that look like it (used only to *list* homoglyph variants)
    homoglyph_sources: Mapping[str, tuple[str, ...]] = field(default_factory=dict)


class TypoModel(Protocol):
    """A typo model. ``prior`` is the likelihood that a domain at this edit was typed for the target."""

    name: str
    prior: float
    indexed: bool  # False: matched another way (skeletons, suffix relation), not by the hash index
    description: str

    def variants(self, target: Target, ctx: ModelContext) -> Iterator[Variant]: ...


_LDH_CORE = re.compile(r"(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)*[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")


def valid_core(core: str) -> bool:
    """True when ``core`` is a valid host name: LDH labels, or Unicode labels IDNA 2008 accepts."""
    if core.isascii():
        return _LDH_CORE.fullmatch(core) is not None
    return ascii_core(core) is not None


def _ascii_core(core: str) -> str | None:
    """The A-label (``xn--``) form of a core, or None when it is no valid host name."""
    if core.isascii():
        return core if core and all(_LABEL.match(label) for label in core.split(".")) else None
    try:
        encoded = idna.encode(core).decode("ascii")
    except (idna.IDNAError, UnicodeError):
        return None
    return encoded if all(_LABEL.match(label) for label in encoded.split(".")) else None


ASCII_CORE_CACHE_BYTES = 8 << 20
ascii_core = BoundedMemo(_ascii_core, ASCII_CORE_CACHE_BYTES, lambda core, a: str_bytes(core) + str_bytes(a))


def lands_on_suffix(core: str, suffix: str, ctx: ModelContext) -> bool:
    """True when ``core``'s last label and ``suffix`` together form a longer public suffix.

    ``neta.net`` + ``au`` is ``neta`` under ``net.au``: another registrable name altogether, which a
    look-up would never split as a slip of ``neta.neta.au``; models do not produce such names.
    """
    return f"{core.rsplit('.', 1)[-1]}.{suffix}" in ctx.suffixes.known


def editable_positions(core: str) -> Iterator[int]:
    """Indexes of the characters an edit may touch (not the dots between labels)."""
    return (i for i, ch in enumerate(core) if ch != ".")


@dataclass(frozen=True)
class SimpleModel:
    """A model whose variants come from one core-to-cores function; the usual case."""

    name: str
    prior: float
    description: str
    edits: object  # Callable[[str, ModelContext], Iterator[str]]; typed loosely for dataclass hashing
    indexed: bool = True

    def variants(self, target: Target, ctx: ModelContext) -> Iterator[Variant]:
        suffix, name = target.suffix, self.name
        return (Variant(core, suffix, name) for core in self.cores(target, ctx))

    def cores(self, target: Target, ctx: ModelContext) -> Iterator[str]:
        """The variants' cores (each under ``target.suffix``), without a ``Variant`` each: what the index
        build stores, ~200 per protected domain (10,000 domains: 2 million). ``valid_core`` and
        ``lands_on_suffix`` written out here."""
        fn = self.edits
        assert callable(fn)
        landing = ctx.suffixes.landing(target.suffix)
        ldh = _LDH_CORE.fullmatch
        seen: set[str] = {target.core}
        for core in fn(target.core, ctx):
            if core in seen:
                continue
            seen.add(core)  # valid or not, the same text gives the same answer
            if core.isascii():
                # one lower-case letter-and-digit label (most variants) is a valid LDH core: no regex
                if not (len(core) <= 63 and core.isalnum() and core.islower()) and ldh(core) is None:
                    continue
            elif ascii_core(core) is None:
                continue
            if (core if "." not in core else core.rsplit(".", 1)[1]) in landing:
                continue
            yield core
