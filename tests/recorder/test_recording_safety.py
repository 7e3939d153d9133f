"""The traced program comes first: what recording must never do, checked end to end.

Each test records a small program with the real CLI in a real subprocess into a real SQLite
store, runs the same program untraced, and compares: a tracer fault never reaches the program,
secrets never reach the disk, user code (`__repr__`, properties, `__eq__`, ...) never runs
because of the recorder, and only the user's code is recorded.
"""

from __future__ import annotations

import gc
import json
import marshal
import os
import sqlite3
import subprocess
import sys
import textwrap
import types
from pathlib import Path

import pytest
from replay.storage import Store
from replay.storage.codec import decompress_blob

from replay.recorder.csysmon import _ctracer
from replay.recorder.scope import Scope
from replay.recorder.state import RecordingState

SECRET = "s3cr3t-XYZZY-4242"


def write(path: Path, text: str) -> Path:
    path.write_text(textwrap.dedent(text))
    return path


def run(
    args: list[str], cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    return subprocess.run(  # noqa: PLW1510 (the exit status is asserted by the caller)
        args,
        cwd=cwd,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=120,
    )


def record(cwd: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return run(
        [sys.executable, "-m", "replay", "record", "--store", str(cwd / "t.db"), *args], cwd, env
    )


def export(cwd: Path) -> dict:
    done = run(
        [
            sys.executable,
            "-m",
            "replay",
            "export",
            "--store",
            str(cwd / "t.db"),
            "--format",
            "json",
        ],
        cwd,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_a_fault_in_the_recorder_is_counted_reported_once_and_never_reaches_the_program(
    tmp_path: Path,
) -> None:
    # GIVEN a program with a variable the recorder is told to fail on (a test-only hook)
    write(
        tmp_path / "app.py",
        """
        total = 0
        for i in range(3):
            boom = i * 2
            total += boom
        print("total", total)
        raise SystemExit(4)
        """,
    )
    plain = run([sys.executable, "app.py"], tmp_path)
    # WHEN it is recorded with the fault injected
    traced = record(tmp_path, "app.py", env={"REPLAY_INJECT_FAULT": "boom"})
    # THEN the program behaved exactly as untraced
    assert traced.returncode == plain.returncode == 4
    assert traced.stdout == plain.stdout
    # AND the fault is on stderr once, in one line, and in the recording
    fault_lines = [line for line in traced.stderr.splitlines() if line.startswith("replay:")]
    assert len(fault_lines) == 1 and "fault" in fault_lines[0], traced.stderr
    assert traced.stderr.replace(fault_lines[0] + "\n", "") == plain.stderr
    with Store.open(tmp_path / "t.db") as store:
        row = store.recording(store.latest_recording_id())
    assert row["tracer_faults"] >= 1
    assert "injected fault" in row["fault_message"]
    # AND the rest of the program was still recorded
    steps = export(tmp_path)["steps"]
    assert any(step["changes"].get("total", {}).get("repr") == "6" for step in steps)


def _everything_in_the_store(path: Path) -> bytes:
    """Every byte the store holds, decompressed: chunks decoded, sources, text columns, raw file."""
    parts: list[bytes] = []
    for file in path.parent.glob(path.name + "*"):  # the db and its -wal
        parts.append(file.read_bytes())
    db = sqlite3.connect(path)
    tables = [name for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type='table'")]
    for table in tables:
        for row in db.execute(f"SELECT * FROM {table}"):
            for cell in row:
                if isinstance(cell, bytes):
                    parts.append(cell)
                    try:
                        parts.append(decompress_blob(cell))
                    except Exception:
                        pass
                elif cell is not None:
                    parts.append(str(cell).encode())
    db.close()
    with Store.open(path) as store:
        for recording in store.recordings():
            for info in store.chunk_index(recording["id"]):
                events = store.read_chunk(info.id)
                parts.append(marshal.dumps(events))
                parts.append(repr(events).encode())
    return b"\n".join(parts)


def test_secrets_never_reach_the_store(tmp_path: Path) -> None:
    # GIVEN a program that holds a secret (from its environment, as real programs do) under
    # secret-looking names: a variable, an argument, a dict key, an attribute, a header pair
    write(
        tmp_path / "app.py",
        """
        import os, sys

        class Client:
            def __init__(self, api_key):
                self.api_key = api_key
                self.name = "svc"

        def connect(password, user="bob"):
            return len(password)

        db_password = os.environ["APP_SECRET"]
        settings = {"Authorization": "Bearer " + db_password, "timeout": 3}
        headers = [("X-Api-Key", db_password), ("Accept", "json")]
        client = Client(db_password)
        size = connect(db_password)
        print(size, sys.argv[1:])
        """,
    )
    # WHEN it is recorded (the secret is also on its command line, as --token=...)
    done = record(tmp_path, "app.py", f"--token={SECRET}", env={"APP_SECRET": SECRET})
    assert done.returncode == 0, done.stderr
    # THEN the program saw its secret, and nothing in the store holds it
    assert SECRET in done.stdout
    blob = _everything_in_the_store(tmp_path / "t.db")
    assert SECRET.encode() not in blob
    assert b"Bearer " + SECRET.encode() not in blob
    # AND the export says what was redacted, with the other values intact
    steps = export(tmp_path)["steps"]
    seen = {name: value for step in steps for name, value in step["changes"].items()}
    assert seen["db_password"]["redacted"] is True
    assert seen["settings"]["items"][0][1]["redacted"] is True
    assert seen["settings"]["items"][1][1]["repr"] == "3"
    assert seen["client"]["attrs"]["api_key"]["redacted"] is True
    assert seen["client"]["attrs"]["name"]["repr"] == "'svc'"
    assert seen["password"]["redacted"] is True


def test_recording_never_runs_user_code(tmp_path: Path) -> None:
    # GIVEN objects whose dunder methods, properties and lazy attributes leave a trace when run
    write(
        tmp_path / "app.py",
        """
        import os
        LOG = os.path.join(os.path.dirname(os.path.abspath(__file__)), "side-effects.log")

        def touched(what):
            with open(LOG, "a") as handle:
                handle.write(what + "\\n")

        class Hostile:
            def __init__(self):
                self.rows = [1, 2]
            def __repr__(self):
                touched("repr"); return "Hostile()"
            def __str__(self):
                touched("str"); return "Hostile"
            def __eq__(self, other):
                touched("eq"); return False
            def __hash__(self):
                touched("hash"); return 1
            def __len__(self):
                touched("len"); return 0
            def __iter__(self):
                touched("iter"); return iter(())
            def __getattr__(self, name):
                touched("getattr " + name); raise AttributeError(name)
            @property
            def lazy(self):
                touched("property"); return 1

        class Query(list):
            def __iter__(self):
                touched("query iter"); return super().__iter__()
            def __len__(self):
                touched("query len"); return 0

        class Broken:
            def __repr__(self):
                raise RuntimeError("repr is broken")

        def use(thing, query, broken):
            kept = {thing: query}
            return kept

        item = Hostile()
        query = Query([1, 2, 3])
        broken = Broken()
        result = use(item, query, broken)
        print("done", os.path.exists(LOG))
        """,
    )
    plain = run([sys.executable, "app.py"], tmp_path)
    log = tmp_path / "side-effects.log"
    untraced_log = log.read_text() if log.exists() else ""
    log.unlink(missing_ok=True)
    # WHEN it is recorded
    traced = record(tmp_path, "app.py")
    # THEN the program ran the same, and the recorder ran none of those methods
    assert (traced.returncode, traced.stdout, traced.stderr) == (
        plain.returncode,
        plain.stdout,
        plain.stderr,
    )
    assert (log.read_text() if log.exists() else "") == untraced_log
    # AND the values are still there, from the objects' own state
    steps = export(tmp_path)["steps"]
    seen = {name: value for step in steps for name, value in step["changes"].items()}
    assert seen["item"]["type"] == "__main__.Hostile"
    assert [v["repr"] for v in seen["item"]["attrs"]["rows"]["items"]] == ["1", "2"]
    assert [v["repr"] for v in seen["query"]["items"]] == ["1", "2", "3"]
    assert seen["broken"]["type"] == "__main__.Broken"


def test_only_the_users_code_is_recorded_and_library_calls_are_one_step(tmp_path: Path) -> None:
    # GIVEN an app in the current directory that calls a library living outside it
    lib = tmp_path / "lib"
    app = tmp_path / "app"
    lib.mkdir()
    app.mkdir()
    write(
        lib / "shapes.py",
        """
        def area(w, h):
            total = 0
            for _ in range(h):
                total += w
            return total
        """,
    )
    write(
        app / "main.py",
        """
        import shapes
        import json

        def main():
            size = shapes.area(3, 4)
            text = json.dumps({"size": size})
            return text

        main()
        """,
    )
    done = run(
        [sys.executable, "-m", "replay", "record", "--store", str(tmp_path / "t.db"), "main.py"],
        app,
        env={"PYTHONPATH": str(lib)},
    )
    assert done.returncode == 0, done.stderr
    doc = export(tmp_path)
    files = {step["file"] for step in doc["steps"]}
    # THEN no step is inside the library or the standard library
    assert files == {str(app / "main.py")}
    # AND each library call is one step with its callee and return value
    external = {step["callee"]: step for step in doc["steps"] if step["kind"] == "external"}
    assert external["shapes.area"]["value"]["repr"] == "12"
    assert external["json.dumps"]["value"]["repr"] == repr('{"size": 12}')


def test_include_and_exclude_change_the_scope(tmp_path: Path) -> None:
    write(tmp_path / "helper.py", "def twice(x):\n    return x * 2\n")
    write(tmp_path / "app.py", "import helper\nvalue = helper.twice(21)\n")
    done = record(tmp_path, "--exclude", "helper.py", "app.py")
    assert done.returncode == 0, done.stderr
    functions = {f["qualname"] for f in export(tmp_path)["functions"]}
    assert "twice" not in functions and "<module>" in functions
    (tmp_path / "t.db").unlink()
    done = record(tmp_path, "--exclude", "*.py", "--include", "helper.py", "app.py")
    assert done.returncode == 0, done.stderr
    # exclude wins over include: nothing is in scope
    assert export(tmp_path)["functions"] == []


_MANAGED_DICT_PROGRAM = """
    import ctypes, json, sys


    def has_instance_dict(o):
        # The managed dict's word, three pointers before the object (3.11-3.13); on 3.12 it
        # holds the inline values' address, tagged with 1, until a dict is made.
        word = ctypes.c_void_p.from_address(id(o) - 3 * ctypes.sizeof(ctypes.c_void_p)).value
        return bool(word) and not (sys.version_info[:2] == (3, 12) and word & 1)


    class Order:
        def __init__(self, number, lines):
            self.number = number
            self.lines = lines
            self.note = "new"
            self.status = "open"


    class Shop:
        def __init__(self):
            self.orders = []


    def close(order, shop):
        order.status = "closed"
        del order.note
        order.total = sum(order.lines)
        shop.orders.append(order)
        return order


    shop = Shop()
    orders = [Order(n, [n, 2 * n]) for n in range(3)]
    for order in orders:
        closed = close(order, shop)
    last = orders[-1]
    checked = [has_instance_dict(o) for o in [shop, *orders]]
    print(json.dumps({"dicts": checked, "last": list(vars(last))}))
"""


def test_objects_the_recorder_reads_keep_their_inline_attributes(tmp_path: Path) -> None:
    if _ctracer is None:
        pytest.skip("the C core is not built here (the Python cores read `__dict__`)")
    # GIVEN a program whose objects are read by the recorder at every line: as arguments, as
    # locals, inside a list, changed through other names, one attribute deleted and one added
    write(tmp_path / "app.py", _MANAGED_DICT_PROGRAM)
    plain = run([sys.executable, "app.py"], tmp_path)
    assert plain.returncode == 0, plain.stderr
    # WHEN it is recorded
    traced = record(tmp_path, "app.py")
    assert traced.returncode == 0, traced.stderr
    # THEN no object was given an instance dict: reading one makes it for good, and the
    # interpreter's specialized attribute loads and stores no longer apply to that object (the
    # recorded program, and everything after it, would run slower than itself)
    result = json.loads(traced.stdout)
    assert result["dicts"] == [False] * 4 == json.loads(plain.stdout)["dicts"]
    # AND the attributes were recorded as `vars()` shows them, in its order, deletion included
    steps = export(tmp_path)["steps"]
    last = [step["changes"]["last"] for step in steps if "last" in step["changes"]][-1]
    assert list(last["attrs"]) == result["last"] == ["number", "lines", "status", "total"]
    assert last["attrs"]["status"]["repr"] == "'closed'"
    assert [item["repr"] for item in last["attrs"]["lines"]["items"]] == ["2", "4"]


def test_the_collectors_callback_runs_no_python_code_where_the_c_core_is_built() -> None:
    if _ctracer is None:
        pytest.skip("the C core is not built here")
    # GIVEN a recording's state watching the garbage collector, as every core makes it watch
    state, reference = (RecordingState(Scope("/nonexistent"), lambda _name, v: v) for _ in "ab")
    state.watch_gc()
    try:
        [callback] = [cb for cb in gc.callbacks if cb is state._gc_callback]
        # THEN its callback is C: the interpreter runs a pending signal's handler inside any
        # Python code, and a KeyboardInterrupt raised in a collector's callback is reported as
        # ignored and lost (a SIGINT forwarded by `replay record -- COMMAND` left the program
        # running, one run in thirty under load, until session 27)
        assert isinstance(callback, types.BuiltinFunctionType)
        # AND it keeps `collecting` as the Python callback does, through 300 collections
        for _ in range(300):
            for phase in ("start", "stop"):
                callback(phase, {"generation": 0})
                reference._on_gc(phase, {"generation": 0})
                assert state.collecting.tolist() == reference.collecting.tolist()
            if state.collecting[1] == 0:
                assert reference.collecting[1] == 0  # the count wraps at 128 in both
    finally:
        state.unwatch_gc()
    assert state._gc_callback not in gc.callbacks
