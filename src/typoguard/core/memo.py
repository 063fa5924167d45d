"""Caches bounded by the bytes they hold, not by how many entries: an entry may be a few bytes or a few KB.

A key chosen by a client (a recipient domain) can be long, and a stream of distinct keys must not grow
memory (issue 15 item 6). ``ByteBoundedCache`` keeps two generations: look-ups hit the new one, or promote
from the old one; when the new one holds half the budget, it becomes the old one and the previous old one
is dropped. So the cache never holds more than its budget (as estimated by ``sizeof``), the hot set
survives a flip, and no operation walks the cache. Not thread-safe (neither is the detector).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Generic, TypeVar, cast

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

# What a dict slot and the key/value object headers cost beyond the objects' own sizes (CPython 3.11,
# measured roughly with tracemalloc: ~100 bytes per entry of a dict of small str keys).
ENTRY_OVERHEAD = 112


def str_bytes(text: str | None) -> int:
    """Bytes a str takes in CPython, at most (0 for None): 49 + 1 a character for ASCII, up to 4 else."""
    if text is None:
        return 0
    return 49 + len(text) if text.isascii() else 80 + 4 * len(text)


def set_bytes(items: frozenset[str]) -> int:
    """Bytes a small frozenset of str takes, roughly (its table grows in steps; 64 a slot is generous)."""
    return 216 + sum(64 + str_bytes(s) for s in items)


class ByteBoundedCache(Generic[K, V]):
    """A mapping cache holding at most ``max_bytes`` (estimated per entry by ``sizeof(key, value)``)."""

    __slots__ = ("_bytes", "_half", "_old", "_sizeof", "max_bytes", "new")

    def __init__(self, max_bytes: int, sizeof: Callable[[K, V], int]) -> None:
        if max_bytes < 1024:
            raise ValueError("a cache needs at least 1 KiB")
        self.max_bytes = max_bytes
        self._half = max_bytes // 2
        self._sizeof = sizeof
        # The young generation; ``new.get(key)`` is the hot path's probe (a hit needs no promotion).
        self.new: dict[K, V] = {}
        self._old: dict[K, V] = {}
        self._bytes = 0  # held by ``new``; ``_old`` holds at most ``_half``

    def get(self, key: K) -> V | None:
        found = self.new.get(key)
        if found is None:
            found = self._old.pop(key, None)
            if found is not None:
                self.put(key, found)
        return found

    def put(self, key: K, value: V) -> None:
        """Remember ``value``; an entry bigger than a quarter of the budget is not kept at all."""
        size = self._sizeof(key, value) + ENTRY_OVERHEAD
        if size > self._half // 2:
            return
        if key in self.new:
            return
        if self._bytes + size > self._half:
            self._old = self.new
            self.new = {}
            self._bytes = 0
        self.new[key] = value
        self._bytes += size

    def peek(self, key: K) -> V | None:
        """What is cached under ``key``, without promoting it (None if nothing)."""
        found = self.new.get(key)
        return found if found is not None else self._old.get(key)

    def pop(self, key: K) -> V | None:
        """Take ``key`` out of the cache (None if it is not there)."""
        found = self.new.pop(key, None)
        if found is not None:
            self._bytes -= self._sizeof(key, found) + ENTRY_OVERHEAD
            return found
        return self._old.pop(key, None)

    def clear(self) -> None:
        self.new = {}
        self._old = {}
        self._bytes = 0

    @property
    def bytes(self) -> int:
        """Bytes held, as estimated (at most ``max_bytes``)."""
        return self._bytes + sum(self._sizeof(k, v) + ENTRY_OVERHEAD for k, v in self._old.items())

    def __len__(self) -> int:
        return len(self.new) + len(self._old)


R = TypeVar("R")


class BoundedMemo(Generic[R]):
    """``fn(text)`` memoised in a ``ByteBoundedCache`` (for one-argument str functions: lru_cache counts
    entries). ``sizeof(text, result)`` estimates an entry's bytes; a None result is remembered too."""

    __slots__ = ("_cache", "_fn", "_sizeof")

    def __init__(self, fn: Callable[[str], R], max_bytes: int, sizeof: Callable[[str, R], int]) -> None:
        self._fn = fn
        self._sizeof = sizeof
        self._cache: ByteBoundedCache[str, tuple[R]] = ByteBoundedCache(max_bytes, self._entry_size)

    def _entry_size(self, text: str, boxed: tuple[R]) -> int:
        return self._sizeof(text, boxed[0]) + 56  # the one-tuple box

    def __call__(self, text: str) -> R:
        found = self._cache.get(text)
        if found is None:
            found = (self._fn(text),)
            self._cache.put(text, found)
        return found[0]

    def cache_clear(self) -> None:
        self._cache.clear()

    @property
    def cache(self) -> ByteBoundedCache[str, tuple[R]]:
        return self._cache


_SEEN: object = object()  # what the trial cache holds for a key whose value it does not keep


class AdmittingCache(Generic[K, V]):
    """A ``ByteBoundedCache`` (``main``) that keeps a value only from its key's second use.

    The first ``put`` of a key remembers the key alone, in a trial cache (``max_bytes // trial_share``, two
    generations too); a second ``put`` of it (the caller missed in ``main`` and computed the value again)
    keeps the value in ``main``. A stream of names seen once (an attack of random names) churns the trial
    cache only, never evicts the names mail really goes to, and leaves no value behind: each is dropped
    when its caller is done with it, so the cycle collector does not walk one more object per name (with
    the values kept on trial, its passes grew to 7-9 ms in the policy service under such an attack: the
    tail of every other client's answer times, issue 15 item 6). A value is computed twice per key.

    ``values_on_trial`` (for a batch, such as ``typoguard check -`` over a file, where no other client
    waits and a second computation is the cost that shows): the trial cache keeps the value too, and the
    second use takes it from there.
    """

    __slots__ = ("main", "trial", "values_on_trial")

    def __init__(
        self,
        max_bytes: int,
        sizeof: Callable[[K, V], int],
        key_bytes: Callable[[K], int],
        *,
        trial_share: int = 4,
    ) -> None:
        trial = max(1024, max_bytes // trial_share)
        self.main: ByteBoundedCache[K, V] = ByteBoundedCache(max(1024, max_bytes - trial), sizeof)

        def trial_size(key: K, value: object) -> int:
            return key_bytes(key) if value is _SEEN else sizeof(key, cast(V, value))

        self.trial: ByteBoundedCache[K, object] = ByteBoundedCache(trial, trial_size)
        self.values_on_trial = False

    def get(self, key: K) -> V | None:
        found = self.main.get(key)
        if found is None and self.values_on_trial:
            held = self.trial.pop(key)
            if held is not None and held is not _SEEN:
                found = cast(V, held)
                self.main.put(key, found)
        return found

    def put(self, key: K, value: V) -> None:
        if self.trial.pop(key) is None:
            self.trial.put(key, value if self.values_on_trial else _SEEN)
        else:
            self.main.put(key, value)

    def clear(self) -> None:
        self.main.clear()
        self.trial.clear()

    @property
    def bytes(self) -> int:
        """Bytes held, as estimated (at most the budget given)."""
        return self.main.bytes + self.trial.bytes

    def __len__(self) -> int:
        return len(self.main) + len(self.trial)


T = TypeVar("T")
PAIR_OVERHEAD = 64  # the (object, value) tuple an ``IdentityMemo`` entry is kept in


class IdentityMemo(ByteBoundedCache[int, tuple[T, V]], Generic[T, V]):
    """``prepare(obj)`` memoised per object (not per value): what a caller derives once from an
    ``Assessment``, which the detector shares between every recipient at one domain (a reply's fixed
    pieces, a JSON tail). Bounded by bytes: a ``ByteBoundedCache`` of ``id(obj)`` -> ``(obj, value)``
    (``sizeof(obj, value)`` estimates an entry).

    An entry keeps its object, so no other object can take that id while the entry lives, and a hit is
    checked to be the very object anyway. ``keep(obj)`` False: prepared, not kept (an object that is never
    shared, such as an invalid recipient's assessment). A hot path may probe the young generation itself
    (``hit = memo.new.get(id(obj))``, a hit when ``hit[0] is obj``) and call ``miss(obj)`` otherwise.
    """

    __slots__ = ("_keep", "_prepare", "_value_size")

    def __init__(
        self,
        prepare: Callable[[T], V],
        max_bytes: int,
        sizeof: Callable[[T, V], int],
        keep: Callable[[T], bool] | None = None,
    ) -> None:
        super().__init__(max_bytes, self._entry_size)
        self._prepare = prepare
        self._value_size = sizeof
        self._keep = keep

    def _entry_size(self, key: int, entry: tuple[T, V]) -> int:
        return self._value_size(entry[0], entry[1]) + PAIR_OVERHEAD

    def __call__(self, obj: T) -> V:
        hit = self.new.get(id(obj))
        if hit is not None and hit[0] is obj:
            return hit[1]
        return self.miss(obj)

    def miss(self, obj: T) -> V:
        """``obj``'s value when it is not in ``new``: from the older generation, or prepared now."""
        key = id(obj)
        hit = self.get(key)
        if hit is not None and hit[0] is obj:
            return hit[1]
        value = self._prepare(obj)
        keep = self._keep
        if keep is None or keep(obj):
            self.put(key, (obj, value))
        return value
