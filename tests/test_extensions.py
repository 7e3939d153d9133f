"""The optional C parts that need no CPython internals are built, current, and in use.

Each has a Python twin that gives the same result (their own tests compare both), so a missing
build would go unnoticed but for the speed: this checks the install from the source tree built
them (a compiler is on every machine CI and the README's commands run on).
"""

from __future__ import annotations

import platform
from pathlib import Path
from types import ModuleType

import pytest
from replay.storage import codec

from replay import object_records
from replay.recorder import writer

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize(
    ("used", "source"),
    [
        (lambda: codec._accel, "storage/_columns.c"),
        (lambda: codec._accel, "storage/_dumps.c"),
        (lambda: codec._accel, "storage/_zstd.c"),
        (lambda: codec._accel, "storage/_sqlite.c"),
        (lambda: writer._scan, "replay/recorder/_scan.c"),
        (lambda: writer._scan, "replay/recorder/_eventbuffer.h"),
        (lambda: object_records._c_walk, "replay/_expand.c"),
    ],
    ids=[
        "store codec column loops",
        "store codec value writer",
        "store codec chunk compression",
        "store writes through SQLite's C API",
        "writer index scan",
        "writer index scan's event records",
        "readers' expansion of object records",
    ],
)
def test_the_optional_c_part_is_built_and_current(used, source: str) -> None:
    # GIVEN an install from the source tree on CPython
    if platform.python_implementation() != "CPython":
        pytest.skip("the C parts are built for CPython only")
    # THEN the module was built from the current source and is the one replay uses
    module: ModuleType | None = used()
    assert module is not None, f"{source} was not built (pip install -e . shows why)"
    built = Path(module.__file__ or "")
    assert built.stat().st_mtime >= (ROOT / source).stat().st_mtime, (
        f"{built.name} is older than {source}: rebuild it (pip install -e .)"
    )


def test_the_index_scan_reads_a_c_cores_event_buffer_in_place() -> None:
    # GIVEN the C index scan and a C core's event buffer (where both are built)
    from replay.recorder.csysmon import _ctracer  # noqa: PLC0415 - only where it is built

    if writer._scan is None or _ctracer is None:
        pytest.skip("the C scan or the C core is not built here")
    events = _ctracer.EventBuffer([(0, 1, 2, 3, 4, (5, 0), (("a", 1),), None)])
    # THEN the scan takes its records as they are (through the C core's capsule), rather than
    # declining them to the Python loop, which would give the same rows, slower
    found = writer._scan.scan_calls(events, 1, {}, set(), {}, [])
    assert found == ({}, [])
