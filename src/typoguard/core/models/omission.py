"""omission: one character left out (``gmal.com``). Among the most frequent slips (Szurdi & Christin 2017)."""

from collections.abc import Iterator

from typoguard.core.models.base import ModelContext, SimpleModel, editable_positions


def _edits(core: str, ctx: ModelContext) -> Iterator[str]:
    for i in editable_positions(core):
        yield core[:i] + core[i + 1 :]


MODEL = SimpleModel("omission", 0.93, "one character left out", _edits)
