"""The rows the recorder's writer hands to the store: its fast `IndexBuilder.scan` (C-speed
selection of the events that matter, or the whole loop in C: replay/recorder/_scan.c) gives
exactly what a plain loop over every event gives, the calls that begin and end in a C core's
batch packed as records (`codec.CallRecords`) or not."""

from __future__ import annotations

import copy
import random
from collections.abc import Callable, Sequence
from typing import Any

import pytest
from replay.storage.codec import CALL_FIELDS, CallRecords

from replay.events import (
    CALL,
    EXCEPTION_KINDS,
    EXTERNAL,
    GAP,
    HANDLED,
    LINE,
    RAISE,
    RESUME,
    RETURN,
    THROW,
    UNWIND,
    YIELD,
)
from replay.recorder import writer
from replay.recorder.writer import IndexBuilder

Rows = list[dict[str, Any]]
_NAMES = {RAISE: "raise", HANDLED: "handled", UNWIND: "unwind", THROW: "throw"}


class PlainIndexBuilder:
    """The reference: every event looked at in order, as the writer's rules say."""

    def __init__(self) -> None:
        self.open_calls: dict[int, dict[str, Any]] = {}
        self.fresh: set[int] = set()
        self.depths: dict[int, int] = {}

    def scan(self, thread_id: int, events: list[tuple]) -> tuple[Rows, Rows, Rows]:
        touched: dict[int, dict[str, Any]] = {}
        ended: Rows = []
        exceptions: Rows = []
        for kind, step, _ts, call_id, line, payload, _changes, _deleted in events:
            if kind == CALL:
                code_id, parent = payload
                depth = self.depths.get(parent, -1) + 1
                self.depths[call_id] = depth
                row = {
                    "call_id": call_id,
                    "parent_id": parent or None,
                    "function_id": code_id,
                    "thread_id": thread_id,
                    "depth": depth,
                    "first_step": step,
                    "last_step": None,
                    "exception": False,
                    "generator": False,
                }
                self.open_calls[call_id] = touched[call_id] = row
                self.fresh.add(call_id)
                continue
            row = self.open_calls.get(call_id)
            if row is not None:
                if kind in (YIELD, RESUME, THROW):
                    row["generator"] = True
                    row["last_step"] = step
                    touched[call_id] = row
                elif kind in (RETURN, UNWIND):
                    row["last_step"] = step
                    row["exception"] = kind == UNWIND
                    if call_id in self.fresh:
                        touched.pop(call_id, None)
                        ended.append(row)
                    else:
                        touched[call_id] = row
                    del self.open_calls[call_id]
                    self.depths.pop(call_id, None)
            if kind in EXCEPTION_KINDS:
                type_name, message, _venc = payload
                exceptions.append(
                    {
                        "step": step,
                        "thread_id": thread_id,
                        "call_id": call_id,
                        "kind": _NAMES[kind],
                        "type": type_name,
                        "message": message,
                        "line": line,
                    }
                )
        return list(touched.values()), ended, exceptions


def program(seed: int, steps: int) -> list[tuple[int, tuple]]:
    """(thread_id, event) of a random program of 2 threads with generators and exceptions."""
    rng = random.Random(seed)
    stacks: dict[int, list[int]] = {1: [], 2: []}
    suspended: list[tuple[int, int]] = []  # (thread, call) of generators that yielded
    next_call = 1
    out = []
    exc = ("builtins.ValueError", "bad", (4, "ValueError"))
    for step in range(1, steps + 1):
        thread = rng.choice((1, 2))
        stack = stacks[thread]
        here = stack[-1] if stack else 0
        roll = rng.random()
        if not stack or roll < 0.15:
            event = (CALL, step, step, next_call, 1, (rng.randint(1, 5), here), None, None)
            stack.append(next_call)
            next_call += 1
        elif roll < 0.25 and len(stack) > 1:
            event = (rng.choice((RETURN, UNWIND)), step, step, stack.pop(), 2, exc, None, None)
        elif roll < 0.33 and len(stack) > 1:
            event = (YIELD, step, step, stack.pop(), 3, 7, None, None)
            suspended.append((thread, event[3]))
        elif roll < 0.41 and suspended and suspended[0][0] == thread:
            _, call = suspended.pop(0)
            kind = rng.choice((RESUME, RESUME, THROW))
            event = (kind, step, step, call, 4, exc if kind == THROW else None, None, None)
            stack.append(call)
        elif roll < 0.45:
            event = (rng.choice((RAISE, HANDLED)), step, step, here, 5, exc, None, None)
        elif roll < 0.47:
            event = (GAP, step, step, here, 0, ("backlog", "dropped"), None, None)
        else:
            kind = rng.choice((LINE, LINE, EXTERNAL))
            event = (kind, step, step, here, 6, None, (("x", step),), None)
        out.append((thread, event))
    return out


def as_dict(row: Sequence[Any]) -> dict[str, Any]:
    """A call row of `IndexBuilder.scan` (in `codec.CALL_FIELDS` order) as the reference's dict."""
    return dict(zip(CALL_FIELDS, row, strict=True))


def by_id(rows: Rows) -> Rows:
    return sorted(rows, key=lambda row: row["call_id"])


class ScanLoop:
    """`IndexBuilder.scan` of a batch made by `make`, with a records bytearray or not; its
    ended calls are the rows it gives and its records as rows, by call id (their order does not
    matter to the store, which cuts and sorts them into blocks)."""

    def __init__(self, make: Callable[[list[tuple]], Any], records: bool) -> None:
        self.make = make
        self.records = records
        self.packed = 0
        """Calls given as records so far."""

    def __call__(self, index: IndexBuilder, thread: int, batch: list[tuple]) -> tuple:
        packed = bytearray() if self.records else None
        touched, ended, raised = index.scan(thread, self.make(batch), packed)
        assert all(type(call) is tuple for call in ended)  # add_batch's fast path
        if packed is not None:
            self.packed += len(CallRecords(packed))
            ended = [*CallRecords(packed).rows(), *ended]
        return touched, sorted(ended), raised


@pytest.fixture(params=["c", "c-buffer", "c-buffer-records", "python", "python-buffer"])
def scan_loop(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> ScanLoop:
    """Each test below runs with the writer's C scan loop and with its Python loop, on a list
    of event tuples (the Python cores) and on a C core's event buffer (the C loop reads its
    records in place; the Python loop the tuples of the kinds it needs), and the C loop on a
    buffer with a records bytearray, as the writer gives it."""
    if request.param.startswith("python"):
        monkeypatch.setattr(writer, "_scan", None)
    elif writer._scan is None:
        pytest.skip("replay/recorder/_scan.c is not built")
    if "buffer" not in request.param:
        return ScanLoop(list, records=False)
    from replay.recorder.csysmon import _ctracer  # noqa: PLC0415 - only where it is built

    if _ctracer is None:
        pytest.skip("the C core is not built here")
    return ScanLoop(_ctracer.EventBuffer, records=request.param.endswith("records"))


@pytest.mark.parametrize("seed", range(12))
def test_scan_gives_what_a_plain_loop_gives(seed: int, scan_loop: ScanLoop) -> None:
    # GIVEN a random program's events, cut into batches per thread and writes
    rng = random.Random(seed)
    events = program(seed, 3000)
    fast, plain = IndexBuilder(), PlainIndexBuilder()
    position = 0
    while position < len(events):
        fast.begin_write()
        plain.fresh.clear()
        for _ in range(rng.randint(1, 3)):  # batches of one write
            size = rng.randint(1, 300)
            part = events[position : position + size]
            position += size
            for thread in (1, 2):
                batch = [event for tid, event in part if tid == thread]
                # WHEN both scan it THEN they report the same rows
                touched, ended, raised = copy.deepcopy(scan_loop(fast, thread, batch))
                want = copy.deepcopy(plain.scan(thread, batch))
                assert by_id(list(map(as_dict, touched))) == by_id(want[0])
                assert list(map(as_dict, ended)) == by_id(want[1])
                assert raised == want[2]
    # AND they end in the same state
    assert {call_id: as_dict(row) for call_id, row in fast.open_calls.items()} == plain.open_calls
    assert {call_id: row[4] for call_id, row in fast.open_calls.items()} == plain.depths
    if scan_loop.records:  # most calls were records: the writer's path, tested
        assert scan_loop.packed > 100


def test_scan_of_generators_throws_and_unwinds_in_one_write(scan_loop: ScanLoop) -> None:
    # GIVEN a write of two batches of one thread: a generator that yields and returns in the
    # first, a call thrown into and returned, and an unwind; one call runs on
    exc = ("builtins.ValueError", "bad", (4, "ValueError"))
    first = [
        (CALL, 1, 1, 1, 1, (1, 0), None, None),
        (CALL, 2, 2, 2, 1, (2, 1), None, None),  # a generator
        (YIELD, 3, 3, 2, 2, 7, None, None),
        (RESUME, 4, 4, 2, 2, None, None, None),
        (RETURN, 5, 5, 2, 2, None, None, None),
        (CALL, 6, 6, 3, 1, (3, 1), None, None),
        (THROW, 7, 7, 3, 1, exc, None, None),  # a call of this write, changed: runs on
    ]
    second = [
        (RAISE, 8, 8, 3, 2, exc, None, None),
        (UNWIND, 9, 9, 3, 2, exc, None, None),
        (CALL, 10, 10, 4, 1, (2, 1), None, None),
        (LINE, 11, 11, 4, 3, None, None, None),
    ]
    fast, plain = IndexBuilder(), PlainIndexBuilder()
    fast.begin_write()
    ended_rows = []
    for batch, touched_ids, ended_ids in ((first, [1, 3], [2]), (second, [4], [3])):
        # WHEN both scan it THEN they report the same rows
        touched, ended, raised = copy.deepcopy(scan_loop(fast, 7, batch))
        want = plain.scan(7, batch)
        assert by_id(list(map(as_dict, touched))) == by_id(want[0])
        assert list(map(as_dict, ended)) == by_id(want[1])
        assert raised == want[2]
        assert sorted(row[0] for row in touched) == touched_ids
        assert [row[0] for row in ended] == ended_ids
        ended_rows += ended
    # AND the generator's row says so, the unwound call's too, and depths follow the parents
    assert ended_rows == [(2, 1, 2, 7, 1, 2, 5, False, True), (3, 1, 3, 7, 1, 6, 9, True, True)]
    assert fast.open_calls[4][4] == 1 and fast.open_calls[1][4] == 0
    assert fast.last_unwind == {7: (9, 3, 2)}


@pytest.mark.parametrize(
    "odd",
    [
        [(CALL, 1, 1, 1, 1, (1, 0), None, None), [LINE, 2, 2, 1, 2, None, None, None]],
        [(CALL, 1, 1, 1, 1, (1, 0), None, None), (LINE, 2, 2, 1, 2, None, None)],
        [(CALL, 1, 1, 1, 1, (1, 0), None, None), (True, 2, 2, 1, 2, None, None, None)],
        [(CALL, 1, 1, 1, 1, (1, 0), None, None), (LINE, 2, 2, "1", 2, None, None, None)],
        [(CALL, 1, 1, 1, 1, (1, 0), None, None), (300, 2, 2, 1, 2, None, None, None)],
        [(CALL, 1, 1, 1, 1, (1, 0), None, None), (CALL, 2, 2, 2, 1, [1, 1], None, None)],
        [(CALL, 1, 1, 1, 1, (1, 0), None, None), (CALL, 2, 2, 2, 1, (1, 1.0), None, None)],
    ],
    ids=["list-event", "7-fields", "bool-kind", "str-call", "kind-300", "list-payload", "float"],
)
def test_the_c_scan_loop_leaves_odd_batches_to_python(odd: list[Any]) -> None:
    # GIVEN a batch with one event the C loop does not read (a recorder bug, or a future kind)
    if writer._scan is None:
        pytest.skip("replay/recorder/_scan.c is not built")
    index = IndexBuilder()
    index.begin_write()
    args = (odd, 1, index.open_calls, index.fresh, {}, [])
    # WHEN the C loop is given it THEN it declines and changes nothing
    assert writer._scan.scan_calls(*args) is None
    assert index.open_calls == {} and index.fresh == set() and args[4:] == ({}, [])


@pytest.mark.parametrize(
    "payload", [[1, 1], (1, 1.0), (1,), None], ids=["list", "float", "short", "none"]
)
def test_the_c_scan_loop_leaves_a_buffer_with_an_odd_call_to_python(payload: Any) -> None:
    # GIVEN a C core's event buffer with a CALL whose payload the C loop does not read
    from replay.recorder.csysmon import _ctracer  # noqa: PLC0415 - only where it is built

    if writer._scan is None or _ctracer is None:
        pytest.skip("replay/recorder/_scan.c or the C core is not built")
    events = [(CALL, 1, 1, 1, 1, (1, 0), None, None), (CALL, 2, 2, 2, 1, payload, None, None)]
    index = IndexBuilder()
    index.begin_write()
    args = (_ctracer.EventBuffer(events), 1, index.open_calls, index.fresh, {}, [])
    # WHEN the C loop is given it THEN it declines and changes nothing
    assert writer._scan.scan_calls(*args) is None
    assert index.open_calls == {} and index.fresh == set() and args[4:] == ({}, [])
