"""suffix_append: a suffix added after the real one (``army.mil.com``), often by a client "completing" it."""

from collections.abc import Iterator
from dataclasses import dataclass

from typoguard.core.models.base import ModelContext, Target, Variant


@dataclass(frozen=True)
class SuffixAppend:
    name: str = "suffix_append"
    prior: float = 0.92
    indexed: bool = True
    description: str = "another suffix appended"

    def variants(self, target: Target, ctx: ModelContext) -> Iterator[Variant]:
        yield Variant(target.domain, None, self.name)


MODEL = SuffixAppend()
