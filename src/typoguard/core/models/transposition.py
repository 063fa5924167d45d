"""transposition: two neighbouring characters swapped (``gmial.com``). As frequent as omission."""

from collections.abc import Iterator

from typoguard.core.models.base import ModelContext, SimpleModel


def _edits(core: str, ctx: ModelContext) -> Iterator[str]:
    for i in range(len(core) - 1):
        a, b = core[i], core[i + 1]
        if a != b and "." not in (a, b):
            yield core[:i] + b + a + core[i + 2 :]


MODEL = SimpleModel("transposition", 0.95, "two neighbouring characters swapped", _edits)
