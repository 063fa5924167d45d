"""suffix_typo: one edit inside the public suffix giving another real suffix.

``.mil`` -> ``.ml``, ``.com`` -> ``.co``/``.cm``/``.om``, ``.net`` -> ``.ne``.
The ``army.ml`` leak. Matched at look-up by relating the typed suffix to the protected one, so the
index holds no copy per suffix."""

from collections.abc import Iterator
from dataclasses import dataclass

from typoguard.core.models.base import ModelContext, Target, Variant, lands_on_suffix


@dataclass(frozen=True)
class SuffixTypo:
    name: str = "suffix_typo"
    prior: float = 0.97
    indexed: bool = False
    description: str = "a slip inside the domain suffix"

    def variants(self, target: Target, ctx: ModelContext) -> Iterator[Variant]:
        for suffix in sorted(ctx.suffixes.one_edit_suffixes(target.suffix)):
            if not lands_on_suffix(target.core, suffix, ctx):
                yield Variant(target.core, suffix, self.name)


MODEL = SuffixTypo()
