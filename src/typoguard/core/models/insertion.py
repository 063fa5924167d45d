"""insertion: a key next to the intended one struck as well (``gmaiol.com``)."""

from collections.abc import Iterator

from typoguard.core.models.base import ModelContext, SimpleModel, editable_positions


def _edits(core: str, ctx: ModelContext) -> Iterator[str]:
    for i in editable_positions(core):
        for key in sorted(ctx.adjacency.get(core[i], ())):
            yield core[:i] + key + core[i:]
            yield core[: i + 1] + key + core[i + 1 :]


MODEL = SimpleModel("insertion", 0.9, "a neighbouring key struck as well", _edits)
