"""Choosing the per-event core: sys.monitoring on 3.12+, sys.settrace on 3.11, or as forced.

Like coverage.py's core.py: the choice and its reason are kept, so `replay ls`/`show` can say
which core recorded a trace and why. `--backend` forces one; forcing `sysmon` where it cannot
run is an error, not a silent fallback.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any, Protocol

from replay.exceptions import UsageError
from replay.recorder import settrace, sysmon
from replay.recorder.state import RecordingState


class Core(Protocol):
    """What the recorder needs from a per-event core (a C core will implement the same)."""

    name: str

    def start(self) -> None: ...

    def stop(self) -> None: ...


def choose_backend(requested: str) -> tuple[str, str]:
    """The backend to use and why, for `requested` in auto|sysmon|settrace."""
    reason_no_sysmon = sysmon.available()
    if requested == "sysmon":
        if reason_no_sysmon:
            raise UsageError(f"--backend sysmon is not available here: {reason_no_sysmon}")
        return "sysmon", "forced with --backend"
    if requested == "settrace":
        return "settrace", "forced with --backend"
    if reason_no_sysmon:
        return "settrace", reason_no_sysmon
    return "sysmon", f"Python {sys.version_info.major}.{sys.version_info.minor}"


def make_core(
    backend: str,
    state: RecordingState,
    encode_exception: Callable[[BaseException], Any],
) -> Core:
    if backend == "sysmon":
        return sysmon.SysMonitoringCore(state, encode_exception)
    return settrace.SettraceCore(state, encode_exception)
