"""Fidelity: what replay recorded equals what an independent settrace oracle saw.

For each program in programs/ and each backend available on this Python, the program runs twice
in real subprocesses: once under tests/fidelity/oracle.py (plain sys.settrace, no replay code)
and once under `replay record`, whose recording is read back through `replay export`. Per
thread, the sequence of (event, function, file, line) must be the same, and at every line the
locals rebuilt from the export's `changes`/`deleted` must equal the oracle's live locals, to the
capture depth.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from replay.engine import Engine
from replay.recorder import csettrace, csysmon
from replay.recorder.core import C_CORES
from replay.values import to_json

HERE = Path(__file__).parent
PROGRAMS = sorted(p.name for p in (HERE / "programs").glob("*.py"))
BACKENDS = ["settrace", "sysmon"] if sys.version_info >= (3, 12) else ["settrace"]
# (backend, REPLAY_CORE): every backend with its pure-Python core, and with its C core where it
# is built (tests/recorder/test_ctracer.py makes CI fail if it is missing).
_C_AVAILABLE = {"sysmon": csysmon.available() is None, "settrace": csettrace.available() is None}
CORES = (
    [(backend, "python") for backend in BACKENDS]
    + [(backend, "c") for backend in BACKENDS if backend in C_CORES and _C_AVAILABLE[backend]]
    # "records", "c-records": each core writing object records (REPLAY_VALUE_MODEL=records),
    # which every reader expands into the trees compared here (replay/recorder/versions.py).
    + [(backend, "records") for backend in BACKENDS]
    + [
        (backend, "c-records")
        for backend in BACKENDS
        if backend in C_CORES and _C_AVAILABLE[backend]
    ]
)

# replay's event kinds as the settrace events they correspond to; others have no settrace twin.
KIND_TO_SETTRACE = {
    "call": "call",
    "resume": "call",
    "throw": "call",
    "line": "line",
    "return": "return",
    "yield": "return",
    "unwind": "return",
    "exception": "exception",
}
# Values that differ from run to run by nature (trap 4): left out of both sides, not loosened.
UNREPRODUCIBLE_ATTRS = {"_ident", "_native_id"}
# Objects that their own threads change at moments that depend on the interleaving (a Thread
# drops `_target` when it ends, sets `_started`, ...): two runs cannot agree on them.
UNREPRODUCIBLE_TYPES = {"threading.Thread", "threading.Event", "threading.Condition"}
# The mappings the programs hold (an export value says its type, not whether it is a mapping).
MAP_TYPES = {
    "dict",
    "collections.OrderedDict",
    "collections.defaultdict",
    "collections.Counter",
    "__main__.Registry",  # read_lines.py
}
ATOM_TYPES = {"NoneType", "bool", "int", "float", "str", "bytes"}


def _env(core: str | None = None) -> dict[str, str]:
    # Same hash seed for both runs, so set iteration order (and thus recorded items) agree.
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    if core is not None and core.endswith("records"):
        env["REPLAY_VALUE_MODEL"] = "records"
        env["REPLAY_CORE"] = "c" if core == "c-records" else "python"
    elif core is not None:
        env["REPLAY_CORE"] = core
    return env


def run_oracle(
    program: str, tmp_path: Path, *, stacks: bool = False
) -> dict[str, list[dict[str, Any]]]:
    out = tmp_path / "oracle.json"
    subprocess.run(  # noqa: PLW1510 (the exit status is asserted by the caller)
        [sys.executable, str(HERE / "oracle.py"), str(out), program],
        cwd=HERE / "programs",
        env={**_env(), "ORACLE_STACKS": "1"} if stacks else _env(),
        capture_output=True,
        timeout=120,
    )
    return json.loads(out.read_text())


def record(program: str, tmp_path: Path, backend: str = "auto", core: str | None = None) -> Path:
    store = tmp_path / "fidelity.db"
    subprocess.run(  # noqa: PLW1510 (the exit status is asserted by the caller)
        [sys.executable, "-m", "replay", "record", "--store", str(store), "--backend", backend,
         program],
        cwd=HERE / "programs",
        env=_env(core),
        capture_output=True,
        timeout=120,
    )  # fmt: skip
    return store


def run_replay(program: str, tmp_path: Path, backend: str, core: str) -> dict[str, Any]:
    store = record(program, tmp_path, backend, core)
    out = tmp_path / "export.json"
    done = subprocess.run(  # noqa: PLW1510 (the exit status is asserted by the caller)
        [sys.executable, "-m", "replay", "export", "--store", str(store), "--format", "json",
         "-o", str(out)],
        env=_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return json.loads(out.read_text())


def plain(value: dict[str, Any]) -> list[Any]:
    """An export value in the oracle's comparable form (see oracle.plain)."""
    type_name = value["type"]
    if type_name in ATOM_TYPES and "id" not in value:
        return ["atom", type_name, value["repr"]]
    if value.get("ref"):
        return ["ref", type_name]
    # An object cut by the capture depth has an `id` and no attributes, nor a length.
    cut_object = "id" in value and value.get("truncated") and "length" not in value
    if "attrs" in value or cut_object:
        attrs = value.get("attrs")
        return [
            "obj",
            type_name,
            None if attrs is None else {k: plain(v) for k, v in attrs.items()},
        ]
    if type_name in MAP_TYPES:
        items = value.get("items")
        pairs = None if items is None else [[plain(k), plain(v)] for k, v in items]
        return ["map", type_name, value["length"], pairs]
    if "length" in value:
        items = value.get("items")
        return [
            "seq",
            type_name,
            value["length"],
            None if items is None else [plain(v) for v in items],
        ]
    return ["opaque", type_name]


def replay_sequences(export: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """Per thread name, the export's steps as oracle-shaped records, locals rebuilt."""
    names = {t["thread"]: t["name"] for t in export["threads"]}
    frames: dict[int, dict[str, Any]] = {}
    sequences: dict[str, list[dict[str, Any]]] = {}
    for step in export["steps"]:
        values = frames.setdefault(step["call"], {})
        values.update(step["changes"])
        for name in step["deleted"]:
            values.pop(name, None)
        kind = KIND_TO_SETTRACE.get(step["kind"])
        if kind is None:
            continue
        record: dict[str, Any] = {
            "kind": kind,
            "function": step["function"],
            "file": step["file"],
            "line": step["line"],
        }
        if kind == "line":
            record["locals"] = {name: plain(v) for name, v in values.items()}
        if kind == "exception":
            record["type"] = step["exception"]["type"]
            record["value"] = plain(step["exception"]["value"])
        sequences.setdefault(names[step["thread"]], []).append(record)
    return sequences


def scrub(value: Any) -> Any:
    """A plain value without the attributes that cannot be the same in two runs."""
    if isinstance(value, dict):
        return {k: scrub(v) for k, v in value.items()}
    if isinstance(value, list):
        if value and value[0] == "obj" and value[1] in UNREPRODUCIBLE_TYPES:
            return ["obj", value[1], "(changes with thread timing)"]
        if value and value[0] == "obj" and isinstance(value[2], dict):
            attrs = {k: scrub(v) for k, v in value[2].items() if k not in UNREPRODUCIBLE_ATTRS}
            return ["obj", value[1], attrs]
        return [scrub(v) for v in value]
    return value


def _describe(record: dict[str, Any]) -> str:
    return f"{record['kind']} {record['function']}:{record['line']}"


@pytest.mark.parametrize(("backend", "core"), CORES)
@pytest.mark.parametrize("program", PROGRAMS)
def test_recording_matches_oracle(program: str, backend: str, core: str, tmp_path: Path) -> None:
    oracle = run_oracle(program, tmp_path)
    export = run_replay(program, tmp_path, backend, core)
    expected_core = C_CORES[backend] if core in ("c", "c-records") else backend
    assert export["recording"]["backend"] == expected_core, "the requested core recorded"
    recorded = replay_sequences(export)

    assert sorted(recorded) == sorted(oracle), "the same threads ran in-scope code"
    for thread, expected in oracle.items():
        got = recorded[thread]
        assert [_describe(r) for r in got] == [_describe(r) for r in expected], thread
        for mine, theirs in zip(got, expected, strict=True):
            assert mine["file"] == theirs["file"]
            if theirs["kind"] == "exception":
                assert mine["type"] == theirs["type"], _describe(theirs)
                assert scrub(mine["value"]) == scrub(theirs["value"]), _describe(theirs)
            if theirs["kind"] == "line" and theirs["locals"] is not None:
                assert scrub(mine["locals"]) == scrub(theirs["locals"]), _describe(theirs)


# Every program but the one whose worker threads change a module global that the main thread's
# module frame holds: no frame of the main thread's stack records those changes, which the
# engine's stack therefore cannot show (docs/engine.md, "Objects held by several frames").
# On 3.11 a comprehension is a frame of its own, and a dict comprehension binds its loop
# variable and starts the inner comprehension on one line: a frame's bindings made after its
# latest event show at its next event, so basics.py's outer comprehension lags there.
STACK_PROGRAMS = [
    program
    for program in PROGRAMS
    if program != "threads.py" and not (program == "basics.py" and sys.version_info < (3, 12))
]


def engine_stacks(store: Path) -> list[list[dict[str, Any]]]:
    """At every LINE step of the main thread: each frame of the engine's stack, innermost
    first, in the oracle's form."""
    stacks = []
    with Engine.open(store) as engine:
        while True:
            if engine.cursor.kind == "line":
                stacks.append(
                    [
                        {
                            "function": frame.function,
                            "line": frame.line,
                            "locals": {k: plain(to_json(v)) for k, v in frame.locals.items()},
                        }
                        for frame in engine.stack()
                    ]
                )
            if engine.step().reason == "end":
                return stacks


@pytest.mark.parametrize("program", STACK_PROGRAMS)
@pytest.mark.parametrize("core", [None, "records", "c-records"], ids=["default", "records", "c"])
def test_every_frame_of_the_engine_stack_matches_oracle(
    program: str, core: str | None, tmp_path: Path
) -> None:
    # GIVEN a program whose objects are held by several frames and changed by the innermost
    # (recorded by the default core, and as object records the engine expands)
    oracle = run_oracle(program, tmp_path, stacks=True)["MainThread"]
    store = record(program, tmp_path, core=core)
    # WHEN the engine stands at each of its lines
    got = engine_stacks(store)
    # THEN every frame of its stack shows the values the program's frames had then, not only
    # the innermost one: an object changed through one frame is seen so through the others
    expected = [
        [{k: r[k] for k in ("function", "line", "locals")}, *r["stack"]]
        for r in oracle
        if r["kind"] == "line"
    ]
    assert [[f["function"] for f in s] for s in got] == [
        [f["function"] for f in s] for s in expected
    ]
    for mine, theirs in zip(got, expected, strict=True):
        where = f"{theirs[0]['function']}:{theirs[0]['line']}"
        for level, (frame, want) in enumerate(zip(mine, theirs, strict=True)):
            assert frame["line"] == want["line"], (where, level)
            if want["locals"] is not None:
                assert scrub(frame["locals"]) == scrub(want["locals"]), (where, level)
