"""Bad input gets one line on stderr and a non-zero exit, before anything runs or is written."""

from __future__ import annotations

import hashlib
import sqlite3
import sys
from pathlib import Path

import pytest
from conftest import assert_one_line_error, clean_env, replay, replay_all, write
from replay.storage import Store

MARKER_PROGRAM = """
    from pathlib import Path
    Path("ran.marker").write_text("the program ran")
"""


@pytest.fixture
def app(tmp_path: Path) -> Path:
    """A program that leaves a marker file when it runs."""
    return write(tmp_path / "app.py", MARKER_PROGRAM)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def assert_nothing_happened(tmp_path: Path, store: Path) -> None:
    assert not (tmp_path / "ran.marker").exists(), "the program ran"
    assert not store.exists(), "the store was created"
    assert not (tmp_path / "replay.db").exists()


def test_missing_script_or_module(tmp_path: Path, store: Path) -> None:
    write(tmp_path / "pkg" / "__init__.py", MARKER_PROGRAM)  # must not run either
    s = ["record", "--store", str(store)]
    script, module, package, submodule = replay_all(
        [
            [*s, "nosuch.py"],
            [*s, "-m", "no_such_module_xyz"],
            [*s, "-m", "pkg"],
            [*s, "-m", "pkg.nothing"],
        ],
        tmp_path,
    )
    assert f"can't open file {str(tmp_path / 'nosuch.py')!r}" in assert_one_line_error(script)
    assert "No module named no_such_module_xyz" in assert_one_line_error(module)
    assert "cannot be directly executed" in assert_one_line_error(package)
    assert "No module named pkg.nothing" in assert_one_line_error(submodule)
    assert {d.returncode for d in (script, module, package, submodule)} == {2}
    assert_nothing_happened(tmp_path, store)


def test_store_in_a_directory_that_cannot_hold_it(tmp_path: Path, app: Path) -> None:
    (tmp_path / "a-file").write_text("a regular file, not a directory")
    stores = [tmp_path / "missing-dir" / "x.db", tmp_path / "a-file" / "x.db"]
    results = replay_all([["record", "--store", str(s), str(app)] for s in stores], tmp_path)
    for store, done in zip(stores, results, strict=True):
        assert str(store.parent) in assert_one_line_error(done)
        assert_nothing_happened(tmp_path, store)
    assert (tmp_path / "a-file").read_text() == "a regular file, not a directory"


def test_store_that_is_not_a_store_is_never_touched(tmp_path: Path, app: Path) -> None:
    text, empty = tmp_path / "notes.db", tmp_path / "empty.db"
    text.write_bytes(b"just some text\n")
    empty.write_bytes(b"")
    before = {path: sha256(path) for path in (text, empty)}
    results = replay_all(
        [
            ["record", "--store", str(text), str(app)],
            ["record", "--store", str(empty), str(app)],
            ["ls", "--store", str(text)],
            ["show", "--store", str(text)],
            ["export", "--store", str(text)],
        ],
        tmp_path,
    )
    for done in results:
        assert "not a replay store" in assert_one_line_error(done)
    assert {path: sha256(path) for path in (text, empty)} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["app.py", "empty.db", "notes.db"]


def test_another_applications_sqlite_database_is_never_touched(tmp_path: Path, app: Path) -> None:
    store = tmp_path / "theirs.db"
    db = sqlite3.connect(store)
    with db:
        db.execute("create table accounts (id integer primary key, name text)")
        db.execute("insert into accounts (name) values ('ada')")
    db.close()
    before = sha256(store)
    done = replay("record", "--store", str(store), str(app), cwd=tmp_path)
    assert "not a replay store" in assert_one_line_error(done)
    assert sha256(store) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["app.py", "theirs.db"]


BAD_OPTIONS = [
    (["--bogus"], "No such option: --bogus"),
    (["--redact", "(unclosed"], "bad redaction pattern"),
    (["--backend", "fastest"], "--backend must be one of"),
    (["--max-depth", "deep"], "--max-depth"),
    (["--max-items", "-3"], "--max-items"),
]
if sys.version_info < (3, 12):
    BAD_OPTIONS.append((["--backend", "sysmon"], "3.12"))


def test_bad_options(tmp_path: Path, store: Path, app: Path) -> None:
    results = replay_all(
        [["record", "--store", str(store), *options, str(app)] for options, _ in BAD_OPTIONS],
        tmp_path,
    )
    for (_, expected), done in zip(BAD_OPTIONS, results, strict=True):
        assert expected in assert_one_line_error(done)
    assert_nothing_happened(tmp_path, store)


# What a recording refuses, refused by `replay record -- COMMAND` itself before the command runs
# (it checks them without loading the recorder: replay/recorder/backends.py).
COMMAND_REFUSALS = [
    ({}, ["--redact", "(unclosed"], "bad redaction pattern"),
    ({"REPLAY_CORE": "fast"}, [], "REPLAY_CORE must be 'c' or 'python'"),
    ({"REPLAY_VALUE_MODEL": "graphs"}, [], "REPLAY_VALUE_MODEL must be"),
]
if sys.version_info < (3, 12):
    COMMAND_REFUSALS.append(({}, ["--backend", "sysmon"], "3.12"))


def test_a_command_is_not_run_under_settings_its_recordings_would_refuse(
    tmp_path: Path, store: Path
) -> None:
    for env, options, expected in COMMAND_REFUSALS:
        # WHEN a command is given with a setting no recording can start with
        done = replay(
            "record", "--store", str(store), *options, "--", "touch", "ran.marker",
            cwd=tmp_path, env=clean_env(**env),
        )  # fmt: skip
        # THEN one line says why, and neither the command nor the store was touched
        assert expected in assert_one_line_error(done), (env, options)
        assert_nothing_happened(tmp_path, store)


def test_nothing_to_record_unknown_command_unknown_subcommand(tmp_path: Path, store: Path) -> None:
    nothing, command, subcommand = replay_all(
        [
            ["record", "--store", str(store)],
            ["record", "--store", str(store), "--", "no-such-command-xyz"],
            ["recrod", "app.py"],
        ],
        tmp_path,
    )
    assert "nothing to record" in assert_one_line_error(nothing)
    assert "command not found" in assert_one_line_error(command)
    assert command.returncode == 127
    assert "No such command" in assert_one_line_error(subcommand)
    assert subcommand.returncode == 2
    assert not store.exists()


def test_reading_commands_on_bad_input(tmp_path: Path) -> None:
    missing, empty = tmp_path / "missing.db", tmp_path / "empty.db"
    Store.open(empty, mode="w").close()
    e = ["--store", str(empty)]
    results = replay_all(
        [
            ["ls", "--store", str(missing)],
            ["show", "--store", str(missing)],
            ["show", *e],
            ["show", "nonsense", *e],
            ["show", "--bogus", *e],
            ["export", "--format", "xml", *e],
            ["ls", *e],
            ["ls", "--json", *e],
        ],
        tmp_path,
    )
    *errors, table, as_json = results
    for done in errors:
        assert_one_line_error(done)
    assert "does not exist" in errors[0].stderr.decode()
    assert "--format" in errors[-1].stderr.decode()
    assert not missing.exists()
    assert table.returncode == 0
    assert b"No recordings" in table.stdout
    assert as_json.returncode == 0
    assert as_json.stdout.strip() == b"[]"
