"""core/memo.py: IdentityMemo, what is prepared once per shared object, bounded by bytes."""

from __future__ import annotations

from typoguard.core.memo import IdentityMemo


class Thing:
    def __init__(self, name: str, shared: bool = True) -> None:
        self.name = name
        self.shared = shared


def test_prepared_once_per_object_not_per_equal_value() -> None:
    calls: list[str] = []

    def prepare(t: Thing) -> str:
        calls.append(t.name)
        return t.name.upper()

    memo: IdentityMemo[Thing, str] = IdentityMemo(prepare, 1 << 20, lambda t, v: 100)
    a, b = Thing("a"), Thing("a")
    assert memo(a) == memo(a) == memo(b) == "A"
    assert calls == ["a", "a"]  # a twice from the memo, b (equal but another object) prepared too
    hit = memo.new.get(id(a))
    assert hit is not None and hit[0] is a


def test_objects_not_kept_are_prepared_every_time() -> None:
    calls: list[str] = []
    memo: IdentityMemo[Thing, str] = IdentityMemo(
        lambda t: calls.append(t.name) or t.name, 1 << 20, lambda t, v: 100, keep=lambda t: t.shared
    )
    once = Thing("once", shared=False)
    memo(once)
    memo(once)
    assert calls == ["once", "once"] and len(memo) == 0


def test_bounded_by_bytes_however_many_objects() -> None:
    memo: IdentityMemo[Thing, str] = IdentityMemo(lambda t: t.name, 64 * 1024, lambda t, v: 1000)
    things = [Thing(str(i)) for i in range(1000)]
    for t in things:
        assert memo(t) == t.name
    assert memo.bytes <= 64 * 1024 and len(memo) < 100
    assert memo(things[-1]) == str(999)  # the recent ones are still there
