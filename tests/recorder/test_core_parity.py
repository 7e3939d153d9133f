"""The C cores record exactly what the pure-Python cores record.

Every fidelity program (tests/fidelity/programs) and the corner cases of parity_programs/ run
twice in real subprocesses, with REPLAY_CORE=python and REPLAY_CORE=c, on each backend this
Python has (sys.monitoring: c-sysmon against sysmon, 3.12+; sys.settrace: c-settrace against
settrace, every version), and the raw event streams
read back from the stores must be identical except for `ts` (kinds, steps, call ids, lines,
payloads, changes, deleted, object ids: everything). Values that differ from run to run by nature
(thread idents, trap 4) are left out of both sides.

A program that runs several threads is compared thread by thread, and only for what does not
depend on the scheduler: the control flow (kinds, lines, calls renumbered in order of
appearance) and the atom values each thread binds. How the threads interleave, and so the
process-wide counters and what one thread sees of the objects another one is changing, is up
to the scheduler, not the core.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from replay.events import (
    CALL,
    EXCEPTION_KINDS,
    EXTERNAL,
    F_CHANGES,
    F_KIND,
    RETURN,
    V_MAP,
    V_OBJ,
    V_OPAQUE,
    V_REF,
    V_SEQ,
    YIELD,
)
from replay.reader import open_recording
from replay.recorder import csettrace, csysmon

ROOT = Path(__file__).resolve().parents[1]
PROGRAMS = sorted((ROOT / "fidelity" / "programs").glob("*.py")) + sorted(
    (Path(__file__).parent / "parity_programs").glob("*.py")
)
UNREPRODUCIBLE_ATTRS = {"_ident", "_native_id"}
REPLAY_RECORD = (sys.executable, "-m", "replay", "record")

BACKENDS = [
    pytest.param(
        "sysmon",
        marks=pytest.mark.skipif(
            csysmon.available() is not None, reason=f"no C sysmon core: {csysmon.available()}"
        ),
    ),
    pytest.param(
        "settrace",
        marks=pytest.mark.skipif(
            csettrace.available() is not None,
            reason=f"no C settrace core: {csettrace.available()}",
        ),
    ),
]
CORE_NAMES = {"sysmon": ("sysmon", "c-sysmon"), "settrace": ("settrace", "c-settrace")}


def record(
    program: Path,
    core: str,
    store: Path,
    *,
    backend: str = "sysmon",
    faults: bool = False,
    values: str = "trees",
) -> tuple[dict[str, Any], list[tuple]]:
    done = subprocess.run(
        [*REPLAY_RECORD, "--store", str(store), "--backend", backend, program.name],
        cwd=program.parent,
        env={
            **os.environ,
            "PYTHONHASHSEED": "0",
            "REPLAY_CORE": core,
            "REPLAY_VALUE_MODEL": values,
        },
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert faults or "internal fault" not in done.stderr, done.stderr
    with open_recording(str(store)) as reader:
        row = reader.store.recording(reader.recording_id)
        events = list(reader.raw_events())
    return row, events


class Renumber:
    """Maps process-wide numbers to their order of first appearance (per thread)."""

    def __init__(self) -> None:
        self.maps: dict[str, dict[int, int]] = {}

    def __call__(self, space: str, number: Any) -> Any:
        if not isinstance(number, int) or number == 0:
            return number
        table = self.maps.setdefault(space, {})
        return table.setdefault(number, len(table) + 1)


def scrub_value(venc: Any, renumber: Renumber | None) -> Any:
    """A venc without unreproducible attributes, object ids renumbered if asked."""
    if type(venc) is not tuple or not venc:
        return venc
    tag = venc[0]
    if tag in (V_SEQ, V_MAP, V_OBJ, V_REF, V_OPAQUE) and renumber is not None:
        venc = (tag, renumber("obj", venc[1]), *venc[2:])
    if tag == V_SEQ and venc[4] is not None:
        return (*venc[:4], [scrub_value(v, renumber) for v in venc[4]])
    if tag == V_MAP and venc[4] is not None:
        pairs = [(scrub_value(k, renumber), scrub_value(v, renumber)) for k, v in venc[4]]
        return (*venc[:4], pairs)
    if tag == V_OBJ and venc[3] is not None:
        attrs = {
            k: scrub_value(v, renumber) for k, v in venc[3].items() if k not in UNREPRODUCIBLE_ATTRS
        }
        return (*venc[:3], attrs, venc[4])
    return venc


def comparable(events: list[tuple], *, per_thread: bool) -> dict[int, list[str]]:
    """Per thread, each event as a string (repr: NaN equals NaN), without its `ts`.

    Object ids are renumbered in order of first appearance within each event: which objects of
    an event are the same object is compared, not the serials. Across events it cannot be: an
    object that takes no weak reference (an exception, a list, a dict) is known to the identity
    map by its address, so a new one at a dead one's address gets the dead one's id, and which
    address a new object gets depends on what the writer thread allocated meanwhile (seen on
    3.11: the StopIteration of one coroutine given the id of the previous one's, or not, from
    run to run, with either core).
    """
    out: dict[int, list[str]] = {}
    renumbers: dict[int, Renumber] = {}
    for thread_id, event in events:
        renumber = renumbers.setdefault(thread_id, Renumber()) if per_thread else Renumber()
        kind, step, _ts, call, line, payload, changes, deleted = event
        if payload is not None:
            if kind in (RETURN, YIELD):
                payload = scrub_value(payload, renumber)
            elif kind in EXCEPTION_KINDS:
                payload = (*payload[:2], scrub_value(payload[2], renumber))
            elif kind == EXTERNAL:
                callee, observed, value, exc = payload
                if exc is not None:
                    exc = (*exc[:2], scrub_value(exc[2], renumber))
                payload = (callee, observed, scrub_value(value, renumber), exc)
            elif kind == CALL and per_thread:
                payload = (payload[0], renumber("call", payload[1]))
        if changes is not None:
            changes = tuple((name, scrub_value(v, renumber)) for name, v in changes)
        if per_thread:
            call = renumber("call", call)
            atoms = tuple((n, v) for n, v in changes or () if type(v) is not tuple)
            out.setdefault(thread_id, []).append(repr((kind, call, line, atoms)))
            continue
        out.setdefault(thread_id, []).append(
            repr((kind, step, call, line, payload, changes, deleted))
        )
    return out


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("program", PROGRAMS, ids=lambda p: p.name)
def test_c_core_records_the_same_events_as_the_python_core(
    program: Path, backend: str, tmp_path: Path
) -> None:
    py_row, py_events = record(program, "python", tmp_path / "python.db", backend=backend)
    c_row, c_events = record(program, "c", tmp_path / "c.db", backend=backend)

    assert (py_row["backend"], c_row["backend"]) == CORE_NAMES[backend]
    assert py_row["tracer_faults"] == c_row["tracer_faults"] == 0
    assert_same_events(c_events, py_events)


def assert_same_events(got_events: list[tuple], expected_events: list[tuple]) -> None:
    """Event by event, per thread where threads interleave (see `comparable`)."""
    assert len(got_events) == len(expected_events) > 0
    per_thread = len({tid for tid, _ in expected_events}) > 1
    expected = comparable(expected_events, per_thread=per_thread)
    got = comparable(got_events, per_thread=per_thread)
    assert sorted(got) == sorted(expected)
    for thread_id, want in expected.items():
        for index, (mine, theirs) in enumerate(zip(got[thread_id], want, strict=True)):
            assert mine == theirs, f"thread {thread_id}, event {index}"


@pytest.mark.parametrize("backend", BACKENDS)
def test_an_injected_fault_costs_the_same_values_in_both_cores(
    backend: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # REPLAY_INJECT_FAULT makes encoding a variable of that name fail: here a cell variable,
    # whose values are atoms (the C core skips the encoder for atoms, but not for this name).
    monkeypatch.setenv("REPLAY_INJECT_FAULT", "count")
    program = Path(__file__).parent / "parity_programs" / "edges.py"
    py_row, py_events = record(
        program, "python", tmp_path / "python.db", backend=backend, faults=True
    )
    c_row, c_events = record(program, "c", tmp_path / "c.db", backend=backend, faults=True)
    assert py_row["tracer_faults"] == c_row["tracer_faults"] > 0
    assert comparable(py_events, per_thread=False) == comparable(c_events, per_thread=False)
    assert any(
        event[F_KIND] == CALL and event[F_CHANGES] and "count" in dict(event[F_CHANGES])
        for _tid, event in c_events
    )


@pytest.mark.parametrize("core", ["python", "c"])
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("program", PROGRAMS, ids=lambda p: p.name)
def test_object_records_read_back_as_the_trees_the_python_core_records(
    program: Path, backend: str, core: str, tmp_path: Path
) -> None:
    # GIVEN the same program recorded by the Python core as trees, and by each core as object
    # records (each changed name an entry, each changed object a record: recorder/versions.py)
    trees_row, trees = record(program, "python", tmp_path / "trees.db", backend=backend)
    records_row, records = record(
        program, core, tmp_path / "records.db", backend=backend, values="records"
    )
    # THEN the records, expanded by the reader, are the very events the trees are
    assert records_row["backend"] == CORE_NAMES[backend][core == "c"]
    assert (trees_row["format_version"], records_row["format_version"]) == (1, 2)
    assert trees_row["tracer_faults"] == records_row["tracer_faults"] == 0
    assert_same_events(records, trees)
