"""replacement: a character replaced by a neighbouring key (``gnail.com``)."""

from collections.abc import Iterator

from typoguard.core.models.base import ModelContext, SimpleModel, editable_positions


def _edits(core: str, ctx: ModelContext) -> Iterator[str]:
    for i in editable_positions(core):
        for key in sorted(ctx.adjacency.get(core[i], ())):
            yield core[:i] + key + core[i + 1 :]


MODEL = SimpleModel("replacement", 0.9, "a character replaced by a neighbouring key", _edits)
