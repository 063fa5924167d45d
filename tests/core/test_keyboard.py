"""core/keyboard.py: which keys sit next to each other, so a slip of a finger can be told from chance."""

from __future__ import annotations

import pytest

from typoguard.core.keyboard import AZERTY, LAYOUTS, QWERTY, QWERTZ, Layout, merged_adjacency


def test_shipped_layouts_are_registered_by_name() -> None:
    assert set(LAYOUTS) == {"qwerty", "qwertz", "azerty"}
    assert LAYOUTS["qwerty"] is QWERTY


def test_qwerty_neighbours_of_g_match_a_real_keyboard() -> None:
    assert QWERTY.neighbours("g") == frozenset("fhtyvb")


def test_qwerty_neighbours_of_m_and_n() -> None:
    assert "n" in QWERTY.neighbours("m")
    assert "m" in QWERTY.neighbours("n")
    assert "q" not in QWERTY.neighbours("m")


def test_digits_neighbour_the_top_letter_row() -> None:
    assert {"q", "w"} <= QWERTY.neighbours("1") | QWERTY.neighbours("2")
    assert "0" in QWERTY.neighbours("o") or "0" in QWERTY.neighbours("p")


def test_layouts_differ_where_the_keyboards_do() -> None:
    assert "y" in QWERTZ.neighbours("x")  # the German y sits bottom left
    assert "y" not in QWERTY.neighbours("x")
    assert "a" in AZERTY.neighbours("z")
    assert "m" in AZERTY.neighbours("l")


def test_unknown_key_has_no_neighbours() -> None:
    assert QWERTY.neighbours("é") == frozenset()
    assert QWERTY.distance("a", "é") is None


def test_distance_between_neighbours_is_about_one_key() -> None:
    d = QWERTY.distance("a", "s")
    assert d == pytest.approx(1.0)
    far = QWERTY.distance("q", "m")
    assert far is not None and far > 4


def test_merged_adjacency_is_the_union() -> None:
    merged = merged_adjacency([QWERTY, QWERTZ])
    assert QWERTY.neighbours("y") | QWERTZ.neighbours("y") == merged["y"]
    assert {"t", "u", "a", "x"} <= merged["y"]


def test_a_key_twice_is_refused() -> None:
    with pytest.raises(ValueError, match="twice"):
        Layout("bad", ("abc", "cde"), (0.0, 0.5))


def test_rows_and_offsets_must_match() -> None:
    with pytest.raises(ValueError, match="offsets"):
        Layout("bad", ("abc", "def"), (0.0,))


@pytest.mark.parametrize("layout", list(LAYOUTS.values()), ids=list(LAYOUTS))
def test_no_key_is_its_own_neighbour(layout: Layout) -> None:
    assert all(key not in near for key, near in layout.adjacency.items())
