from types import BuiltinMethodType

import pytest

from sidecar.core.lru import Lru


def filled(*keys: str, most: int = 3) -> tuple[Lru[str, int], list[tuple[str, int]]]:
    evicted: list[tuple[str, int]] = []
    lru: Lru[str, int] = Lru(most, on_evict=lambda k, v: evicted.append((k, v)))
    for i, key in enumerate(keys):
        lru.put(key, i)
    return lru, evicted


def test_put_past_the_bound_evicts_the_least_recently_used_to_the_callback() -> None:
    lru, evicted = filled("a", "b", "c")
    lru.put("d", 3)
    assert list(lru) == ["b", "c", "d"] and evicted == [("a", 0)]


def test_get_is_a_use_and_peek_and_lookups_are_not() -> None:
    lru, evicted = filled("a", "b", "c")
    assert lru.get("a") == 0
    assert lru.peek("b") == 1 and lru["b"] == 1 and "b" in lru
    lru.put("d", 3)
    assert evicted == [("b", 1)] and list(lru) == ["c", "a", "d"]


def test_missing_keys() -> None:
    lru, _ = filled("a")
    assert lru.get("x") is None and lru.peek("x") is None and "x" not in lru
    with pytest.raises(KeyError):
        lru["x"]
    with pytest.raises(KeyError):
        lru.refresh("x")
    with pytest.raises(KeyError):
        lru.pop("x")
    assert lru.pop("x", None) is None and list(lru) == ["a"]


def test_put_of_a_held_key_replaces_it_as_the_most_recent_without_evicting() -> None:
    lru, evicted = filled("a", "b", "c")
    lru.put("a", 9)
    assert list(lru.items()) == [("b", 1), ("c", 2), ("a", 9)] and evicted == []


def test_refresh_moves_a_key_to_the_most_recent_end() -> None:
    lru, evicted = filled("a", "b", "c")
    lru.refresh("a")
    lru.put("d", 3)
    assert evicted == [("b", 1)]


def test_pop_and_clear_do_not_call_the_callback() -> None:
    lru, evicted = filled("a", "b", "c")
    assert lru.pop("b") == 1 and lru.pop("c", None) == 2
    lru.put("d", 3)
    assert list(lru.values()) == [0, 3] and len(lru) == 2
    lru.clear()
    assert len(lru) == 0 and evicted == []


def test_without_a_callback_and_with_no_room() -> None:
    lru: Lru[str, int] = Lru(1)
    lru.put("a", 1)
    lru.put("b", 2)
    assert list(lru.items()) == [("b", 2)]
    none: Lru[str, int] = Lru(0)
    none.put("a", 1)
    assert len(none) == 0


def test_a_callback_may_touch_the_map() -> None:
    """keys/cache and sessions/store account for what they drop in the callback."""
    sizes: Lru[str, int]
    held = [0]

    def dropped(key: str, size: int) -> None:
        held[0] -= size
        assert key not in sizes

    sizes = Lru(2, on_evict=dropped)
    for key, size in (("a", 5), ("b", 7), ("c", 11)):
        sizes.put(key, size)
        held[0] += size
    assert held[0] == 18 and list(sizes) == ["b", "c"]


def test_a_negative_bound_is_refused() -> None:
    with pytest.raises(ValueError, match="max_entries"):
        Lru(-1)


def test_peek_and_refresh_are_the_ordered_dicts_own_c_methods() -> None:
    """The hot paths (MemoizedCount, KeyCache.get) write peek then refresh so that a hit costs no
    Python call more than it did on their OrderedDicts (bench/lru_micro.py)."""
    lru: Lru[str, int] = Lru(1)
    assert isinstance(lru.peek, BuiltinMethodType) and isinstance(lru.refresh, BuiltinMethodType)
