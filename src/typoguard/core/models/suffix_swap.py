"""suffix_swap: the same name under another real top-level domain (``army.mil`` -> ``army.com``).

Weak evidence: such domains are often the same organisation's (``verizon.com``/``verizon.net``), so policy
never rejects on it alone."""

from collections.abc import Iterator
from dataclasses import dataclass

from typoguard.core.models.base import ModelContext, Target, Variant, lands_on_suffix


@dataclass(frozen=True)
class SuffixSwap:
    name: str = "suffix_swap"
    prior: float = 0.45
    indexed: bool = False
    description: str = "the same name under another domain suffix"

    def variants(self, target: Target, ctx: ModelContext) -> Iterator[Variant]:
        typos = ctx.suffixes.one_edit_suffixes(target.suffix)
        for tld in sorted(ctx.swap_tlds):
            if tld != target.suffix and tld not in typos and not lands_on_suffix(target.core, tld, ctx):
                yield Variant(target.core, tld, self.name)


MODEL = SuffixSwap()
