"""The typo models, in a registry by stable name. An unknown name is an error, never a silent skip."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from typoguard.core.models import (
    ascii_lookalike,
    bitsquat,
    dot_hyphen,
    dot_insertion,
    dot_omission,
    dot_shift,
    homoglyph,
    hyphenation,
    insertion,
    omission,
    repetition,
    replacement,
    suffix_append,
    suffix_swap,
    suffix_typo,
    transposition,
    vowel_swap,
    www_prefix,
)
from typoguard.core.models.base import (
    ModelContext,
    SimpleModel,
    Target,
    TypoModel,
    Variant,
    ascii_core,
    valid_core,
)
from typoguard.errors import UnknownModel

REGISTRY: Mapping[str, TypoModel] = {
    m.MODEL.name: m.MODEL
    for m in (
        omission,
        insertion,
        replacement,
        transposition,
        repetition,
        vowel_swap,
        bitsquat,
        hyphenation,
        dot_omission,
        dot_hyphen,
        dot_insertion,
        dot_shift,
        www_prefix,
        suffix_typo,
        suffix_append,
        suffix_swap,
        ascii_lookalike,
        homoglyph,
    )
}


def select_models(names: Iterable[str] | None = None) -> tuple[TypoModel, ...]:
    """The models named, in registry order; all of them for None. Raises ``UnknownModel``."""
    if names is None:
        return tuple(REGISTRY.values())
    wanted = list(names)
    unknown = [n for n in wanted if n not in REGISTRY]
    if unknown:
        raise UnknownModel(f"unknown typo model(s) {', '.join(unknown)}; known: {', '.join(REGISTRY)}")
    return tuple(m for name, m in REGISTRY.items() if name in wanted)


__all__ = [
    "REGISTRY",
    "ModelContext",
    "SimpleModel",
    "Target",
    "TypoModel",
    "Variant",
    "ascii_core",
    "select_models",
    "valid_core",
]
