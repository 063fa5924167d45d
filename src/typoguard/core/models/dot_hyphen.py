"""dot_hyphen: a dot typed as a hyphen. Inside the name (``ca-ibm.com``), or before the suffix, after which a
suffix is added (``army-mil.com``, ``comcast-net.com``), or inside a suffix of several labels
(``bbc-co.uk``): a common way people and forms "fix" an address."""

from collections.abc import Iterator
from dataclasses import dataclass

from typoguard.core.models.base import ModelContext, Target, Variant, lands_on_suffix, valid_core


@dataclass(frozen=True)
class DotHyphen:
    name: str = "dot_hyphen"
    prior: float = 0.9
    indexed: bool = True
    description: str = "a dot typed as a hyphen"

    def variants(self, target: Target, ctx: ModelContext) -> Iterator[Variant]:
        core = target.core
        for i, ch in enumerate(core):
            if ch == ".":
                made = core[:i] + "-" + core[i + 1 :]
                if valid_core(made) and not lands_on_suffix(made, target.suffix, ctx):
                    yield Variant(made, target.suffix, self.name)
        labels = target.suffix.split(".")
        for k in range(1, len(labels)):  # bbc + co.uk -> bbc-co + uk, when "uk" is a suffix of its own
            rest = ".".join(labels[k:])
            made = core + "-" + "-".join(labels[:k])
            if ctx.suffixes.is_known(rest) and valid_core(made):
                yield Variant(made, rest, self.name)
        fused = core + "-" + target.suffix.replace(".", "-")
        if valid_core(fused):
            yield Variant(fused, None, self.name)


MODEL = DotHyphen()
