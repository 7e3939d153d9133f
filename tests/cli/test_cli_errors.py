"""Bad input gets one line on stderr and a non-zero exit, before anything runs or is written."""

from __future__ import annotations

import hashlib
import sqlite3
import sys
from pathlib import Path

import pytest
from conftest import assert_one_line_error, replay, write

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


def test_missing_script(tmp_path: Path, store: Path) -> None:
    done = replay("record", "--store", str(store), "nosuch.py", cwd=tmp_path)
    err = assert_one_line_error(done)
    assert done.returncode == 2
    assert "nosuch.py" in err
    assert_nothing_happened(tmp_path, store)


def test_missing_module(tmp_path: Path, store: Path) -> None:
    done = replay("record", "--store", str(store), "-m", "no_such_module_xyz", cwd=tmp_path)
    err = assert_one_line_error(done)
    assert done.returncode == 2
    assert "No module named no_such_module_xyz" in err
    assert_nothing_happened(tmp_path, store)


def test_package_without_main_and_missing_submodule(tmp_path: Path, store: Path) -> None:
    write(tmp_path / "pkg" / "__init__.py", MARKER_PROGRAM)  # must not run either
    done = replay("record", "--store", str(store), "-m", "pkg", cwd=tmp_path)
    assert "cannot be directly executed" in assert_one_line_error(done)
    done = replay("record", "--store", str(store), "-m", "pkg.nothing", cwd=tmp_path)
    assert "No module named pkg.nothing" in assert_one_line_error(done)
    assert_nothing_happened(tmp_path, store)


@pytest.mark.parametrize("where", ["missing-dir/x.db", "a-file/x.db"])
def test_store_in_a_directory_that_cannot_hold_it(tmp_path: Path, app: Path, where: str) -> None:
    (tmp_path / "a-file").write_text("a regular file, not a directory")
    store = tmp_path / where
    done = replay("record", "--store", str(store), str(app), cwd=tmp_path)
    assert str(store.parent) in assert_one_line_error(done)
    assert_nothing_happened(tmp_path, store)


@pytest.mark.parametrize("content", [b"just some text\n", b""])
def test_store_that_is_not_a_store_is_never_touched(
    tmp_path: Path, app: Path, content: bytes
) -> None:
    store = tmp_path / "notes.db"
    store.write_bytes(content)
    before = sha256(store)
    done = replay("record", "--store", str(store), str(app), cwd=tmp_path)
    assert "not a replay store" in assert_one_line_error(done)
    assert sha256(store) == before
    assert not (tmp_path / "ran.marker").exists()
    for command in (["ls"], ["show"], ["export"]):
        assert_one_line_error(replay(*command, "--store", str(store), cwd=tmp_path))
    assert sha256(store) == before


def test_another_applications_sqlite_database_is_never_touched(tmp_path: Path, app: Path) -> None:
    store = tmp_path / "theirs.db"
    with sqlite3.connect(store) as db:
        db.execute("create table accounts (id integer primary key, name text)")
        db.execute("insert into accounts (name) values ('ada')")
    db.close()
    before = sha256(store)
    done = replay("record", "--store", str(store), str(app), cwd=tmp_path)
    assert "not a replay store" in assert_one_line_error(done)
    assert sha256(store) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["app.py", "theirs.db"]


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        (["--bogus"], "No such option: --bogus"),
        (["--redact", "(unclosed"], "bad redaction pattern"),
        (["--backend", "fastest"], "--backend must be one of"),
        (["--max-depth", "deep"], "--max-depth"),
        (["--max-items", "-3"], "--max-items"),
    ],
)
def test_bad_options(
    tmp_path: Path, store: Path, app: Path, options: list[str], expected: str
) -> None:
    done = replay("record", "--store", str(store), *options, str(app), cwd=tmp_path)
    assert expected in assert_one_line_error(done)
    assert_nothing_happened(tmp_path, store)


@pytest.mark.skipif(sys.version_info >= (3, 12), reason="sys.monitoring exists on 3.12+")
def test_sysmon_backend_on_311(tmp_path: Path, store: Path, app: Path) -> None:
    done = replay("record", "--store", str(store), "--backend", "sysmon", str(app), cwd=tmp_path)
    assert "3.12" in assert_one_line_error(done)
    assert_nothing_happened(tmp_path, store)


def test_nothing_to_record_and_unknown_command(tmp_path: Path, store: Path) -> None:
    assert_one_line_error(replay("record", "--store", str(store), cwd=tmp_path))
    done = replay("record", "--store", str(store), "--", "no-such-command-xyz", cwd=tmp_path)
    assert "command not found" in assert_one_line_error(done)
    assert done.returncode == 127
    assert not store.exists()


def test_unknown_subcommand(tmp_path: Path) -> None:
    assert_one_line_error(replay("recrod", "app.py", cwd=tmp_path))


def test_reading_commands_on_bad_input(tmp_path: Path) -> None:
    missing = tmp_path / "missing.db"
    for command in (["ls"], ["show"], ["export"]):
        err = assert_one_line_error(replay(*command, "--store", str(missing), cwd=tmp_path))
        assert "does not exist" in err
    assert not missing.exists()

    empty = tmp_path / "empty.db"
    Store.open(empty, mode="w").close()
    done = replay("ls", "--store", str(empty), cwd=tmp_path)
    assert done.returncode == 0
    assert b"No recordings" in done.stdout
    assert replay("ls", "--json", "--store", str(empty), cwd=tmp_path).stdout.strip() == b"[]"
    for rec in ([], ["latest"], ["1"], ["-1"], ["nonsense"]):
        assert_one_line_error(replay("show", *rec, "--store", str(empty), cwd=tmp_path))
    assert_one_line_error(replay("show", "--bogus", "--store", str(empty), cwd=tmp_path))
    done = replay("export", "--format", "xml", "--store", str(empty), cwd=tmp_path)
    assert "--format" in assert_one_line_error(done)
