"""vowel_swap: one vowel written as another (``gmeil.com``): a spelling slip more than a keyboard one."""

from collections.abc import Iterator

from typoguard.core.models.base import ModelContext, SimpleModel

VOWELS = "aeiou"


def _edits(core: str, ctx: ModelContext) -> Iterator[str]:
    for i, ch in enumerate(core):
        if ch in VOWELS:
            for v in VOWELS:
                if v != ch:
                    yield core[:i] + v + core[i + 1 :]


MODEL = SimpleModel("vowel_swap", 0.78, "one vowel written as another", _edits)
