"""hyphenation: a hyphen inserted inside a label (``gma-il.com``)."""

from collections.abc import Iterator

from typoguard.core.models.base import ModelContext, SimpleModel


def _edits(core: str, ctx: ModelContext) -> Iterator[str]:
    for i in range(1, len(core)):
        if core[i - 1].isalnum() and core[i].isalnum():
            yield core[:i] + "-" + core[i:]


MODEL = SimpleModel("hyphenation", 0.85, "a hyphen inserted inside a name", _edits)
