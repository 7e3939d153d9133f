"""Calls and exceptions kept in compressed blocks: every read answers as if they were rows."""

from __future__ import annotations

import random
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from replay.storage import Store, StoreError, schema
from replay.storage.codec import CALL_FIELDS, CALL_RECORD, CallRecords, decode_calls
from sqlalchemy import Connection
from storage_testkit import recording_meta


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store.open(tmp_path / "s.db", mode="w") as opened:
        yield opened


def simulate(
    store: Store,
    rid: int,
    *,
    threads: int = 1,
    steps: int = 6000,
    batch: int = 500,
    form: str = "dicts",
) -> dict[int, dict[str, Any]]:
    """Record a random call tree the way the writer does: calls that start and end within a
    batch go to `ended_calls` (as dicts, as tuples in `CALL_FIELDS` order, or packed as
    `CallRecords`), the others are written as rows when they start and when they end. Returns
    every call's final row, by call id."""
    rng = random.Random(threads * 1000 + steps)
    final: dict[int, dict[str, Any]] = {}
    stacks: dict[int, list[int]] = {t: [] for t in range(1, threads + 1)}
    next_call = 1
    fresh: set[int] = set()
    touched: dict[int, dict[str, Any]] = {}
    ended: list[dict[str, Any]] = []
    for step in range(1, steps + 1):
        thread = rng.randint(1, threads)
        stack = stacks[thread]
        if not stack or (rng.random() < 0.45 and len(stack) < 30):
            row = {
                "call_id": next_call,
                "parent_id": stack[-1] if stack else None,
                "function_id": rng.randint(1, 9),
                "thread_id": thread,
                "depth": len(stack),
                "first_step": step,
                "last_step": None,
                "exception": False,
                "generator": rng.random() < 0.1,
            }
            final[next_call] = touched[next_call] = row
            fresh.add(next_call)
            stack.append(next_call)
            next_call += 1
        elif len(stack) > 1:
            call_id = stack.pop()
            row = final[call_id]
            row["last_step"] = step
            row["exception"] = rng.random() < 0.05
            if call_id in fresh:
                touched.pop(call_id, None)
                ended.append(row)
            else:
                touched[call_id] = row
        if step % batch == 0 or step == steps:
            given: Any = list(ended)
            if form != "dicts":
                given = [tuple(row[name] for name in CALL_FIELDS) for row in ended]
            if form == "records":
                given = packed(given)
            store.add_batch(rid, calls=[dict(r) for r in touched.values()], ended_calls=given)
            fresh.clear()
            touched.clear()
            ended.clear()
    return final


def packed(rows: list[tuple]) -> CallRecords:
    """Ended-call tuples as the recorder's C scan hands them: CALL_RECORD records."""
    return CallRecords(
        b"".join(
            CALL_RECORD.pack(call, parent or 0, function, thread, depth, first, last, exc, gen)
            for call, parent, function, thread, depth, first, last, exc, gen in rows
        )
    )


def full(rid: int, row: dict[str, Any]) -> dict[str, Any]:
    return {"recording_id": rid, **row}


@pytest.mark.parametrize("threads", [1, 3])
def test_every_read_answers_as_from_rows(store: Store, threads: int) -> None:
    # GIVEN a recording whose calls were written like the recorder writes them
    rid = store.create_recording(recording_meta())
    final = simulate(store, rid, threads=threads)
    expected = sorted(final.values(), key=lambda r: (r["first_step"], r["call_id"]))
    # THEN most of the calls are in blocks, and the reads see all of them
    with sqlite3.connect(store.path) as conn:
        rows = conn.execute("SELECT count(*) FROM calls").fetchone()[0]
        blocks = conn.execute("SELECT count(*) FROM call_blocks").fetchone()[0]
    assert blocks and rows < len(final) / 3
    assert store.count_calls(rid) == len(final)
    assert store.calls(rid) == [full(rid, r) for r in expected]
    for limit in (0, 1, 7, 500, len(final) + 5):
        assert store.calls(rid, limit=limit) == [full(rid, r) for r in expected[:limit]]
    for call_id, row in final.items():
        assert store.call(rid, call_id) == full(rid, row)
    assert store.call(rid, len(final) + 1) is None
    # AND the filters keep exactly the matching calls, in order
    assert (
        store.calls(rid, thread_id=2, limit=50)
        == [full(rid, r) for r in expected if r["thread_id"] == 2][:50]
    )
    assert store.calls(rid, function_id=3) == [
        full(rid, r) for r in expected if r["function_id"] == 3
    ]
    assert store.calls(rid, parent_id=None) == [
        full(rid, r) for r in expected if r["parent_id"] is None
    ]
    some = expected[len(expected) // 2]["call_id"]
    assert store.calls(rid, parent_id=some) == [
        full(rid, r) for r in expected if r["parent_id"] == some
    ]


@pytest.mark.parametrize("threads", [1, 3])
def test_call_at_finds_the_innermost_call_in_blocks_and_rows(store: Store, threads: int) -> None:
    rid = store.create_recording(recording_meta())
    final = simulate(store, rid, threads=threads, steps=2000, batch=300)
    for step in range(1, 2001, 7):
        for thread in range(1, threads + 1):
            holding = [
                r
                for r in final.values()
                if r["thread_id"] == thread
                and r["first_step"] <= step
                and (r["last_step"] is None or r["last_step"] >= step)
            ]
            best = max(holding, key=lambda r: r["first_step"], default=None)
            found = store.call_at(rid, thread, step)
            assert (found and found["call_id"]) == (best and best["call_id"]), (step, thread)


def test_blocks_are_cut_to_the_span_of_call_ids(store: Store) -> None:
    # GIVEN ended calls of one batch whose ids are spread over five spans
    rid = store.create_recording(recording_meta())
    span = schema.CALL_BLOCK_SPAN
    ids = [1, 2, span, span + 1, 3 * span + 5, 5 * span]
    rows = [
        {
            "call_id": call_id,
            "parent_id": None,
            "function_id": 1,
            "thread_id": 1,
            "depth": 0,
            "first_step": n * 10 + 1,
            "last_step": n * 10 + 5,
        }
        for n, call_id in enumerate(ids)
    ]
    store.add_batch(rid, ended_calls=rows)
    # THEN no block spans more than CALL_BLOCK_SPAN ids, and each call is found by its id
    with sqlite3.connect(store.path) as conn:
        spans = conn.execute("SELECT first_call, last_call FROM call_blocks").fetchall()
    assert len(spans) == 4
    assert all(last - first < span for first, last in spans)
    for call_id in ids:
        assert store.call(rid, call_id)["call_id"] == call_id
    for missing in (3, span - 1, span + 2, 2 * span, 5 * span + 1):
        assert store.call(rid, missing) is None
    assert [c["call_id"] for c in store.calls(rid)] == ids


def test_blocks_hold_at_most_call_block_calls(store: Store) -> None:
    # GIVEN 2.5 blocks' worth of ended calls in one batch
    rid = store.create_recording(recording_meta())
    count = schema.CALL_BLOCK_CALLS * 5 // 2
    rows = [
        {
            "call_id": n,
            "function_id": 1,
            "thread_id": 1,
            "depth": 1,
            "first_step": 2 * n,
            "last_step": 2 * n + 1,
        }
        for n in range(1, count + 1)
    ]
    store.add_batch(rid, ended_calls=rows)
    # THEN they fill three blocks, and each call is found
    with sqlite3.connect(store.path) as conn:
        sizes = [n for (n,) in conn.execute("SELECT n_calls FROM call_blocks ORDER BY id")]
    assert sizes == [schema.CALL_BLOCK_CALLS] * 2 + [count - 2 * schema.CALL_BLOCK_CALLS]
    assert [store.call(rid, n)["first_step"] for n in (1, 1024, 1025, count)] == [
        2,
        2048,
        2050,
        2 * count,
    ]
    assert store.count_calls(rid) == count


def test_ended_calls_need_their_last_step(store: Store) -> None:
    rid = store.create_recording(recording_meta())
    row = {"call_id": 1, "function_id": 1, "thread_id": 1, "depth": 0, "first_step": 1}
    with pytest.raises(ValueError, match="last_step"):
        store.add_batch(rid, ended_calls=[row], chunks=[])
    with pytest.raises(TypeError, match="no column"):
        store.add_batch(rid, ended_calls=[{**row, "last_step": 3, "colour": 1}])
    assert store.count_calls(rid) == 0


def blocks_of(path: Path) -> list[tuple]:
    """Every call_blocks row of a store file, its blob decoded, in the order written."""
    with sqlite3.connect(path) as conn:
        rows = conn.execute("SELECT * FROM call_blocks ORDER BY id").fetchall()
    return [(*row[1:-1], decode_calls(row[-1])) for row in rows]


@pytest.mark.parametrize("threads", [1, 3])
def test_ended_calls_as_tuples_or_records_store_what_dicts_store(
    tmp_path: Path, threads: int
) -> None:
    # GIVEN the same recording written three times, with its ended calls as dicts, as tuples
    # in CALL_FIELDS order and packed as records (the writer's fast paths)
    stores = {}
    for form in ("dicts", "tuples", "records"):
        with Store.open(tmp_path / f"{form}.db", mode="w") as store:
            rid = store.create_recording(recording_meta())
            final = simulate(store, rid, threads=threads, form=form)
            # THEN the files hold the same blocks and answer the same calls
            stores[form] = (blocks_of(store.path), store.calls(rid), store.call(rid, 7))
    assert stores["dicts"][0]
    assert stores["tuples"] == stores["dicts"]
    assert stores["records"] == stores["dicts"]
    assert len(stores["tuples"][1]) == len(final)


@pytest.mark.parametrize(
    "odd",
    [
        (5, 5, 1, 1, 0, 10, 12, False, False),  # a parent equal to its call
        (5, 4, 1, 1, 0, 10, 9, False, False),  # a last step before the first
        (5, 4, 1, 1, 0, -(2**63), 2**63 - 1, True, True),  # a span past 64 bits
    ],
    ids=["parent-is-call", "ends-before-start", "span-past-64-bits"],
)
def test_records_that_do_not_fit_columns_store_what_tuples_store(
    tmp_path: Path, odd: tuple
) -> None:
    # GIVEN a block of calls with one that its columns cannot hold, given as tuples and as
    # records: the block keeps its rows as they are, either way
    rows = [(1, None, 1, 1, 0, 1, 20, False, False), odd, (9, 1, 2, 1, 1, 13, 14, False, True)]
    found = {}
    for form in ("tuples", "records"):
        with Store.open(tmp_path / f"{form}.db", mode="w") as store:
            rid = store.create_recording(recording_meta())
            store.add_batch(rid, ended_calls=packed(rows) if form == "records" else list(rows))
            found[form] = (blocks_of(store.path), store.calls(rid))
    assert found["records"] == found["tuples"]
    assert len(found["tuples"][1]) == 3


def test_call_records_are_whole() -> None:
    assert len(packed([(1, None, 1, 1, 0, 1, 2, False, False)] * 3)) == 3
    with pytest.raises(ValueError, match="whole 64-byte records"):
        CallRecords(b"x" * 65)


def test_ended_calls_may_mix_tuples_and_dicts(store: Store) -> None:
    rid = store.create_recording(recording_meta())
    as_dict = {"call_id": 2, "function_id": 1, "thread_id": 1, "depth": 1, "first_step": 2}
    store.add_batch(
        rid,
        ended_calls=[
            (1, None, 1, 1, 0, 1, 9, False, False),
            {**as_dict, "parent_id": 1, "last_step": 3},
            (3, 1, 2, 1, 1, 4, 5, 1, 0),  # int flags: stored as bools, as the dict path does
        ],
    )
    calls = {row["call_id"]: row for row in store.calls(rid)}
    assert calls[2]["exception"] is False and calls[2]["last_step"] == 3
    assert (calls[3]["exception"], calls[3]["generator"]) == (True, False)
    assert calls[1]["parent_id"] is None and calls[3]["parent_id"] == 1


@pytest.mark.parametrize(
    ("row", "error"),
    [
        ((1, None, 1, 1, 0, 1, None, False, False), "last_step"),
        ((1, None, 1, 1, 0, 1, 5, False), "CALL_FIELDS"),
    ],
)
def test_ended_call_tuples_are_checked(store: Store, row: tuple, error: str) -> None:
    rid = store.create_recording(recording_meta())
    fine = (2, None, 1, 1, 0, 1, 5, False, False)
    for rows in ([row], [fine, row]):
        with pytest.raises(ValueError, match=error):
            store.add_batch(rid, ended_calls=rows)
    assert store.count_calls(rid) == 0


def test_exceptions_of_many_batches_read_back_in_step_order(store: Store) -> None:
    rid = store.create_recording(recording_meta())
    kinds = ["raise", "handled", "unwind", "throw"]
    written = []
    for batch in range(5):
        rows = [
            {
                "step": 1000 - batch * 100 - n,  # batches and rows in any order
                "thread_id": 1 + n % 2,
                "call_id": n,
                "kind": kinds[n % 4],
                "type": "builtins.ValueError",
                "message": None if n % 3 else f"bad {n}",
                "line": None if n == 5 else n,
            }
            for n in range(10)
        ]
        written += rows
        store.add_batch(rid, exceptions=rows)
    other = store.create_recording(recording_meta())
    store.add_batch(
        other,
        exceptions=[{"step": 1, "thread_id": 1, "call_id": 1, **{"kind": "raise", "type": "E"}}],
    )
    expected = [{"recording_id": rid, **row} for row in sorted(written, key=lambda r: r["step"])]
    assert store.exceptions(rid) == expected
    assert store.exceptions(rid, kinds={"unwind"}) == [e for e in expected if e["kind"] == "unwind"]
    assert store.exceptions(rid, kinds=[]) == []
    assert [e["step"] for e in store.exceptions(other)] == [1]


def test_bad_exception_rows_are_refused(store: Store) -> None:
    rid = store.create_recording(recording_meta())
    with pytest.raises(ValueError, match="kind"):
        store.add_batch(rid, exceptions=[{"step": 1, "thread_id": 1, "call_id": 1, "type": "E"}])
    with pytest.raises(TypeError, match="no column"):
        store.add_batch(
            rid,
            exceptions=[
                {"step": 1, "thread_id": 1, "call_id": 1, "kind": "raise", "type": "E", "colour": 2}
            ],
        )
    assert store.exceptions(rid) == []


def test_a_damaged_call_block_is_reported_with_file_and_block(store: Store) -> None:
    rid = store.create_recording(recording_meta())
    row = {"call_id": 1, "function_id": 1, "thread_id": 1, "depth": 0, "first_step": 1}
    store.add_batch(rid, ended_calls=[{**row, "last_step": 3}])
    with sqlite3.connect(store.path) as conn:
        conn.execute("UPDATE call_blocks SET data = x'28b52ffd00'")
        (block_id,) = conn.execute("SELECT id FROM call_blocks").fetchone()
    with pytest.raises(StoreError, match=rf"{store.path}: call block {block_id}: .*corrupted"):
        store.call(rid, 1)
    with pytest.raises(StoreError, match="corrupted"):
        store.calls(rid)


def test_a_lookup_reads_a_few_blocks_not_all(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN 200 batches of 100 ended calls each
    rid = store.create_recording(recording_meta())
    for b in range(200):
        store.add_batch(
            rid,
            ended_calls=[
                {
                    "call_id": b * 100 + n + 1,
                    "function_id": 1,
                    "thread_id": 1,
                    "depth": 1,
                    "first_step": (b * 100 + n) * 3 + 1,
                    "last_step": (b * 100 + n) * 3 + 2,
                }
                for n in range(100)
            ],
        )
    decoded = []
    real = Store._block

    def counting(self: Store, conn: Connection, block_id: int, *, cache: bool = True) -> Any:
        decoded.append(block_id)
        return real(self, conn, block_id, cache=cache)

    monkeypatch.setattr(Store, "_block", counting)
    # WHEN calls are looked up one by one, or the first ones listed
    assert store.call(rid, 12_345)["first_step"] == 12_344 * 3 + 1
    assert len(decoded) == 1
    assert len(store.calls(rid, limit=150)) == 150
    assert len(decoded) <= 1 + 3


def test_a_reader_finds_calls_written_after_it_looked(tmp_path: Path) -> None:
    # GIVEN a reader that has looked calls up while the recording is being written
    path = tmp_path / "s.db"

    def ended(call_id: int) -> dict[str, Any]:
        first = call_id * 10
        return {
            "call_id": call_id,
            "function_id": 1,
            "thread_id": 1,
            "depth": 1,
            "first_step": first,
            "last_step": first + 5,
        }

    with Store.open(path, mode="w") as writer, Store.open(path) as reader:
        rid = writer.create_recording(recording_meta())
        writer.add_batch(rid, ended_calls=[ended(1)])
        assert reader.call(rid, 1)["first_step"] == 10
        assert reader.call(rid, 2) is None
        # WHEN more blocks are written THEN the reader finds their calls too
        writer.add_batch(rid, ended_calls=[ended(2), ended(3)])
        assert reader.call(rid, 2)["first_step"] == 20
        assert reader.call(rid, 3)["last_step"] == 35
        assert reader.call(rid, 4) is None
        assert reader.count_calls(rid) == 3
