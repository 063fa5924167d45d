"""dot_insertion: a dot inserted inside a label, making a subdomain (``gm.ail.com``)."""

from collections.abc import Iterator
from dataclasses import dataclass

from typoguard.core.models.base import ModelContext, Target, Variant, valid_core


@dataclass(frozen=True)
class DotInsertion:
    name: str = "dot_insertion"
    prior: float = 0.8
    indexed: bool = True
    description: str = "a dot inserted inside a name"

    def variants(self, target: Target, ctx: ModelContext) -> Iterator[Variant]:
        core = target.core
        for i in range(1, len(core)):
            if not (core[i - 1].isalnum() and core[i].isalnum()):
                continue
            made = core[:i] + "." + core[i:]
            if not valid_core(made):
                continue
            # A dot that completes a longer public suffix (examplecom.au -> example.com.au) makes a name
            # split elsewhere: it is another registrable domain under com.au, not this slip.
            if made.isascii() and ctx.suffixes.split_once(f"{made}.{target.suffix}")[1] != target.suffix:
                continue
            yield Variant(made, target.suffix, self.name)


MODEL = DotInsertion()
