"""The fixed cost of a recorded process: what it imports.

A recorded process imports what recording needs (the recorder, the store) and nothing of the
reading side: not the engine, the export code, the reader, the other subcommands; not Typer (nor
click, nor pydantic) when `replay.cli.fastpath` parsed its command line; and in a child started
by `replay record -- COMMAND` (bootstrapped by sitecustomize) not the command line at all.
Checked from inside real recorded programs: they write their own `sys.modules` to a file.
No timing here (the machine is shared): docs of the figures are in benchmarks/.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

from conftest import python, replay, rows, write
from replay.storage import Store

# Never in a recorded process, whatever the form.
READING_SIDE = (
    "replay.engine",
    "replay.export",
    "replay.reader",
    "replay.tui",
    "replay.cli.debug",
    "replay.cli.show",
    "replay.cli.export",
    "replay.cli.ls",
    "pydantic",  # Typer's parser loads it: `replay record` is parsed without it (cli/fastpath.py)
    "rich",
    "sqlalchemy",  # the recorder writes through sqlite3 alone (storage/recording_writer.py)
)
# Never in a bootstrapped child either: the command line belongs to the parent.
COMMAND_LINE = ("replay.cli", "typer", "click", "shellingham")
# Never in a process whose `replay record` command line the fast path parsed (cli/fastpath.py):
# Typer (and the click it bundles, typer._click, or the click it depends on) is for `--help`,
# the command lines the fast path declines and the other subcommands.
TYPER = ("typer", "click", "shellingham", "replay.cli.typer_app")

# Standard-library modules the recorder needs only in some runs (a `-- COMMAND`, a zip target, a
# class hiding its instance dict): imported only then, they cost every other start nothing.
ONLY_WHEN_NEEDED = ("socket", "zipfile", "subprocess", "secrets", "ctypes")
# Never needed by the recorder: `dataclasses` imports `inspect` (and `ast`, `tokenize`), 10 ms of
# a start (its settings are NamedTuples); `hashlib` loads OpenSSL, 3 ms (files are hashed with
# CPython's own sha256, replay/recorder/writer.py).
NOT_NEEDED = ("dataclasses", "inspect", "ast", "tokenize", "hashlib")

DUMP = """
import json, sys
with open(sys.argv[1], "w") as out:
    json.dump(sorted(sys.modules), out)
"""


def loaded(path: Path, prefixes: tuple[str, ...]) -> list[str]:
    """The modules in the dump that are one of `prefixes` or inside one of them."""
    modules = json.loads(path.read_text())
    return [m for m in modules if any(m == p or m.startswith(p + ".") for p in prefixes)]


def test_recorded_script_imports_no_reading_side(tmp_path: Path, store: Path) -> None:
    write(tmp_path / "dump.py", DUMP)
    out = tmp_path / "modules.json"
    done = replay("record", "--store", str(store), "dump.py", str(out), cwd=tmp_path)
    assert done.returncode == 0, done.stderr.decode()
    assert loaded(out, READING_SIDE + TYPER) == []
    assert loaded(out, ("replay.recorder",)), "the program ran unrecorded?"
    (recording,) = rows(store)
    assert recording["status"] == "ok" and recording["steps"] > 0


def test_recorded_script_imports_no_more_of_the_standard_library_than_it_needs(
    tmp_path: Path, store: Path
) -> None:
    # GIVEN a script that imports nothing, run plain and recorded
    write(tmp_path / "dump.py", DUMP)
    plain_out, out = tmp_path / "plain.json", tmp_path / "modules.json"
    assert python("dump.py", str(plain_out), cwd=tmp_path).returncode == 0
    done = replay("record", "-q", "--store", str(store), "dump.py", str(out), cwd=tmp_path)
    assert done.returncode == 0, done.stderr.decode()
    # THEN recording it loaded none of these that the program itself did not
    unwanted = ONLY_WHEN_NEEDED + NOT_NEEDED
    assert set(loaded(out, unwanted)) <= set(loaded(plain_out, unwanted))


def test_a_recorded_files_source_and_its_sha256_are_stored(tmp_path: Path, store: Path) -> None:
    # GIVEN a script recorded (its files row written at its exit, hashed without hashlib)
    script = write(tmp_path / "prog.py", "x = 1\ny = [x] * 3\n")
    done = replay("record", "-q", "--store", str(store), "prog.py", cwd=tmp_path)
    assert done.returncode == 0, done.stderr.decode()
    # THEN its row holds its bytes and the digest hashlib gives for them
    (recording,) = rows(store)
    with Store.open(store, mode="r") as opened:
        (row,) = [f for f in opened.files(recording["id"]).values() if f["path"] == str(script)]
        source = opened.source(recording["id"], row["file_id"])
    assert source == script.read_bytes()
    assert (row["sha256"], row["size"]) == (hashlib.sha256(source).hexdigest(), len(source))


def test_a_second_recording_into_a_store_imports_no_reading_side(
    tmp_path: Path, store: Path
) -> None:
    # GIVEN a store that already holds a recording (opened, not created, by the next one)
    write(tmp_path / "dump.py", DUMP)
    out = tmp_path / "modules.json"
    first = replay("record", "-q", "--store", str(store), "dump.py", str(out), cwd=tmp_path)
    assert first.returncode == 0, first.stderr.decode()
    # WHEN another program is recorded into it
    done = replay("record", "-q", "--store", str(store), "dump.py", str(out), cwd=tmp_path)
    # THEN it imported nothing of the reading side (nor SQLAlchemy), and both recordings are there
    assert done.returncode == 0, done.stderr.decode()
    assert loaded(out, READING_SIDE) == []
    assert [row["status"] for row in rows(store)] == ["ok", "ok"]


def test_recorded_module_imports_no_reading_side(tmp_path: Path, store: Path) -> None:
    write(tmp_path / "dumpmod.py", DUMP)
    out = tmp_path / "modules.json"
    done = replay("record", "--store", str(store), "-q", "-m", "dumpmod", str(out), cwd=tmp_path)
    assert done.returncode == 0, done.stderr.decode()
    assert loaded(out, READING_SIDE + TYPER) == []


def test_every_option_spares_typer(tmp_path: Path, store: Path) -> None:
    # GIVEN a command line with every option of `replay record`, each in a form the fast path reads
    write(tmp_path / "dump.py", DUMP)
    out = tmp_path / "modules.json"
    options = [
        "-q", "--store", str(store), "--include", "*.py", "--exclude=x/*", "--name", "all",
        "--backend", "settrace", "--max-depth", "3", "--max-items=10", "--max-string", "100",
        "--redact", "pin", "--no-default-redaction", "--on-backlog", "drop",
        "--max-overhead", "10x", "--quiet",
    ]  # fmt: skip
    # WHEN it records a script, then a module
    script = replay("record", *options, "dump.py", str(out), cwd=tmp_path)
    assert script.returncode == 0, script.stderr.decode()
    from_script = loaded(out, READING_SIDE + TYPER)
    module = replay("record", *options, "-mdump", str(out), cwd=tmp_path)
    assert module.returncode == 0, module.stderr.decode()
    # THEN neither process imported Typer (nor pydantic, nor the reading side)
    assert (from_script, loaded(out, READING_SIDE + TYPER)) == ([], [])
    assert [row["name"] for row in rows(store)] == ["all", "all"]


def test_what_the_fast_path_declines_still_records(tmp_path: Path, store: Path) -> None:
    # GIVEN a command line the fast path hands to Typer (clustered short flags)
    write(tmp_path / "dumpmod.py", DUMP)
    out = tmp_path / "modules.json"
    done = replay("record", "--store", str(store), "-qm", "dumpmod", str(out), cwd=tmp_path)
    # THEN Typer parsed it (and may stay loaded), and the program was recorded all the same
    assert done.returncode == 0, done.stderr.decode()
    assert loaded(out, ("replay.cli.typer_app",)), "the fast path parsed `-qm`?"
    assert loaded(out, tuple(m for m in READING_SIDE if m not in ("pydantic", "rich"))) == []
    (recording,) = rows(store)
    assert recording["status"] == "ok" and recording["steps"] > 0


def test_bootstrapped_child_imports_neither_cli_nor_reading_side(
    tmp_path: Path, store: Path
) -> None:
    write(tmp_path / "dump.py", DUMP)
    out = tmp_path / "modules.json"
    done = replay(
        "record", "--store", str(store), "--", sys.executable, "dump.py", str(out), cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr.decode()
    assert loaded(out, READING_SIDE + COMMAND_LINE) == []
    assert loaded(out, ("replay.recorder.session",)), "the child ran unrecorded?"
    (recording,) = rows(store)
    assert recording["status"] == "ok" and recording["steps"] > 0


def test_reading_commands_do_not_import_the_recorder(tmp_path: Path, store: Path) -> None:
    """The other way round: `replay ls` loads neither the recorder nor the other commands."""
    write(tmp_path / "prog.py", "x = 1\n")
    assert replay("record", "--store", str(store), "prog.py", cwd=tmp_path).returncode == 0
    probe = write(
        tmp_path / "probe.py",
        """
        import json, sys
        from replay.cli import main
        code = main(["ls", "--store", sys.argv[1]])
        print(json.dumps(sorted(sys.modules)), file=sys.stderr)
        sys.exit(code)
        """,
    )
    done = replay_python(probe, store, tmp_path)
    modules = json.loads(done.splitlines()[-1])
    unwanted = ("replay.recorder", "replay.engine", "replay.cli.record", "replay.cli.debug")
    assert [m for m in modules if m.startswith(unwanted)] == []


def test_a_command_is_run_without_loading_the_recorder(tmp_path: Path, store: Path) -> None:
    """`replay record -- COMMAND` records nothing itself: it checks the settings, runs the command
    and reads the store, with none of the encoder, the cores, the writer or the session."""
    probe = write(
        tmp_path / "probe.py",
        """
        import json, sys
        from replay.cli import main
        code = main(["record", "-q", "--store", sys.argv[1], "--", "true"])
        print(json.dumps(sorted(sys.modules)), file=sys.stderr)
        sys.exit(code)
        """,
    )
    modules = json.loads(replay_python(probe, store, tmp_path).splitlines()[-1])
    recorder = tuple(
        f"replay.recorder.{name}"
        for name in ("control", "core", "session", "snapshot", "state", "writer", "csysmon")
    )
    assert "replay.recorder.backends" in modules, "the settings were not checked?"
    assert [m for m in modules if m.startswith(recorder)] == []


def replay_python(script: Path, store: Path, cwd: Path) -> str:
    """Run `script STORE` with this interpreter; its stderr."""
    done = python(str(script), str(store), cwd=cwd)
    assert done.returncode == 0, done.stderr.decode()
    return done.stderr.decode()


def test_the_launcher_of_a_command_does_not_import_sqlalchemy(tmp_path: Path, store: Path) -> None:
    # GIVEN `replay record -- COMMAND` run with `-X importtime` (the launcher alone: its child,
    # the recorded process, does not inherit the flag, and the test above checks it)
    write(tmp_path / "dump.py", DUMP)
    out = tmp_path / "modules.json"
    done = python(
        "-X", "importtime", "-m", "replay", "record", "-q", "--store", str(store),
        "--", sys.executable, "dump.py", str(out), cwd=tmp_path,
    )  # fmt: skip
    # THEN the launcher checked (created) the store and settled its child's recording with
    # sqlite3 alone: SQLAlchemy is not among the modules it imported
    assert done.returncode == 0, done.stderr.decode()
    imported = [line for line in done.stderr.decode().splitlines() if "import time:" in line]
    assert any(line.rstrip().endswith("replay.cli") for line in imported), imported[:5]
    assert not [line for line in imported if "sqlalchemy" in line]
    (recording,) = rows(store)
    assert recording["status"] == "ok" and recording["exit_code"] == 0
