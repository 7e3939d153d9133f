"""IdentityMap: stable serials per live object, no strong references, no merging of live objects
(and, for weak-referenceable objects, none across an id() reuse: trap 3), and a bounded number of
entries for objects that cannot be weakly referenced (evicted ones get new serials, never old)."""

from __future__ import annotations

import gc
import random
import subprocess
import sys
import threading
import weakref
from typing import Any

import pytest

from replay.recorder.identity import IdentityMap


class Thing:
    pass


class NoWeak:
    __slots__ = ("v",)


def test_same_object_same_key_distinct_objects_distinct_keys() -> None:
    ids = IdentityMap()
    objs = [Thing(), [1], {"a": 1}, (1, 2), NoWeak(), frozenset({1}), Thing]
    keys = [ids.key(o) for o in objs]
    assert keys == [ids.key(o) for o in objs]
    assert len(set(keys)) == len(objs)
    assert min(keys) == 1


def test_aliasing() -> None:
    ids = IdentityMap()
    a = [1, 2]
    b = a
    assert ids.key(a) == ids.key(b)
    b.append(3)
    assert ids.key(a) == ids.key(b)


def test_holds_no_strong_reference() -> None:
    ids = IdentityMap()
    obj = Thing()
    lst = [obj]
    ref = weakref.ref(obj)
    before = sys.getrefcount(lst)
    ids.key(obj)
    ids.key(lst)
    assert sys.getrefcount(lst) == before
    del obj, lst
    gc.collect()
    assert ref() is None


def test_entries_of_dead_weakrefable_objects_are_dropped() -> None:
    ids = IdentityMap()
    objs = [Thing() for _ in range(50)]
    for o in objs:
        ids.key(o)
    assert len(ids) == 50
    del objs, o
    gc.collect()
    assert len(ids) == 0


def test_trap3_reused_id_gets_a_new_key() -> None:
    ids = IdentityMap()
    reused = 0
    last: dict[int, int] = {}
    for _ in range(500):
        obj = Thing()
        key = ids.key(obj)
        if id(obj) in last:
            reused += 1
            assert last[id(obj)] != key, "a new object inherited a dead object's identity"
        last[id(obj)] = key
        del obj
    assert reused > 0  # CPython reused the address: the trap was exercised


class SlimList(list):
    __slots__ = ()  # not weak-referenceable, same size as a list


def test_reuse_by_a_different_type_gets_a_new_key() -> None:
    ids = IdentityMap()
    merged_types = 0
    seen: dict[int, tuple[type, int]] = {}
    for i in range(300):
        obj: Any = list() if i % 2 else SlimList()
        key = ids.key(obj)
        prev = seen.get(id(obj))
        if prev is not None and prev[0] is not type(obj):
            merged_types += 1
            assert prev[1] != key
        seen[id(obj)] = (type(obj), key)
        del obj
    assert merged_types > 0


def test_tuples_with_other_contents_get_new_keys() -> None:
    ids = IdentityMap()
    reused = 0
    seen: dict[int, tuple[Any, int]] = {}
    sentinels = [object() for _ in range(5000)]
    # Make tuples until CPython has handed a freed tuple's address to a new one often enough
    # (how soon depends on the allocator's state): every such reuse must get a new key.
    for i in range(5000):
        t = (sentinels[i], i)
        key = ids.key(t)
        prev = seen.get(id(t))
        if prev is not None:
            reused += 1
            assert prev[1] != key
        seen[id(t)] = (sentinels[i], key)
        del t
        if reused >= 50:
            break
    assert reused > 0


def test_thread_safety_one_serial_per_object() -> None:
    ids = IdentityMap()
    objs = [Thing() for _ in range(2000)] + [[i] for i in range(2000)]
    results: list[list[int]] = []
    barrier = threading.Barrier(4)

    def work() -> None:
        barrier.wait()
        results.append([ids.key(o) for o in objs])

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(r == results[0] for r in results)
    assert len(set(results[0])) == len(objs)


def test_callbacks_are_quiet_at_interpreter_shutdown() -> None:
    code = """
from replay.recorder.identity import IdentityMap
class T: pass
ids = IdentityMap()
keep = [T() for _ in range(1000)]
for o in keep: ids.key(o)
cycle = T(); cycle.me = cycle; ids.key(cycle)
del ids  # objects outlive the map and die during shutdown
"""
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert proc.returncode == 0
    assert proc.stderr == ""


# -- the bound: two generations of non-weakrefable entries (see the module docstring) ------------


def assert_no_shared_serial(pairs: list[tuple[int, Any]]) -> None:
    """(serial, object) pairs, all objects alive: one object per serial."""
    owner: dict[int, int] = {}
    for serial, obj in pairs:
        assert owner.setdefault(serial, id(obj)) == id(obj), f"serial {serial} shared"


def test_non_weakrefable_entries_are_bounded() -> None:
    ids = IdentityMap(limit=16)
    alive = [[i] for i in range(1000)]
    for obj in alive:
        ids.key(obj)
    assert len(ids) <= 2 * 16
    for _ in range(1000):  # dead ones too: made, keyed and dropped
        ids.key({"k": 1})
        ids.key((object(), 1))
    assert len(ids) <= 2 * 16


def test_weakrefable_entries_are_not_evicted() -> None:
    ids = IdentityMap(limit=4)
    things = [Thing() for _ in range(100)]
    keys = [ids.key(t) for t in things]
    for i in range(100):
        ids.key([i])  # many rotations
    assert [ids.key(t) for t in things] == keys


def test_live_objects_never_share_a_serial_after_eviction() -> None:
    ids = IdentityMap(limit=8)
    alive: list[Any] = [[i] for i in range(60)] + [{"i": i} for i in range(60)]
    alive += [(i, str(i)) for i in range(60)] + [NoWeak() for _ in range(60)]
    alive += [Thing() for _ in range(20)] + [frozenset({i}) for i in range(20)]
    rng = random.Random(7)
    seen: list[tuple[int, Any]] = []
    for _ in range(20):
        rng.shuffle(alive)
        seen += [(ids.key(obj), obj) for obj in alive]
        assert len(ids) <= 2 * 8 + 40  # Things and frozensets: weakly referenced, never evicted
    assert_no_shared_serial(seen)  # across all rounds: an evicted object got a NEW serial
    serials_of: dict[int, set[int]] = {}
    for serial, obj in seen:
        serials_of.setdefault(id(obj), set()).add(serial)
    assert max(len(s) for s in serials_of.values()) > 1  # evictions did happen


def test_an_evicted_object_gets_a_fresh_serial_never_an_old_one() -> None:
    ids = IdentityMap(limit=2)
    kept = [1]
    first = ids.key(kept)
    others = [[i] for i in range(10)]
    issued = [ids.key(o) for o in others]
    again = ids.key(kept)  # forgotten by now: a new serial, above every serial issued
    assert again != first and again > max(issued)
    assert ids.key(kept) == again


def test_objects_in_use_keep_their_serial_across_rotations() -> None:
    ids = IdentityMap(limit=8)
    hot = {"config": 1}
    key = ids.key(hot)
    for i in range(500):
        ids.key([i])  # made and dropped: one entry each
        if i % 5 == 0:
            assert ids.key(hot) == key  # seen within every generation: kept (promoted)


def test_eviction_under_threads_never_shares_a_serial() -> None:
    ids = IdentityMap(limit=32)
    objs: list[Any] = [[i] for i in range(500)] + [{"i": i} for i in range(500)]
    objs += [Thing() for _ in range(200)]
    results: list[list[tuple[int, Any]]] = []
    barrier = threading.Barrier(4)

    def work(seed: int) -> None:
        order = objs[:]
        random.Random(seed).shuffle(order)
        barrier.wait()
        results.append([(ids.key(o), o) for o in order * 3])

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert_no_shared_serial([pair for result in results for pair in result])
    assert len(ids) <= 2 * 32 + 200


def test_limit_must_be_positive() -> None:
    with pytest.raises(ValueError):
        IdentityMap(limit=0)
