"""bitsquat: one bit flipped in memory or on the wire (``gmaim.com``). Rare, not a human slip: weak prior."""

from collections.abc import Iterator

from typoguard.core.models.base import ModelContext, SimpleModel, editable_positions

_ALLOWED = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-")


def _edits(core: str, ctx: ModelContext) -> Iterator[str]:
    for i in editable_positions(core):
        code = ord(core[i])
        for bit in range(8):
            ch = chr(code ^ (1 << bit))
            if ch in _ALLOWED:
                yield core[:i] + ch + core[i + 1 :]


MODEL = SimpleModel("bitsquat", 0.5, "one bit of a character flipped", _edits)
