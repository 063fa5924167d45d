"""dot_omission: a dot left out. Inside the name (``ca.ibm.com`` -> ``caibm.com``), inside a suffix of several
labels, which leaves a shorter public suffix (``bbc.co.uk`` -> ``bbcco.uk``), or before the suffix, after
which the mail client or the sender adds one (``army.mil`` -> ``armymil.com``)."""

from collections.abc import Iterator
from dataclasses import dataclass

from typoguard.core.models.base import ModelContext, Target, Variant, lands_on_suffix, valid_core


@dataclass(frozen=True)
class DotOmission:
    name: str = "dot_omission"
    prior: float = 0.93
    indexed: bool = True
    description: str = "a dot left out"

    def variants(self, target: Target, ctx: ModelContext) -> Iterator[Variant]:
        core = target.core
        for i, ch in enumerate(core):
            if ch == ".":
                fused = core[:i] + core[i + 1 :]
                if valid_core(fused) and not lands_on_suffix(fused, target.suffix, ctx):
                    yield Variant(fused, target.suffix, self.name)
        labels = target.suffix.split(".")
        for k in range(1, len(labels)):  # bbc + co.uk -> bbcco + uk, when "uk" is a suffix of its own
            rest = ".".join(labels[k:])
            fused = core + "".join(labels[:k])
            if ctx.suffixes.is_known(rest) and valid_core(fused):
                yield Variant(fused, rest, self.name)
        fused_suffix = core + target.suffix.replace(".", "")
        if valid_core(fused_suffix):
            yield Variant(fused_suffix, None, self.name)


MODEL = DotOmission()
