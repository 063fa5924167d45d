"""www_prefix: ``www.`` typed before the name without its dot (``wwwgmail.com`` for ``gmail.com``), as people
who think of the web site write an address. Squatters register these for every big provider; the name
is intact, so the reader sees the intended one. Only for a name of one label: ``wwwca.ibm.com`` is a host of
``ibm.com`` itself."""

from collections.abc import Iterator
from dataclasses import dataclass

from typoguard.core.models.base import ModelContext, Target, Variant, valid_core


@dataclass(frozen=True)
class WwwPrefix:
    name: str = "www_prefix"
    prior: float = 0.93
    indexed: bool = True
    description: str = "'www' run into the name"

    def variants(self, target: Target, ctx: ModelContext) -> Iterator[Variant]:
        core = target.core
        if "." not in core and not core.startswith("www") and valid_core("www" + core):
            yield Variant("www" + core, target.suffix, self.name)


MODEL = WwwPrefix()
