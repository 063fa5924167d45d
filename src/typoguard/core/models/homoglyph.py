"""homoglyph: characters from other scripts that look the same (``аrmy.mil`` with a Cyrillic а).

Matched through UTS #39 confusable skeletons, never enumerated into the index (there are millions). The
variants listed here are a sample of single substitutions, for ``typoguard variants`` and other tools."""

from collections.abc import Iterator
from dataclasses import dataclass

import idna

from typoguard.core.models.base import ModelContext, Target, Variant


@dataclass(frozen=True)
class Homoglyph:
    name: str = "homoglyph"
    prior: float = 0.98
    indexed: bool = False
    description: str = "a character from another script that looks the same"

    def variants(self, target: Target, ctx: ModelContext) -> Iterator[Variant]:
        core = target.core
        for i, ch in enumerate(core):
            for glyph in ctx.homoglyph_sources.get(ch, ()):
                try:
                    ascii_core = idna.encode(core[:i] + glyph + core[i + 1 :]).decode("ascii")
                except idna.IDNAError:
                    continue
                yield Variant(ascii_core, target.suffix, self.name)


MODEL = Homoglyph()
