"""repetition: a character typed twice (``gmaill.com``)."""

from collections.abc import Iterator

from typoguard.core.models.base import ModelContext, SimpleModel, editable_positions


def _edits(core: str, ctx: ModelContext) -> Iterator[str]:
    for i in editable_positions(core):
        yield core[: i + 1] + core[i] + core[i + 1 :]


MODEL = SimpleModel("repetition", 0.92, "a character typed twice", _edits)
