"""Recordings of the test programs, made once per session by the real recorder.

Each program in programs/ is recorded three times in a subprocess: with the recorder's usual
chunks (4096 events), with 50-event chunks, and with 50-event lists joined by the writer into
chunks of up to 200 (record_small_chunks.py), so that chunk boundaries, checkpoints, digests
and subtree skips are all exercised on small programs. The engine here makes an inner
checkpoint every 50 events of a bigger chunk (INNER_EVENTS, 4096 in use), so that those are
exercised too, on the usual and the joined chunks.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from engine_reference import Reference

import replay.engine.index as engine_index

engine_index.INNER_EVENTS = 50

HERE = Path(__file__).parent
PROGRAMS = ("recursion", "generators", "exceptions", "threads")
VARIANTS = {"default": None, "small": 50, "joined": 50}


def record(
    program: str, store: Path, chunk_events: int | None = None, joined: bool = False
) -> subprocess.CompletedProcess:
    """Record programs/PROGRAM.py into `store` with the real recorder, in a subprocess."""
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    if chunk_events is None:
        command = [sys.executable, "-m", "replay", "record"]
    else:
        script = str(HERE / "record_small_chunks.py")
        command = [sys.executable, script, str(chunk_events), "record"]
    if joined:
        command.insert(3, "joined")
        env["REPLAY_INJECT_WRITER_DELAY"] = "0.01"  # lists wait for the writer, to be joined
    done = subprocess.run(
        [*command, "--store", str(store), f"{program}.py"],
        cwd=HERE / "programs",
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,  # the exceptions program ends with an uncaught exception, on purpose
    )
    assert store.exists(), done.stderr
    return done


@pytest.fixture(scope="session")
def recordings(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, str], Path]:
    """(program, variant) -> store path, each holding one finished recording."""
    directory = tmp_path_factory.mktemp("engine-recordings")
    out = {}
    for program in PROGRAMS:
        for variant, size in VARIANTS.items():
            store = directory / f"{program}-{variant}.db"
            record(program, store, size, joined=variant == "joined")
            out[(program, variant)] = store
    return out


@pytest.fixture(scope="session")
def references(recordings: dict[tuple[str, str], Path]) -> dict[tuple[str, str], Reference]:
    return {key: Reference(str(path)) for key, path in recordings.items()}
