"""dot_shift: the dot before the suffix typed one character late, so that the suffix's first letter joins
the name and what is left is another real suffix: ``gmail.com`` -> ``gmailc.om`` (Oman), ``army.mil`` ->
``armym.il`` (Israel), ``comcast.net`` -> ``comcastn.et`` (Ethiopia). A transposition of the dot with the
next key; the mail goes to a registrable domain under someone else's country code."""

from collections.abc import Iterator
from dataclasses import dataclass

from typoguard.core.models.base import ModelContext, Target, Variant, valid_core


@dataclass(frozen=True)
class DotShift:
    name: str = "dot_shift"
    prior: float = 0.92
    indexed: bool = True
    description: str = "the dot before the suffix moved one character right"

    def variants(self, target: Target, ctx: ModelContext) -> Iterator[Variant]:
        suffix = target.suffix
        if len(suffix.split(".", 1)[0]) < 2:
            return
        moved, rest = target.core + suffix[0], suffix[1:]
        if ctx.suffixes.is_known(rest) and valid_core(moved):
            yield Variant(moved, rest, self.name)


MODEL = DotShift()
