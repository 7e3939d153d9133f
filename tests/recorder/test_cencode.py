"""The C encoder (_encode.c) against the Python encoder, value by value.

The C core builds the venc of a value the fingerprint walk can read (atoms, list, tuple, dict,
plain objects) in C. It must give exactly what `SnapshotEncoder` gives: the same shape, the same
cuts and back references, the same redactions, and the same identity serials (the two encoders
share one identity map, so a different order of `key` calls would show as different serials).
Each case encodes the value with the C encoder on one identity map and with the Python encoder on
another, fresh map, and compares; then a seeded random generator of nested values does the same
a few thousand times. The whole-program comparison of the two cores is test_core_parity.py.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime
import decimal
import pathlib
import random
import re
import socket
import sys
import threading
import uuid
from collections import OrderedDict, deque, namedtuple
from collections.abc import Callable
from typing import Any

import pytest
from value_zoo import (
    CASES,
    IO_PARTS,
    AppError,
    Other,
    Pair,
    Plain,
    Point3,
    Slotted,
    SlottedPair,
    _big_ints,
    _descriptors_and_code,
    _exceptions,
    _files,
    _locks,
    _odd_uuid,
    random_value,
)

from replay.object_records import R_MAP, R_OBJ, R_SEQ, V_OREF, expand
from replay.recorder import csettrace
from replay.recorder.identity import IdentityMap
from replay.recorder.redaction import Redactor
from replay.recorder.scope import Scope
from replay.recorder.snapshot import CaptureLimits, SnapshotEncoder
from replay.recorder.state import RecordingState

pytestmark = pytest.mark.skipif(
    csettrace.available() is not None, reason=f"no C core here: {csettrace.available()}"
)


def _encoders(
    limits: CaptureLimits, identity_limit: int = 1 << 15
) -> tuple[Any, SnapshotEncoder, SnapshotEncoder]:
    """A C tracer, the fresh encoder whose rule it follows, and another fresh Python encoder."""
    c_side = SnapshotEncoder(limits, Redactor(), IdentityMap(identity_limit))
    state = RecordingState(Scope("/nonexistent-scope"), c_side.encode_named)
    core = csettrace.CSettraceCore(state, c_side.encode_exception)
    py_side = SnapshotEncoder(limits, Redactor(), IdentityMap(identity_limit))
    return core._tracer, c_side, py_side


def _python(encoder: SnapshotEncoder, value: Any) -> Any:
    return encoder._enc(value, 0, [encoder.limits.max_nodes, []])


def _same(value: Any, limits: CaptureLimits | None = None) -> Any:
    tracer, _, encoder = _encoders(limits or CaptureLimits())
    c_venc = tracer._c_encode(value)
    assert c_venc is not None, "the C encoder left a value it should know to Python"
    assert c_venc == _python(encoder, value)
    return c_venc


@pytest.mark.parametrize("name", sorted(CASES))
def test_the_c_encoder_gives_the_python_encoders_venc(name: str) -> None:
    _same(CASES[name])


@pytest.mark.parametrize(
    "limits",
    [
        CaptureLimits(max_depth=1),
        CaptureLimits(max_items=2, max_attrs=2),
        CaptureLimits(max_nodes=5),
        CaptureLimits(max_string=3),
        CaptureLimits(max_depth=0),
    ],
    ids=repr,
)
def test_limits_cut_where_the_python_encoder_cuts(limits: CaptureLimits) -> None:
    for value in CASES.values():
        _same(value, limits)


def test_an_empty_container_after_an_overdrawn_budget_is_not_a_fault() -> None:
    # Secret pairs take two nodes each without asking: the budget can go below zero, and an
    # empty dict after that once made the Python encoder fail (islice with a negative count).
    encoder = SnapshotEncoder(CaptureLimits(max_nodes=40), Redactor(), IdentityMap())
    venc = _python(encoder, [("password", 1)] * 21 + [{}, set()])
    assert encoder.faults == 0
    empty_dict, empty_set = venc[4][-2:]
    assert (empty_dict[2:], empty_set[2:]) == (("dict", 0, []), ("set", 0, []))
    _same([("password", 1)] * 21 + [{}], CaptureLimits(max_nodes=40))


class Text(str):
    """A str subclass: what it shows could be Python code."""


def test_values_only_python_knows_are_left_to_it() -> None:
    tracer, _, encoder = _encoders(CaptureLimits())
    values = (
        10**1000,  # more digits than max_int_digits: shown by its leading digits
        [-(10**999)],
        _odd_uuid(),
        UnicodeDecodeError("utf-8", b"\xff", 0, 1, "bad"),  # a C Py_ssize_t member (start)
        OrderedDict(a=1),
        [Pair.ONE],
    )
    for value in values:
        assert tracer._c_encode(value) is NotImplemented
    # A pattern compiled from a str subclass: its text would call the subclass's __repr__, so
    # the encoder shows `<re.Pattern object>`, decided in Python.
    odd = re.compile(Text("a+"))
    assert tracer._c_encode(odd) is NotImplemented
    assert _python(encoder, odd)[3] == "<re.Pattern object>"


def test_a_renamed_function_is_encoded_again() -> None:
    # An opaque value's venc is kept under its fingerprint, which reads what its text shows.
    tracer, _, encoder = _encoders(CaptureLimits())

    def helper() -> None:
        pass

    value = Plain(f=helper, m=sys)
    first = tracer._c_encode(value)
    assert first == _python(encoder, value)
    helper.__qualname__ = "renamed"
    again = tracer._c_encode(value)
    assert again == _python(encoder, value)
    assert "renamed" in again[3]["f"][3]


ASGI_SCOPE = {
    "type": "http",
    "path": "/orders",
    "headers": [(b"host", b"shop.test"), (b"authorization", b"Bearer x"), (b"accept", b"*/*")],
}


@pytest.mark.parametrize(
    "value",
    [
        ASGI_SCOPE,  # (bytes, bytes) pairs, one of them secret: names decoded as latin-1
        {b"token": "t", b"plain": 1},
        _exceptions(),
        _big_ints(),
        _descriptors_and_code(),
        _locks(),
        pytest.param(_files(), marks=pytest.mark.skipif(not IO_PARTS, reason="3.12+")),
    ],
    ids=[
        "ASGI headers",
        "bytes keys",
        "exceptions",
        "big ints",
        "descriptors and code",
        "locks",
        "WSGI streams",
    ],
)
def test_the_walk_reads_it_so_an_unchanged_value_costs_no_encoding(value: Any) -> None:
    # A value the walk gives up on is encoded again at every check, changed or not.
    tracer, _, encoder = _encoders(CaptureLimits())
    assert tracer._c_fingerprint(value) != 0
    assert tracer._c_fingerprint(value) == tracer._c_fingerprint(value)
    assert tracer._c_encode(value) == _python(encoder, value)


def test_the_walk_gives_up_where_only_python_knows() -> None:
    tracer, _, _ = _encoders(CaptureLimits())
    odd_error = UnicodeDecodeError("utf-8", b"\xff", 0, 1, "bad")
    for value in ([10**1000], [odd_error], [OrderedDict(a=1)], [Pair.ONE]):
        assert tracer._c_fingerprint(value) == 0


class OwnStrError(Exception):
    def __str__(self) -> str:
        raise AssertionError("the recorder ran the exception's __str__")


def test_exceptions_are_described_in_c_as_the_python_encoder_describes_them() -> None:
    # Every exception event (a generator's end above all) is `(type name, message, venc)`.
    tracer, _, encoder = _encoders(CaptureLimits(max_string=20))
    described = [
        StopIteration(5),
        StopIteration(),
        StopIteration("s" * 30),  # the message cut as the Python encoder cuts it
        StopIteration([1, (2, "x")]),
        ValueError("bad", 3),
        GeneratorExit(),
        SystemExit(3),
        *(e for e in _exceptions() if type(e).__name__ == "SlottedError"),  # set and unset
    ]
    for exc in described:
        assert tracer._c_encode_exception(exc) == encoder.encode_exception(exc)
    left_to_python = [
        OwnStrError("own"),  # its __str__ is user code: never called, decided in Python
        KeyError("k"),  # a C __str__ of its own (the key's repr)
        OSError(2, "x"),
        StopIteration(Plain()),  # str() of the argument could be user code
        UnicodeDecodeError("utf-8", b"\xff", 0, 1, "bad"),  # a member the walk does not read
    ]
    for exc in left_to_python:
        assert tracer._c_encode_exception(exc) is NotImplemented
    assert encoder.encode_exception(OwnStrError("own"))[1] == "own"


def test_a_bound_slot_wrapper_follows_the_class_of_its_object() -> None:
    # `<method-wrapper '__setattr__' of X object>` names the class of the object it is bound
    # to, which `obj.__class__ = ...` changes.
    tracer, _, encoder = _encoders(CaptureLimits())
    obj = Plain()
    value = [obj.__setattr__]
    assert tracer._c_encode(value) == _python(encoder, value)
    obj.__class__ = Other
    again = tracer._c_encode(value)
    assert again == _python(encoder, value)
    assert again[4][0][3].endswith("value_zoo.Other object>")


def test_a_lock_that_is_taken_is_encoded_again() -> None:
    tracer, _, encoder = _encoders(CaptureLimits())
    lock = threading.Lock()
    value = [lock]
    assert tracer._c_encode(value)[4][0][3] == "<unlocked _thread.lock object>"
    with lock:
        again = tracer._c_encode(value)
        assert again == _python(encoder, value)
        assert again[4][0][3] == "<locked _thread.lock object>"


def test_a_big_int_that_changes_is_encoded_again() -> None:
    tracer, _, encoder = _encoders(CaptureLimits())
    value = [2**64]
    first = tracer._c_encode(value)
    assert first == _python(encoder, value)
    assert first[4] == [2**64]
    value[0] += 1
    again = tracer._c_encode(value)
    assert again == _python(encoder, value)
    assert again[4] == [2**64 + 1]


def test_an_exception_whose_attribute_changes_is_encoded_again() -> None:
    tracer, _, encoder = _encoders(CaptureLimits())
    error = AppError("failed", 1, "t")
    value = {"error": error}
    assert tracer._c_encode(value) == _python(encoder, value)
    error.code = 2
    error.args = ("failed again",)
    again = tracer._c_encode(value)
    assert again == _python(encoder, value)
    shown = again[4][0][1][3]
    assert shown["code"] == 2
    assert shown["args"][4] == ["failed again"]


def test_small_int_digit_limits_turn_the_c_encoder_off() -> None:
    # With max_int_digits below 19 an int the walk takes may be a big int to the encoder.
    tracer, _, _ = _encoders(CaptureLimits(max_int_digits=5))
    assert tracer._c_encode([1, 2]) is NotImplemented


def test_serials_follow_the_python_encoders_order_across_values() -> None:
    # One map, many values: serials handed out by the C encoder in the Python encoder's order.
    tracer, _, encoder = _encoders(CaptureLimits())
    shared = Plain(v=1)
    values = [[shared, {"k": shared}], (shared, [1]), {"x": [2, shared]}, Plain(o=shared)]
    for value in values:
        assert tracer._c_encode(value) == _python(encoder, value)


@pytest.mark.parametrize("seed", range(24))
def test_random_values_encode_alike(seed: int) -> None:
    rng = random.Random(seed)
    limits = rng.choice([CaptureLimits(), CaptureLimits(max_depth=3, max_nodes=40)])
    tracer, c_side, encoder = _encoders(limits)
    left = 0
    for _ in range(200):
        value = random_value(rng, 0, [])
        c_venc = tracer._c_encode(value)
        py_venc = _python(encoder, value)  # also when C gave up: the core then runs Python
        if c_venc is NotImplemented:
            left += 1  # as in the core: the Python encoder runs, on the same identity map
            _python(c_side, value)
            continue
        assert c_venc == py_venc
        # Again, every object known to the identity map: the encoder now follows the walk's
        # log of parts (copies of parts met twice among them) instead of walking each part.
        assert tracer._c_encode(value) == _python(encoder, value)
    assert left < 20, f"the C encoder left {left} of 200 values to Python"


def _met_again_under_itself() -> list[Any]:
    q: list[Any] = []
    p = (q,)
    q.append(p)
    return [[p], q]  # p's second place is under q, which p holds: there q is a back reference


@pytest.mark.parametrize(
    ("make", "limits", "copied"),
    [
        (lambda: [[1, (2, 3)]] * 30, CaptureLimits(), True),
        (lambda: [[1, 2, 3]] * 30, CaptureLimits(max_nodes=40), True),  # the budget runs out
        (lambda: {"password": (s := [1, [2]]), "x": [s], "y": [s]}, CaptureLimits(), True),
        (_met_again_under_itself, CaptureLimits(), False),
    ],
    ids=["shared", "budget-runs-out", "under-a-secret-name", "met-again-under-itself"],
)
def test_a_part_met_again_in_a_value_is_copied_where_that_is_the_same(
    make: Callable[[], Any], limits: CaptureLimits, copied: bool
) -> None:
    # GIVEN a value holding one part in several places (the walk copies what it found for the
    # part the first time, rather than walking it again: nbody's bodies in its pairs)
    value = make()
    tracer, _, encoder = _encoders(limits)
    # WHEN it is encoded again and again (the identity map knowing its objects: the encoder
    # then reads the walk's log of parts, copies included)
    for _ in range(3):
        # THEN each encoding is the Python encoder's: a copy stands for a part only where
        # walking it again would give the same (no cut for want of budget, no back reference)
        assert tracer._c_encode(value) == _python(encoder, value)
    assert (tracer.counters()["part_copies"] > 0) == copied


def test_the_c_encoder_keeps_no_reference_to_values() -> None:
    tracer, _, _ = _encoders(CaptureLimits())
    value = Plain(items=[1, 2, {"k": (3, 4)}])
    before = sys.getrefcount(value), sys.getrefcount(value.items)
    for _ in range(100):
        tracer._c_encode(value)
    assert (sys.getrefcount(value), sys.getrefcount(value.items)) == before


def test_encoding_the_same_values_again_allocates_nothing_lasting() -> None:
    # A reference leaked per node would keep every venc alive: thousands of blocks per round.
    tracer, _, _ = _encoders(CaptureLimits())
    values = [CASES[name] for name in sorted(CASES)]
    rounds = []
    for _ in range(6):
        for _ in range(50):
            for value in values:
                tracer._c_encode(value)
        rounds.append(sys.getallocatedblocks())
    assert rounds[-1] - rounds[2] < 100, rounds


def test_each_class_in_use_is_classified_once_wherever_it_was_allocated() -> None:
    # The walk caches how each class is read, keyed by the class's address. With 400 classes
    # in use together some share a home slot whatever the addresses; a cache that let one
    # push another out asked the encoder again at every walk (richards.py ran 17 times slower
    # in about one run in ten).
    tracer, _, encoder = _encoders(CaptureLimits(max_items=1000, max_nodes=5000))
    classes = [type(f"Kind{i}", (Plain,), {}) for i in range(400)]
    value = [cls(n=i) for i, cls in enumerate(classes)]
    assert tracer._c_encode(value) == _python(encoder, value)
    first = tracer.counters()["classes_asked"]
    assert first >= len(classes)
    for _ in range(3):
        value[0].n += 1  # a change: the walk reads every object again
        assert tracer._c_encode(value) == _python(encoder, value)
    assert tracer.counters()["classes_asked"] == first


def _memo_slot(obj: object) -> int:
    """The slot of the C encoder's memo of identity-map answers for `obj` (fp_slot_of, 4096)."""
    return ((id(obj) * 0x9E3779B97F4A7C15) % 2**64 >> 32) & 4095


def test_two_lists_whose_addresses_share_a_memo_slot_are_both_remembered() -> None:
    # GIVEN two lists in one value whose addresses give the same slot of the encoder's memo of
    # the identity map's answers (a list's serial is asked of the map by its address)
    kept: dict[int, list[int]] = {}
    pair = None
    while pair is None:
        candidate = [len(kept)]
        slot = _memo_slot(candidate)
        if slot in kept:
            pair = [kept[slot], candidate]
        else:
            kept[slot] = candidate
    tracer, _, encoder = _encoders(CaptureLimits())
    value = {"one": pair[0], "two": pair[1]}
    # (the first encodings' answers are out of date once they gave out serials)
    for i in range(3):
        pair[0][0] = pair[1][0] = i
        assert tracer._c_encode(value) == _python(encoder, value)
    asked = tracer.counters()["python_calls"]
    # WHEN both change and the value is encoded again and again
    for i in range(3):
        pair[0][0] = pair[1][0] = -i
        assert tracer._c_encode(value) == _python(encoder, value)
    # THEN the map is not asked about either list again: the memo keeps both (one slot each
    # pushed the other out at every encoding, a call into Python each time: recording nbody
    # took 40% longer in one run in three)
    assert tracer.counters()["python_calls"] == asked


@dataclasses.dataclass(slots=True)
class Priced:
    """A slotted dataclass: no `__weakref__`, so the identity map keys it by address."""

    sku: str
    price: decimal.Decimal


@dataclasses.dataclass(slots=True)
class Shipped:
    sku: str
    price: decimal.Decimal


def test_fresh_decimals_and_slotted_objects_are_encoded_without_python() -> None:
    # GIVEN slotted objects holding Decimals, and a log of tuples that grows and loses its
    # oldest (new entries in the identity map, some at the addresses of dead tuples)
    tracer, _, encoder = _encoders(CaptureLimits())
    items = [Priced(f"sku-{i}", decimal.Decimal(i) / 7) for i in range(20)]
    log: list[tuple[int, str]] = []
    value = {"items": items, "log": log}
    assert tracer._c_encode(value) == _python(encoder, value)
    asked = tracer.counters()["python_calls"]
    for step in range(50):
        # WHEN every price is a new Decimal (each sum is one) and the log moves on
        for item in items:
            item.price += decimal.Decimal("0.01")
        log.append((step, "x"))
        if len(log) > 4:
            del log[0]
        assert tracer._c_encode(value) == _python(encoder, value)
    # THEN neither the map is asked in Python about a new tuple (its entry is made in C, as
    # `IdentityMap._insert` makes it: the serials above are the Python encoder's), nor the
    # Python encoder about a Decimal's text: until 2026-11-28, 159,000 Decimal texts and 94,000
    # serials of slotted objects went through Python while recording orders.py, and until
    # session 20 each new tuple's serial (28,000 on generators.py 25)
    assert tracer.counters()["python_calls"] - asked == 0


def test_new_entries_made_in_c_give_the_serials_the_map_gives() -> None:
    # GIVEN a young generation of 8 entries (rotations every few steps), and values that make
    # new tuples, lists and dicts at the addresses of dead ones, slotted objects, and objects
    # kept for a while (old entries promoted back)
    tracer, c_side, py_side = _encoders(CaptureLimits(), identity_limit=8)
    rng = random.Random(20)
    kept: list[Any] = []
    for step in range(400):
        value = [(step, rng.randint(0, 3)), {"k": [step]}, Shipped("a", decimal.Decimal(step))]
        if rng.random() < 0.3:
            kept.append(value)
            if len(kept) > 5:
                del kept[rng.randrange(len(kept))]
        # THEN every encoding names the objects as the Python encoder's own map does
        whole = [value, kept]
        assert tracer._c_encode(whole) == _python(py_side, whole)
    assert c_side.identity.rotations[0] == py_side.identity.rotations[0] > 40


# A namedtuple whose instances take the allocator's block of a small frozenset (216 bytes with
# its collector header on 3.11 to 3.13), a weakly referenceable object without a pre-header.
Wide = namedtuple("Wide", [f"f{i}" for i in range(22)])


def _at(address: int, make: Callable[[], Any]) -> Any:
    """A new object from `make` at `address` (the allocator hands the freed block out again)."""
    tries = 100_000
    others: list[Any] = [None] * tries  # kept, each try taking the next free block of its size
    for i in range(tries):
        obj = make()
        if id(obj) == address:
            return obj
        others[i] = obj
    pytest.skip("the allocator did not give the address back")


def test_a_serial_given_out_in_c_is_in_the_fingerprint_the_encoding_is_kept_under() -> None:
    # GIVEN a namedtuple encoded inside a list (its venc kept under its fingerprint, taken by
    # the walk before its new serial existed), which then dies
    tracer, _, py_side = _encoders(CaptureLimits())
    fields = tuple(range(22))
    # (Made from a tuple that exists: Wide(...) would first make one of the same size.)
    first = tuple.__new__(Wide, fields)
    address = id(first)
    holder = [first]  # the same list throughout: no other new entry in the map
    assert tracer._c_encode(holder) == _python(py_side, holder)
    holder[0] = None
    del first
    # AND a weakly referenceable object at its address (its entry replaces the dead one's),
    # which dies too: the map then holds nothing there, as before the first encoding
    holder[0] = _at(address, lambda: frozenset((1, "x")))
    assert tracer._c_encode(holder) == _python(py_side, holder)
    holder[0] = None
    # WHEN an equal namedtuple takes the address
    holder[0] = _at(address, lambda: tuple.__new__(Wide, fields))
    # THEN it is a new object to the recording: a new serial, as the map gives it (until
    # session 20 the venc kept for the first one could be given again, with its serial)
    assert tracer._c_encode(holder) == _python(py_side, holder)


@pytest.mark.parametrize(
    "make",
    [lambda: [(1, "new")], lambda: Plain(x=1)],
    ids=["a tuple (a young entry)", "an object (a weak reference)"],
)
def test_a_new_entry_waits_for_a_thread_inside_the_maps_insert(make: Callable[[], Any]) -> None:
    # GIVEN another thread holding the identity map's lock (as inside IdentityMap._insert)
    tracer, c_side, py_side = _encoders(CaptureLimits())
    warm = [Plain(x=0)]  # its class known beforehand (classifying it is a call into Python)
    assert tracer._c_encode(warm) == _python(py_side, warm)
    held, release = threading.Event(), threading.Event()

    def hold() -> None:
        with c_side.identity._lock:
            held.set()
            release.wait(5)

    holder = threading.Thread(target=hold)
    holder.start()
    held.wait(5)
    asked = tracer.counters()["python_calls"]
    threading.Timer(0.2, release.set).start()
    # WHEN a new value needs a serial (the first the encoding asks for)
    value = make()
    venc = tracer._c_encode(value)
    holder.join()
    # THEN the C insert stood back and the map (Python) was asked, once the lock was free
    assert tracer.counters()["python_calls"] - asked == 1
    assert venc == _python(py_side, value)


def test_new_weak_entries_made_in_c_give_the_serials_the_map_gives() -> None:
    # GIVEN new objects that take weak references (a web application's request and response
    # objects), some kept a while, most dying at once (their addresses given out again, to
    # objects of either kind: an entry of a dead tuple there is the map's to replace), beside
    # new tuples (young entries made in C too)
    tracer, c_side, py_side = _encoders(CaptureLimits(), identity_limit=16)
    rng = random.Random(27)
    kept: list[Any] = []
    asked = tracer.counters()["python_calls"]
    for step in range(500):
        value = [Plain(n=step), (step, "t"), Plain(inner=Plain(n=-step)), kept]
        # THEN every encoding names the objects as the Python encoder's own map does
        assert tracer._c_encode(value) == _python(py_side, value), step
        if rng.random() < 0.2:
            kept.append(value[0])
            if len(kept) > 6:
                del kept[rng.randrange(len(kept))]
        del value
    # AND the serials of the new objects were made in C (until session 27, each was a call into
    # Python: three per step here, 1,500 and more), but where the map had an entry to replace at
    # the address (a dead tuple's or list's: about 200 here)
    calls = tracer.counters()["python_calls"] - asked
    assert calls < 500, calls
    assert len(c_side.identity) == len(py_side.identity)


def test_an_address_reused_by_an_object_without_weak_references_gets_the_maps_serial() -> None:
    # Objects of two slotted classes die and are made again, often at the same addresses: the
    # C encoder's answers (from the map's young entries and its memo) must be the ones the map
    # gives the Python encoder, on its own map, for the same sequence of values.
    tracer, _, encoder = _encoders(CaptureLimits(), identity_limit=64)
    rng = random.Random(5)
    keep: list[Any] = []
    for step in range(600):
        cls = rng.choice([Priced, Shipped])
        obj = cls(f"s{step % 7}", decimal.Decimal(step % 3))
        value = [obj, (step % 5, "t"), keep[-1] if keep else None]
        assert tracer._c_encode(value) == _python(encoder, value), step
        if rng.random() < 0.2:
            keep.append(obj)
        del obj, value


def test_an_unchanged_part_is_shared_and_a_changed_part_is_encoded_again() -> None:
    tracer, _, encoder = _encoders(CaptureLimits())
    child = Plain(items=[1, 2, 3])
    other = Plain(x=1, more={"k": [5, 6]})
    root = Plain(child=child, other=other)
    first = tracer._c_encode(root)
    assert first == _python(encoder, root)
    root.flag = True  # the root changed, its parts did not
    second = tracer._c_encode(root)
    assert second == _python(encoder, root)
    assert second[3]["child"] is first[3]["child"]
    assert second[3]["other"] is first[3]["other"]
    child.items.append(4)  # a change two levels down
    third = tracer._c_encode(root)
    assert third == _python(encoder, root)
    assert third[3]["child"] is not second[3]["child"]
    assert third[3]["child"][3]["items"][3] == 4
    assert third[3]["other"] is second[3]["other"]


def test_a_changed_slot_is_encoded_again() -> None:
    # The walk reads slots by their offsets: setting, changing, mutating and deleting one must
    # each change the fingerprint, or the old venc would be reused.
    tracer, _, encoder = _encoders(CaptureLimits())
    pair = SlottedPair()
    pair.b = [1]
    value = Plain(p=pair, again=pair)
    changes = [
        lambda: setattr(pair, "b", [2]),
        lambda: pair.b.append(3),
        lambda: delattr(pair, "b"),
        lambda: setattr(pair, "a", Slotted()),
        lambda: setattr(pair, "password", "changed"),
    ]
    before = tracer._c_encode(value)
    assert before == _python(encoder, value)
    for change in changes:
        change()
        after = tracer._c_encode(value)
        assert after == _python(encoder, value)
        assert after != before
        before = after


def test_a_new_date_or_duration_is_encoded_again() -> None:
    # Dates are values: the walk reads their fields, so an equal one reuses the text, another
    # one (even at the same address, once the first is gone) does not.
    tracer, _, encoder = _encoders(CaptureLimits())
    holder = Plain(when=datetime.datetime(2026, 1, 1), took=datetime.timedelta(seconds=1))
    seen = [tracer._c_encode(holder)]
    assert seen[-1] == _python(encoder, holder)
    for i in range(1, 20):
        holder.when = datetime.datetime(2026, 1, 1 + i % 28, i % 24)
        holder.took = datetime.timedelta(seconds=i)
        seen.append(tracer._c_encode(holder))
        assert seen[-1] == _python(encoder, holder)
        assert seen[-1] != seen[-2]


class OwnZone(datetime.tzinfo):
    """A tzinfo of the program's own: its repr is Python code, which the recorder must not run."""

    ran: list[str] = []

    def utcoffset(self, dt: Any) -> datetime.timedelta:
        return datetime.timedelta(hours=1)

    def __repr__(self) -> str:
        self.ran.append("__repr__")
        return "OwnZone()"


def test_new_dates_get_their_text_in_c_unless_their_zone_is_user_code() -> None:
    # GIVEN dates, times and durations as every `now()` makes them: new objects each time
    tracer, _, encoder = _encoders(CaptureLimits(max_string=40))
    fixed = datetime.timezone(datetime.timedelta(hours=-5), "EST")
    made = lambda i: [  # noqa: E731
        datetime.datetime(2026, 1, 1 + i % 28, i % 24, tzinfo=datetime.UTC if i % 2 else None),
        datetime.datetime(2026, 2, 1, 0, 0, i % 60, 123456, tzinfo=fixed),  # cut at 40
        datetime.time(i % 24, 30, tzinfo=fixed if i % 3 else None),
        datetime.date(2026, 3, 1 + i % 28),
        datetime.timedelta(seconds=i, microseconds=7),
    ]
    first = made(0)
    assert tracer._c_encode(first) == _python(encoder, first)  # the classes met once
    asked = tracer.counters()["python_calls"]
    for i in range(1, 30):
        value = made(i)
        # THEN each is the Python encoder's venc, its text made in C
        assert tracer._c_encode(value) == _python(encoder, value)
    assert tracer.counters()["python_calls"] - asked == 0
    # AND a zone of the program's own is left to the Python encoder, which shows no text of it
    odd = [datetime.datetime(2026, 1, 1, tzinfo=OwnZone())]
    assert tracer._c_encode(odd) == _python(encoder, odd)
    assert tracer.counters()["python_calls"] - asked == 1
    assert _python(encoder, odd)[4][0][3] == "<datetime.datetime object>"
    assert OwnZone.ran == []


def _decimals(rng: random.Random) -> list[decimal.Decimal]:
    """Decimals that differ in every part of their text, and some equal in value only."""
    texts = [
        "0",
        "-0",
        "0E+5",
        "0.000",
        "1",
        "1.0",
        "1.00",
        "-1",
        "1E+3",
        "1000",
        "NaN",
        "-NaN",
        "NaN7",
        "sNaN",
        "sNaN7",
        "-sNaN123",
        "Infinity",
        "-Infinity",
        "9" * 19,
        "1" + "0" * 19,
        "1" + "0" * 18 + "1",
        "12345678901234567890123E5",
        "-12345678901234567890123E5",
        "1E-7",
        "0.0000001",
        "1" * 60,
        "1" * 59 + "2",
        "2" + "1" * 59,
    ]
    for _ in range(300):
        digits = "".join(rng.choice("0123456789") for _ in range(rng.randint(1, 45)))
        texts.append(f"{rng.choice(['', '-'])}{digits}E{rng.randint(-30, 30)}")
    return [decimal.Decimal(text) for text in texts] + [
        decimal.Decimal(t) / 3 for t in texts[:20] if decimal.Decimal(t).is_finite()
    ]


def test_decimals_are_told_apart_by_their_fields_exactly_as_by_their_text() -> None:
    # The walk reads a C Decimal's sign, exponent and coefficient instead of making its text (a
    # fresh Decimal per sum made its text at every walk): two Decimals must give the same
    # fingerprint exactly when their texts are the same. Each is a new object (copy_abs and
    # copy_sign are exact), so that nothing is found remembered by identity.
    tracer, _, encoder = _encoders(CaptureLimits())
    holder: list[Any] = [None]
    by_text: dict[str, set[int]] = {}
    for value in _decimals(random.Random(7)):
        holder[0] = value.copy_abs().copy_sign(value)
        assert tracer._c_encode(holder) == _python(encoder, holder)  # the holder's serial first
        by_text.setdefault(repr(holder[0]), set()).add(tracer._c_fingerprint(holder))
    assert tracer.counters()["decimal_fields"], "the C Decimal's layout was not recognised"
    assert {text: fps for text, fps in by_text.items() if len(fps) != 1 or 0 in fps} == {}
    firsts = [next(iter(fps)) for fps in by_text.values()]
    assert len(set(firsts)) == len(firsts) > 300


def test_a_new_uuid_is_encoded_again() -> None:
    # UUIDs are values read by their 128 bits: each new one (high or low half) is shown anew.
    tracer, _, encoder = _encoders(CaptureLimits())
    holder = Plain(id=uuid.UUID(int=1))
    seen = [tracer._c_encode(holder)]
    assert seen[-1] == _python(encoder, holder)
    for i in (2, 1 << 64, (1 << 64) + 2, (1 << 127) | 2):
        holder.id = uuid.UUID(int=i)
        seen.append(tracer._c_encode(holder))
        assert seen[-1] == _python(encoder, holder)
        assert seen[-1] != seen[-2]


def test_a_new_path_is_encoded_again() -> None:
    # Paths are values read by the slots their text is made of: each new one is shown anew, and
    # one whose text pathlib cached meanwhile is shown as it was.
    tracer, _, encoder = _encoders(CaptureLimits())
    holder = Plain(path=pathlib.Path("/srv/0"))
    seen = [tracer._c_encode(holder)]
    assert seen[-1] == _python(encoder, holder)
    for i in range(1, 10):
        holder.path = pathlib.Path("/srv", str(i)) if i % 2 else pathlib.Path(f"/srv/{i}")
        seen.append(tracer._c_encode(holder))
        assert seen[-1] == _python(encoder, holder)
        assert seen[-1] != seen[-2]
        str(holder.path)
        assert tracer._c_encode(holder) == seen[-1]


def test_sockets_are_read_with_their_identity() -> None:
    # A socket's text shows its fd, family, type and proto: a closed one (fd -1) is shown anew,
    # and two sockets with the same text stay two objects.
    tracer, _, encoder = _encoders(CaptureLimits())
    left, right = socket.socketpair()
    holder = Plain(conn=left, peer=right, both=[left, right])
    try:
        first = tracer._c_encode(holder)
        assert first is not NotImplemented
        assert first == _python(encoder, holder)
        left.close()
        closed = tracer._c_encode(holder)
        assert closed == _python(encoder, holder)
        assert closed != first
    finally:
        left.close()
        right.close()


def test_asyncio_objects_are_read_where_their_classes_allow() -> None:
    # A queue with a waiting getter holds a deque of futures and the event loop, which holds
    # sockets: all read by the C core on 3.12+ (futures are C objects with an instance dict);
    # on 3.11 the future's class is a static C type, left to the Python encoder.
    tracer, _, encoder = _encoders(CaptureLimits())
    seen = []

    async def main() -> None:
        queue: asyncio.Queue[int] = asyncio.Queue()
        waiter = asyncio.ensure_future(queue.get())
        await asyncio.sleep(0)
        future = asyncio.get_running_loop().create_future()
        future.note = [1]  # type: ignore[attr-defined]
        for value in (queue, future, Plain(queue=queue, future=future)):
            seen.append((tracer._c_encode(value), _python(encoder, value)))
        await queue.put(1)
        await waiter

    asyncio.run(main())
    for c_venc, py_venc in seen:
        if sys.version_info >= (3, 12):
            assert c_venc is not NotImplemented
        if c_venc is not NotImplemented:
            assert c_venc == py_venc


def test_a_part_is_not_shared_where_the_budget_or_depth_differs() -> None:
    # The same list, met with less budget left, is cut elsewhere: never the earlier venc.
    tracer, _, encoder = _encoders(CaptureLimits(max_nodes=12))
    shared = list(range(8))
    values = [[shared], [list(range(6)), shared], [[[shared]]], [shared]]
    for value in values:
        assert tracer._c_encode(value) == _python(encoder, value)


def test_a_part_met_at_another_depth_is_shared_only_where_it_reads_the_same() -> None:
    # nbody's bodies are met at depth 1 in `bodies` and at depth 2 in `pairs`: one venc serves
    # both while the depth limit cuts nothing in it. Deeper down it cuts (an empty list at the
    # limit is a header, not `[]`), and then the part is encoded again.
    tracer, _, encoder = _encoders(CaptureLimits(max_depth=4))
    empty: list[int] = []
    body = Plain(items=empty, inner=[1, 2])
    at_1, at_2 = [body, empty], [[body]]
    first = tracer._c_encode(at_1)
    assert first == _python(encoder, at_1)
    second = tracer._c_encode(at_2)
    assert second == _python(encoder, at_2)
    assert second[4][0][4][0] is first[4][0], "the same part at depth 2 was encoded again"
    for deeper in ([[[body]]], [[[[empty]]]], [[[body]]], at_2, [[[[empty]]]], at_1):
        assert tracer._c_encode(deeper) == _python(encoder, deeper)
    # A value bound to a name is the same part: it shares the venc it has inside another value
    # (nbody's `v1`, after `bodies`), and the other value shares its venc.
    assert tracer._c_encode(body) is first[4][0]
    velocity = [1.5, 2.5]
    alone = tracer._c_encode(velocity)
    assert alone == _python(encoder, velocity)
    held = [[velocity]]
    assert tracer._c_encode(held) == _python(encoder, held)
    assert tracer._c_encode(held)[4][0][4][0] is alone


def test_a_plain_objects_fingerprint_follows_every_change_of_its_dict() -> None:
    # On 3.11 and 3.12 the walk keeps a plain object's own attributes while its instance dict's
    # version tag stands (walk_own_level), and walks only the values below them that are parts.
    # Its fingerprint must still change exactly when what the encoder shows does, whichever way
    # the dict changed, and the kept attributes must be used where nothing changed.
    tracer, _, encoder = _encoders(CaptureLimits())
    inner = Plain(v=1)
    outer = Plain(n=1, label="x", inner=inner, items=[1])
    holder = [outer, Plain(n=9)]
    changes: list[Callable[[], object]] = [
        lambda: None,
        lambda: setattr(outer, "n", 2),
        lambda: setattr(inner, "v", 2),  # below: outer's own attributes did not change
        lambda: outer.items.append(2),
        lambda: outer.__dict__.update(n=3),
        lambda: delattr(outer, "label"),
        lambda: setattr(outer, "label", "x"),
        lambda: setattr(outer, "n", 3),  # the value it has: nothing changes
        lambda: setattr(outer, "password", "hunter2"),  # hidden: its class is shown
        lambda: setattr(outer, "password", 7),
        lambda: outer.__dict__.pop("password"),
        lambda: setattr(outer, "__dict__", dict(outer.__dict__)),  # another dict, same content
        lambda: outer.__dict__.clear(),  # noqa: PLW0108 - the dict of then, not of now
        lambda: outer.__dict__.update(n=1.5, inner=inner),
        lambda: setattr(outer, "__class__", Other),
    ]
    before = tracer.counters()["own_levels_reused"]
    shown, printed = None, None
    for change in changes:
        change()
        for value in (outer, holder):
            assert tracer._c_encode(value) == _python(encoder, value)
        now = repr(_python(encoder, holder))
        fingerprint = tracer._c_fingerprint(holder)
        assert fingerprint != 0
        if shown is not None:
            assert (fingerprint == shown) == (now == printed), change
        shown, printed = fingerprint, now
    reused = tracer.counters()["own_levels_reused"] - before
    assert (reused > 0) == (sys.version_info < (3, 13))


def test_a_part_with_a_back_reference_above_it_is_not_shared() -> None:
    tracer, _, encoder = _encoders(CaptureLimits())
    a = Plain(name="a")
    b = Plain(back=a, data=[1])
    a.child = b
    c = Plain(child=b)  # b's venc under c has no back reference: a different encoding
    for value in (a, c, a, c):
        assert tracer._c_encode(value) == _python(encoder, value)


def _mutate(rng: random.Random, pool: list[Any]) -> None:
    target = rng.choice(pool)
    if isinstance(target, list):
        if target and rng.random() < 0.4:
            target.pop(rng.randrange(len(target)))
        else:
            target.append(rng.choice([1, "x", None, rng.choice(pool)]))
    elif isinstance(target, deque):
        if target and rng.random() < 0.4:
            target.popleft()
        else:
            target.appendleft(rng.choice([4, "v", rng.choice(pool)]))
    elif isinstance(target, set):
        if target and rng.random() < 0.4:
            target.discard(next(iter(target)))
        else:
            target.add(rng.choice([5, "w", ("password", 1), frozenset({6})]))
    elif isinstance(target, dict):
        if target and rng.random() < 0.4:
            del target[next(iter(target))]
        else:
            target[rng.choice(["k0", "new", "password", 7])] = rng.choice(
                [2, [3], rng.choice(pool)]
            )
    else:
        setattr(
            target, rng.choice(["a0", "data", "token", "z"]), rng.choice([3, "y", rng.choice(pool)])
        )


@pytest.mark.parametrize("seed", range(12))
def test_values_changed_between_encodings_encode_alike(seed: int) -> None:
    # The cached parts must follow every change: mutate a random container or object of a pool
    # of values, encode a random one, compare; again and again. Half the seeds use an identity
    # map small enough to rotate its generations many times (forgotten entries, new serials).
    rng = random.Random(1000 + seed)
    tracer, c_side, encoder = _encoders(
        CaptureLimits(max_nodes=rng.choice([40, 1024])), identity_limit=16 if seed % 2 else 1 << 15
    )
    pool: list[Any] = []
    roots = [random_value(rng, 0, pool) for _ in range(6)]
    pool = [x for x in pool if isinstance(x, (list, dict, deque, Plain, Other))] or [[]]
    for _ in range(150):
        _mutate(rng, pool)
        value = rng.choice(roots)
        c_venc = tracer._c_encode(value)
        py_venc = _python(encoder, value)
        if c_venc is NotImplemented:
            _python(c_side, value)
            continue
        assert c_venc == py_venc


@pytest.mark.parametrize(
    "limits",
    [
        CaptureLimits(),
        CaptureLimits(max_depth=1),
        CaptureLimits(max_items=2, max_attrs=2),
        CaptureLimits(max_nodes=5),
        CaptureLimits(max_string=3),
    ],
    ids=repr,
)
def test_the_c_records_expand_to_the_c_encoders_tree(limits: CaptureLimits) -> None:
    # A recording of object records (REPLAY_VALUE_MODEL=records) takes a changed name's
    # records from the tree the C core just made (fp_records): expanded, they must give that
    # tree back, whatever the limits cut. What the C side leaves to Python is allowed, but
    # the plain containers and objects are its own.
    mine = 0
    for name, value in [*CASES.items(), *((f"random{i}", v) for i, v in enumerate(_randoms()))]:
        tracer, _, _ = _encoders(limits)
        got = tracer._c_records(value)
        if got is NotImplemented:
            continue
        tree, entry, records = got
        assert expand(entry, records, limits) == tree, name
        mine += 1
    assert mine > 100


def _randoms() -> list[Any]:
    rng = random.Random(7)
    return [random_value(rng, 0, []) for _ in range(300)]


def test_the_c_records_of_plain_containers_are_made_in_c() -> None:
    tracer, _, _ = _encoders(CaptureLimits())
    shared = [1.5, 2.5]
    waiting = deque([shared, "job"], maxlen=5)  # asyncio.Queue holds its items in one
    value = {"a": [shared, (shared, "x")], "b": Plain(), "c": {1, 2}, "d": waiting}
    tree, entry, records = tracer._c_records(value)
    assert entry == (V_OREF, tree[1])
    assert {r[0] for r in records.values()} == {R_SEQ, R_MAP, R_OBJ}
    assert ("collections.deque", 2) in {(r[1], r[2]) for r in records.values()}
    assert expand(entry, records, CaptureLimits()) == tree


def test_a_slotted_objects_record_is_kept_while_its_slots_hold_the_same_objects() -> None:
    # fp_records keeps a record while its object's own level is unchanged (FpRecordMemo): for a
    # slotted object that is the object in each slot, set or unset; for a namedtuple its items.
    tracer, _, _ = _encoders(CaptureLimits())
    limits = CaptureLimits()
    pair, inner = SlottedPair(), [1]
    pair.b = inner
    named = Point3(inner, 2, 3)
    kept = {}
    for value in (pair, named):
        tree, entry, first = tracer._c_records(value)
        assert expand(entry, first, limits) == tree
        assert own_record(tracer, value) is first[entry[1]]  # kept, not made again
        kept[id(value)] = first[entry[1]]
    inner.append(2)  # below their own levels: only the record of `inner` changes
    assert own_record(tracer, pair) is kept[id(pair)]
    assert own_record(tracer, named) is kept[id(named)]
    for change in (
        lambda: setattr(pair, "b", [1, 2]),  # another object, equal to the one it replaces
        lambda: setattr(pair, "password", "x"),
        lambda: delattr(pair, "b"),
    ):
        before = own_record(tracer, pair)
        change()
        tree, entry, records = tracer._c_records(pair)
        assert records[entry[1]] is not before and records[entry[1]] != before
        assert expand(entry, records, limits) == tree


def own_record(tracer: Any, value: Any) -> Any:
    """The record the C side makes of `value` itself now."""
    _, entry, records = tracer._c_records(value)
    return records[entry[1]]


def test_fresh_iterators_coroutines_and_a_function_are_encoded_without_python() -> None:
    # GIVEN a handler function, as a request loop binds it, and the iterators and coroutines a
    # program makes as it runs
    tracer, _, encoder = _encoders(CaptureLimits())

    async def handler() -> None:
        pass

    asked = 0
    for round in range(20):
        if round == 1:  # the classes are known, the function has its serial
            asked = tracer.counters()["python_calls"]
        coro = handler()
        value = [handler, iter([1, 2]), coro, iter(range(3))]
        # WHEN each is encoded fresh (new objects, or pushed out of the value cache)
        assert tracer._c_encode(value) == _python(encoder, value)
        coro.close()
    # THEN their texts were made in C (`object_text`), and their serials (`weak_insert` for the
    # coroutines, which take weak references): until session 27, json_requests.py asked the
    # Python encoder for 4,000 of them per 2,000 requests, and here two texts and a serial per
    # round went to Python
    assert tracer.counters()["python_calls"] - asked == 0
