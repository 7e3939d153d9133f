"""Building the per-event core that backends.py chose: the recorder's interface to it.

Each backend has a pure-Python core and a C one (`c-sysmon`, `c-settrace`: the `_ctracer`
extension) producing the same events faster; which one records, and why, is decided in
backends.py (re-exported here), which loads none of them.

`REPLAY_VALUE_MODEL=records` writes object records instead of trees (versions.py), with either
core (the C core makes most records in C, `fp_records`, and asks the Python record encoder for
the rest).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from replay.recorder import csettrace, csysmon, settrace, sysmon
from replay.recorder.backends import C_CORES, choose_backend, value_model
from replay.recorder.budget import OverheadBudget
from replay.recorder.state import RecordingState

__all__ = ["C_CORES", "Core", "choose_backend", "make_core", "value_model"]


class Core(Protocol):
    """What the recorder needs from a per-event core (Python or C)."""

    name: str

    def start(self) -> None: ...

    def stop(self) -> None: ...

    def steps_taken(self) -> int:
        """The last step number handed out (recorded, or dropped by `--on-backlog drop`); only
        after stop()."""
        ...

    def set_budget(self, budget: OverheadBudget) -> None:
        """Record hot code at call level past the budget (budget.py), then not at all (before
        start)."""
        ...


def make_core(
    backend: str,
    state: RecordingState,
    encode_exception: Callable[[BaseException], Any],
) -> Core:
    if backend == csysmon.CSysMonitoringCore.name:
        return csysmon.CSysMonitoringCore(state, encode_exception)
    if backend == csettrace.CSettraceCore.name:
        return csettrace.CSettraceCore(state, encode_exception)
    if backend == "sysmon":
        return sysmon.SysMonitoringCore(state, encode_exception)
    return settrace.SettraceCore(state, encode_exception)
