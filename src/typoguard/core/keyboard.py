"""Keyboard layouts as grids, and the adjacency they imply.

A layout is its rows of keys (unshifted) with each row's horizontal offset in key widths, as on a real
staggered keyboard. Two keys are adjacent when they sit side by side in a row, or in neighbouring rows with
centres less than one key width apart. Adjacency is therefore symmetric by construction.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cached_property


@dataclass(frozen=True)
class Layout:
    """One keyboard layout: ``rows`` of keys, ``offsets`` of each row in key widths."""

    name: str
    rows: tuple[str, ...]
    offsets: tuple[float, ...]

    def __post_init__(self) -> None:
        if len(self.rows) != len(self.offsets):
            raise ValueError(f"layout {self.name}: {len(self.rows)} rows but {len(self.offsets)} offsets")
        keys = "".join(self.rows)
        if len(set(keys)) != len(keys):
            raise ValueError(f"layout {self.name}: a key appears twice")

    @cached_property
    def positions(self) -> Mapping[str, tuple[int, float]]:
        """key -> (row, x centre)."""
        return {key: (r, self.offsets[r] + c) for r, row in enumerate(self.rows) for c, key in enumerate(row)}

    @cached_property
    def adjacency(self) -> Mapping[str, frozenset[str]]:
        pos = self.positions
        out: dict[str, set[str]] = {k: set() for k in pos}
        for a, (ra, xa) in pos.items():
            for b, (rb, xb) in pos.items():
                if a == b:
                    continue
                if (ra == rb and abs(xa - xb) == 1) or (abs(ra - rb) == 1 and abs(xa - xb) < 1):
                    out[a].add(b)
        return {k: frozenset(v) for k, v in out.items()}

    def neighbours(self, key: str) -> frozenset[str]:
        return self.adjacency.get(key, frozenset())

    def distance(self, a: str, b: str) -> float | None:
        """Euclidean distance between two keys' centres in key widths (None if either is absent)."""
        pa, pb = self.positions.get(a), self.positions.get(b)
        if pa is None or pb is None:
            return None
        return float(((pa[0] - pb[0]) ** 2 + (pa[1] - pb[1]) ** 2) ** 0.5)


QWERTY = Layout("qwerty", ("1234567890-", "qwertyuiop", "asdfghjkl", "zxcvbnm"), (0.0, 0.5, 0.75, 1.25))
QWERTZ = Layout("qwertz", ("1234567890-", "qwertzuiop", "asdfghjkl", "yxcvbnm"), (0.0, 0.5, 0.75, 1.25))
AZERTY = Layout("azerty", ("1234567890-", "azertyuiop", "qsdfghjklm", "wxcvbn"), (0.0, 0.5, 0.75, 1.25))
LAYOUTS: Mapping[str, Layout] = {lay.name: lay for lay in (QWERTY, QWERTZ, AZERTY)}


def merged_adjacency(layouts: Iterable[Layout]) -> Mapping[str, frozenset[str]]:
    """Union of the adjacency of several layouts: a slip on any of them counts."""
    out: dict[str, set[str]] = {}
    for layout in layouts:
        for key, near in layout.adjacency.items():
            out.setdefault(key, set()).update(near)
    return {k: frozenset(v) for k, v in out.items()}
