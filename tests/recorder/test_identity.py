"""IdentityMap: stable serials per live object, no strong references, no merging of live objects
(and, for weak-referenceable objects, none across an id() reuse: trap 3)."""

from __future__ import annotations

import gc
import subprocess
import sys
import threading
import weakref
from typing import Any

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
