"""`replay ls`, `show` and `export` on a real recording: the bundled demo shop, which fails."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ls_json, replay, replay_all

DEMO = Path(__file__).resolve().parents[2] / "demo"
SECRETS = ("hunter2", "sk-demo-1234")


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(working directory, store) after recording demo/shop.py twice, as `make demo` does."""
    cwd = tmp_path_factory.mktemp("demo")
    shutil.copytree(DEMO, cwd / "demo", ignore=shutil.ignore_patterns("__pycache__"))
    store = cwd / "demo.db"
    for _ in range(2):
        done = replay("record", "--store", str(store), "demo/shop.py", cwd=cwd)
        assert done.returncode == 1
        assert (
            done.stderr.decode().rstrip().endswith("ZeroDivisionError: float division by zero")
        ), done.stderr.decode()
    return cwd, store


def test_ls(demo: tuple[Path, Path]) -> None:
    cwd, store = demo
    recs = ls_json(store, cwd)
    assert [rec["id"] for rec in recs] == [1, 2]  # oldest first
    fields = {
        "id", "name", "command", "start", "started_at", "ended_at", "duration", "steps",
        "status", "exit_code", "exception", "pid", "parent_id", "host", "python", "backend",
    }  # fmt: skip
    for rec in recs:
        assert set(rec) == fields
        assert rec["command"] == "python demo/shop.py"
        assert rec["status"] == "failed"
        assert rec["exit_code"] == 1
        assert rec["steps"] > 50
        assert rec["duration"] >= 0
        assert rec["exception"] == {
            "type": "ZeroDivisionError",
            "message": "float division by zero",
        }
    table = replay("ls", "--store", str(store), cwd=cwd).stdout.decode().splitlines()
    assert table[0].split() == [
        "ID", "START", "DURATION", "STEPS", "STATUS", "COMMAND", "EXCEPTION",
    ]  # fmt: skip
    assert len(table) == 3
    assert "failed" in table[2]
    assert "ZeroDivisionError: float division by zero" in table[2]


def test_show_the_failure(demo: tuple[Path, Path]) -> None:
    cwd, store = demo
    latest, by_id, from_end, older = replay_all(
        [
            ["show", "--store", str(store)],
            ["show", "2", "--store", str(store)],
            ["show", "-1", "--store", str(store)],
            ["show", "-2", "--store", str(store)],
        ],
        cwd,
    )
    assert latest.returncode == 0, latest.stderr
    assert latest.stdout == by_id.stdout == from_end.stdout
    assert older.stdout.startswith(b"Recording 1: ")
    text = latest.stdout.decode()
    assert text.startswith("Recording 2: python demo/shop.py")
    assert "status    failed, exit code 1" in text
    assert "savings_rate  demo/shop.py:34  [raised]" in text
    assert "Uncaught ZeroDivisionError: float division by zero" in text
    frames = text.split("Uncaught ZeroDivisionError", 1)[1]
    # The frames on the exception's path, outermost first, each with its locals.
    order = [
        frames.index(f"  {name}  demo/shop.py") for name in ("main", "process", "savings_rate")
    ]
    assert order == sorted(order)
    innermost = frames.split("savings_rate  demo/shop.py:36", 1)[1]
    assert "total = 0.0" in innermost
    assert "subtotal_amount = 18.9" in innermost
    assert "saved = 18.9" in innermost
    assert "coupon" not in innermost  # another frame's variable
    process = frames.split("process  demo/shop.py:43", 1)[1]
    assert "discount = 1.0" in process
    for secret in SECRETS:
        assert secret not in text


def test_export(demo: tuple[Path, Path]) -> None:
    cwd, store = demo
    out = cwd / "out" / "demo.json"
    out.parent.mkdir()
    to_stdout = replay("export", "--store", str(store), "--format", "json", cwd=cwd)
    assert to_stdout.returncode == 0, to_stdout.stderr
    to_file = replay("export", "1", "--store", str(store), "-o", str(out), cwd=cwd)
    assert to_file.returncode == 0, to_file.stderr
    assert to_file.stdout == b""
    for document in (json.loads(to_stdout.stdout), json.loads(out.read_text())):
        assert {"recording", "functions", "calls", "steps"} <= set(document)
        assert document["recording"]["status"] == "failed"
        assert any(step["function"] == "savings_rate" for step in document["steps"])
    assert json.loads(to_stdout.stdout)["recording"]["id"] == 2
    assert json.loads(out.read_text())["recording"]["id"] == 1


def test_export_never_holds_the_demo_secrets(demo: tuple[Path, Path]) -> None:
    cwd, store = demo
    done = replay("export", "--store", str(store), cwd=cwd)
    assert done.returncode == 0, done.stderr
    document = json.loads(done.stdout)
    for secret in SECRETS:
        leaks = [step for step in document["steps"] if secret in json.dumps(step)]
        assert not leaks, f"{secret!r} is in the export: {leaks[0]}"
        assert secret not in done.stdout.decode()


def test_export_to_an_unwritable_place(demo: tuple[Path, Path]) -> None:
    cwd, store = demo
    done = replay("export", "--store", str(store), "-o", str(cwd / "nowhere" / "x.json"), cwd=cwd)
    assert done.returncode != 0
    assert len(done.stderr.decode().strip().splitlines()) == 1
    assert not (cwd / "nowhere").exists()


def test_ls_pipe_closed_early(demo: tuple[Path, Path]) -> None:
    cwd, store = demo
    pipeline = subprocess.run(
        f"{sys.executable} -m replay export --store {store} | head -c 100",
        shell=True,
        cwd=cwd,
        capture_output=True,
        check=False,
    )
    assert b"Traceback" not in pipeline.stderr
