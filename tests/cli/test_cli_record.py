"""`replay record script.py` / `-m module` behave like `python script.py` / `python -m module`.

Each test runs the same program untraced and recorded and compares what a user sees: exit
status, stdout, stderr (byte for byte: stderr is not a terminal here, so replay adds nothing),
and what the program sees of itself (sys.argv, __main__, sys.path[0]).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest
from conftest import clean_env, python, replay, replay_all, rows, run, write

PROBE = """
    import json, sys
    g = globals()
    spec = g["__spec__"]
    print(json.dumps({
        "argv": sys.argv,
        "name": __name__,
        "file": g.get("__file__"),
        "path0": sys.path[0],
        "spec": None if spec is None else [spec.name, spec.origin, spec.parent],
        "package": g.get("__package__"),
        "cached": g.get("__cached__"),
        "loader": type(g.get("__loader__")).__name__,
        "dunders": [k for k in g if k.startswith("__")],
        "builtins": g["__builtins__"] is __import__("builtins"),
        "main": sys.modules["__main__"].__dict__ is g,
        "doc": __doc__,
    }))
"""


def test_what_the_program_sees_of_itself_script(tmp_path: Path, store: Path) -> None:
    write(tmp_path / "sub" / "probe.py", PROBE)
    (tmp_path / "link.py").symlink_to(tmp_path / "sub" / "probe.py")
    scripts = ("./sub/../sub/probe.py", "link.py", str(tmp_path / "sub" / "probe.py"))
    # Options after the target are the program's: `--store x` goes to the probe.
    runs = [[script, "a b", "--store", "x"] for script in scripts]
    stores = [tmp_path / f"{index}.db" for index in range(len(runs))]
    recorded_runs = replay_all(
        [["record", "--store", str(s), *args] for s, args in zip(stores, runs, strict=True)],
        tmp_path,
    )
    for args, recorded, one_store in zip(runs, recorded_runs, stores, strict=True):
        plain = python(*args, cwd=tmp_path)
        assert plain.returncode == recorded.returncode == 0, recorded.stderr
        assert json.loads(recorded.stdout) == json.loads(plain.stdout)
        assert recorded.stderr == plain.stderr == b""
        assert len(rows(one_store)) == 1
    assert not (tmp_path / "x").exists()
    assert not store.exists()


def test_what_the_program_sees_of_itself_module(tmp_path: Path, store: Path) -> None:
    write(tmp_path / "pkg" / "__init__.py", "")
    write(tmp_path / "pkg" / "probe.py", PROBE)
    write(tmp_path / "pkg" / "__main__.py", PROBE)
    for module in ("pkg.probe", "pkg"):
        plain = python("-m", module, "x", cwd=tmp_path)
        recorded = replay("record", "--store", str(store), "-m", module, "x", cwd=tmp_path)
        assert plain.returncode == recorded.returncode == 0, recorded.stderr
        assert json.loads(recorded.stdout) == json.loads(plain.stdout)
        assert recorded.stderr == plain.stderr == b""
    # The console script too (sys.path[0] is its bin/ directory before replay replaces it).
    console = Path(sys.executable).with_name("replay")
    if console.exists():
        plain = python("-m", "pkg.probe", "y", cwd=tmp_path)
        done = run(
            [str(console), "record", "--store", str(store), "-m", "pkg.probe", "y"], tmp_path
        )
        assert json.loads(done.stdout) == json.loads(plain.stdout)


def test_what_the_program_sees_of_itself_zip_or_directory(tmp_path: Path) -> None:
    # As python decides: a directory or a zip file holding __main__.py runs it, whatever the
    # file's name; a script whose text happens to hold a zip's end record stays a script.
    import textwrap  # noqa: PLC0415 - this test only
    import zipfile  # noqa: PLC0415

    write(tmp_path / "app" / "__main__.py", PROBE)
    probe = textwrap.dedent(PROBE)
    for name in ("app.pyz", "named_like_a_script.py"):
        with zipfile.ZipFile(tmp_path / name, "w") as archive:
            archive.writestr("__main__.py", probe)
    write(tmp_path / "not_a_zip.py", "# PK\x05\x06: a zip's end record, in a comment\n" + probe)
    targets = ["app", "app.pyz", "named_like_a_script.py", "not_a_zip.py"]
    stores = [tmp_path / f"{index}.db" for index in range(len(targets))]
    recorded_runs = replay_all(
        [["record", "--store", str(s), t, "x"] for s, t in zip(stores, targets, strict=True)],
        tmp_path,
    )
    for target, recorded, one_store in zip(targets, recorded_runs, stores, strict=True):
        plain = python(target, "x", cwd=tmp_path)
        assert plain.returncode == recorded.returncode == 0, recorded.stderr
        assert json.loads(recorded.stdout) == json.loads(plain.stdout), target
        assert len(rows(one_store)) == 1


def test_exit_codes(tmp_path: Path, store: Path) -> None:
    cases = {
        "exit3.py": ("import sys\nprint('bye')\nsys.exit(3)\n", 3, "failed"),
        "exit_none.py": ("raise SystemExit\n", 0, "ok"),
        "exit_text.py": ("import sys\nsys.exit('it went wrong')\n", 1, "failed"),
        "normal.py": ("x = 1\n", 0, "ok"),
    }
    for name, (source, _code, _status) in cases.items():
        write(tmp_path / name, source)
    results = replay_all(
        [["record", "--store", str(tmp_path / f"{name}.db"), name] for name in cases], tmp_path
    )
    for (name, (_source, code, status)), recorded in zip(cases.items(), results, strict=True):
        plain = python(name, cwd=tmp_path)
        assert (recorded.returncode, recorded.stdout, recorded.stderr) == (
            plain.returncode,
            plain.stdout,
            plain.stderr,
        )
        assert recorded.returncode == code
        [rec] = rows(tmp_path / f"{name}.db")
        assert (rec["exit_code"], rec["status"]) == (code, status), name


FAILING = """
    import sys

    def divide(a, b):
        ratio = a / b
        return ratio

    def main():
        print("working", flush=True)
        print("to stderr", file=sys.stderr)
        values = [3, 2, 1, 0]
        return [divide(6, v) for v in values]

    main()
"""


@pytest.mark.parametrize("as_module", [False, True])
def test_uncaught_exception_prints_as_python_does(
    tmp_path: Path, store: Path, as_module: bool
) -> None:
    write(tmp_path / "failing.py", FAILING)
    target = ["-m", "failing"] if as_module else ["failing.py"]
    plain = python(*target, cwd=tmp_path)
    recorded = replay("record", "--store", str(store), *target, cwd=tmp_path)
    assert plain.returncode == 1
    assert recorded.returncode == 1
    assert recorded.stdout == plain.stdout
    assert recorded.stderr == plain.stderr
    assert b"ZeroDivisionError" in recorded.stderr
    [rec] = rows(store)
    assert rec["status"] == "failed"
    assert rec["exit_code"] == 1
    assert rec["exception_type"] == "ZeroDivisionError"
    assert rec["exception_message"] == "division by zero"


def test_syntax_error_is_the_programs(tmp_path: Path, store: Path) -> None:
    write(tmp_path / "broken.py", "print('x'\n")
    plain = python("broken.py", cwd=tmp_path)
    recorded = replay("record", "--store", str(store), "broken.py", cwd=tmp_path)
    assert (recorded.returncode, recorded.stderr) == (plain.returncode, plain.stderr)
    assert b"SyntaxError" in recorded.stderr


def test_keyboard_interrupt_exits_as_python_does(tmp_path: Path, store: Path) -> None:
    write(tmp_path / "interrupted.py", "def wait():\n    raise KeyboardInterrupt\nwait()\n")
    plain = python("interrupted.py", cwd=tmp_path)
    recorded = replay("record", "--store", str(store), "interrupted.py", cwd=tmp_path)
    assert plain.returncode == -2  # killed by SIGINT after the traceback, as python does
    assert (recorded.returncode, recorded.stderr) == (plain.returncode, plain.stderr)
    [rec] = rows(store)
    assert rec["status"] == "killed"
    assert rec["exception_type"] == "KeyboardInterrupt"


def test_standard_streams_pass_through(tmp_path: Path, store: Path) -> None:
    write(
        tmp_path / "echo.py",
        """
        import sys
        data = sys.stdin.buffer.read()
        sys.stdout.buffer.write(data[::-1])
        sys.stdout.write("\\n%d bytes\\n" % len(data))
        sys.stderr.write("done\\n")
        """,
    )
    payload = bytes(range(256)) * 64 + "héllo\n".encode()
    plain = python("echo.py", cwd=tmp_path, stdin=payload)
    recorded = replay("record", "--store", str(store), "echo.py", cwd=tmp_path, stdin=payload)
    assert recorded.returncode == plain.returncode == 0
    assert recorded.stdout == plain.stdout
    assert recorded.stderr == plain.stderr == b"done\n"


def test_default_store_and_replay_store_variable(tmp_path: Path) -> None:
    write(tmp_path / "app.py", "x = 1\n")
    assert replay("record", "app.py", cwd=tmp_path).returncode == 0
    assert (tmp_path / "replay.db").exists()
    env = clean_env(REPLAY_STORE=str(tmp_path / "elsewhere.db"))
    assert replay("record", "app.py", cwd=tmp_path, env=env).returncode == 0
    assert len(rows(tmp_path / "elsewhere.db")) == 1
    assert len(rows(tmp_path / "replay.db")) == 1


def _stderr_on_a_terminal(args: list[str], cwd: Path) -> tuple[int, str]:
    """Run `replay ARGS` with its stderr on a pseudo-terminal: (exit status, what it said)."""
    pty = pytest.importorskip("pty")
    leader, follower = pty.openpty()
    try:
        done = run([sys.executable, "-m", "replay", *args], cwd, stderr_fd=follower)
        os.close(follower)
        follower = -1
        said = os.read(leader, 4096).decode()
    finally:
        os.close(leader)
        if follower >= 0:
            os.close(follower)
    return done.returncode, said


def test_end_line_only_on_a_terminal(tmp_path: Path, store: Path) -> None:
    write(tmp_path / "app.py", "total = sum(range(10))\n")
    status, said = _stderr_on_a_terminal(["record", "--store", str(store), "app.py"], tmp_path)
    assert status == 0
    assert said.startswith("replay: recorded ")
    assert "steps to test.db (recording 1)" in said
    assert "scope" not in said
    assert len(said.strip().splitlines()) == 1


def test_an_empty_recording_says_what_the_scope_was(tmp_path: Path, store: Path) -> None:
    # GIVEN a program whose only file is excluded from the scope
    write(tmp_path / "app.py", "total = sum(range(10))\n")
    args = ["record", "--store", str(store), "--exclude", "app.py", "app.py"]
    # WHEN it is recorded with stderr on a terminal
    status, said = _stderr_on_a_terminal(args, tmp_path)
    # THEN the end line says that nothing in scope ran, and where the scope was
    assert status == 0
    assert said.startswith("replay: recorded 0 steps to test.db (recording 1)")
    assert f"no code under {os.path.realpath(tmp_path)} ran" in said
    assert "--include" in said
    assert len(said.strip().splitlines()) == 1


HELPER_APP = {
    "main.py": """
        import sys
        from helper import double
        sys.path.insert(0, sys.argv[1])
        from vendored import triple

        def main():
            return triple(double(2))

        print(main())
    """,
    "helper.py": """
        def double(x):
            return 2 * x
    """,
}
VENDORED = """
    def triple(x):
        return 3 * x
"""


def _recorded_functions(store: Path) -> list[set[str]]:
    """The qualnames of the functions each recording of `store` has calls of."""
    from replay.storage import Store  # noqa: PLC0415 - the test process needs it only here

    with Store.open(store) as opened:
        return [
            {
                opened.functions(row["id"])[call["function_id"]]["qualname"]
                for call in opened.calls(row["id"])
            }
            for row in opened.recordings()
        ]


@pytest.mark.parametrize("form", ["script", "command"])
def test_a_script_outside_the_current_directory_is_recorded(tmp_path: Path, form: str) -> None:
    # GIVEN an app in its own directory, with a module beside the script and a library in a
    # virtual environment below it, run from an unrelated directory
    app, elsewhere = tmp_path / "app", tmp_path / "elsewhere"
    for name, source in HELPER_APP.items():
        write(app / name, source)
    libs = app / ".venv" / "lib" / "site-packages"
    write(libs / "vendored.py", VENDORED)
    elsewhere.mkdir()
    store = tmp_path / "out.db"
    target = [str(app / "main.py"), str(libs)]
    if form == "command":
        target = ["--", sys.executable, *target]
    # WHEN it is recorded
    done = replay("record", "--store", str(store), *target, cwd=elsewhere)
    # THEN it ran as it does untraced, and its own code is recorded (the script's directory is in
    # the scope, as it is first on sys.path), the library's is not
    assert done.returncode == 0, done.stderr
    assert done.stdout == b"12\n"
    assert _recorded_functions(store) == [{"<module>", "main", "double"}]
    assert rows(store)[0]["steps"] > 0


@pytest.mark.parametrize("core", ["", "python"])
def test_version_names_the_core_that_records(tmp_path: Path, store: Path, core: str) -> None:
    # GIVEN this Python, with or without REPLAY_CORE=python
    env = clean_env(**({"REPLAY_CORE": core} if core else {}))
    # WHEN `replay --version` is asked
    done = replay("--version", cwd=tmp_path, env=env)
    assert done.returncode == 0, done.stderr
    lines = dict(line.split(": ", 1) for line in done.stdout.decode().splitlines()[1:])
    assert lines["python"].startswith(".".join(map(str, sys.version_info[:3])))
    named = lines["recorder core"].split()[0]
    assert "column loops" in lines["store codec"]
    assert lines["chunk compression"].startswith(("libzstd ", "python-zstandard "))
    assert lines["store writes"].startswith(("SQLite 3.", "the sqlite3 module"))
    assert "index scan" in lines["recorder writer"]
    assert "expansion of object records" in lines["reader"]
    # THEN the core it names is the one a recording made in the same environment ran
    script = write(tmp_path / "app.py", "x = 1\n")
    recorded = replay("record", "--store", str(store), str(script), cwd=tmp_path, env=env)
    assert recorded.returncode == 0, recorded.stderr
    assert [row["backend"] for row in rows(store)] == [named]
    if core == "python":
        assert named in ("sysmon", "settrace")
