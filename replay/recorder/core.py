"""Choosing the per-event core: sys.monitoring on 3.12+, sys.settrace on 3.11, or as forced.

Like coverage.py's core.py: the choice and its reason are kept, so `replay ls`/`show` can say
which core recorded a trace and why. `--backend` forces one; forcing `sysmon` where it cannot
run is an error, not a silent fallback.

Each backend has a pure-Python core and a C one (`c-sysmon`, `c-settrace`: the `_ctracer`
extension) producing the same events faster. The C core is used when it is built;
`REPLAY_CORE=python` forces the Python cores and `REPLAY_CORE=c` the C one (an error where it
cannot run). The core that ran is the recording's `backend`.

`REPLAY_VALUE_MODEL=records` writes object records instead of trees (versions.py), with either
core (the C core makes most records in C, `fp_records`, and asks the Python record encoder for
the rest).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import Any, Protocol

from replay.config import ENV_CORE, ENV_VALUE_MODEL, VALUE_MODELS
from replay.exceptions import ReplayError, UsageError
from replay.recorder import csettrace, csysmon, settrace, sysmon
from replay.recorder.budget import OverheadBudget
from replay.recorder.state import RecordingState

C_CORES = {"sysmon": csysmon.CSysMonitoringCore.name, "settrace": csettrace.CSettraceCore.name}
"""Backend -> the name of its C core."""


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


def choose_backend(requested: str) -> tuple[str, str]:
    """The core to use (`c-sysmon`, `sysmon` or `settrace`) and why, for `requested` in
    auto|sysmon|settrace and the REPLAY_CORE environment variable."""
    reason_no_sysmon = sysmon.available()
    if requested == "sysmon":
        if reason_no_sysmon:
            raise UsageError(f"--backend sysmon is not available here: {reason_no_sysmon}")
        backend, why = "sysmon", "forced with --backend"
    elif requested == "settrace":
        backend, why = "settrace", "forced with --backend"
    elif reason_no_sysmon:
        backend, why = "settrace", reason_no_sysmon
    else:
        backend, why = "sysmon", f"Python {sys.version_info.major}.{sys.version_info.minor}"
    return _choose_core(backend, why)


def value_model() -> str:
    """`trees` or `records`, from REPLAY_VALUE_MODEL (docs/internals.md, "The plan")."""
    wanted = os.environ.get(ENV_VALUE_MODEL, "").strip().lower() or "trees"
    if wanted not in VALUE_MODELS:
        raise UsageError(f"{ENV_VALUE_MODEL} must be 'trees' or 'records', not {wanted!r}")
    return wanted


def _choose_core(backend: str, why: str) -> tuple[str, str]:
    wanted = os.environ.get(ENV_CORE, "").strip().lower() or "auto"
    if wanted not in ("auto", "c", "python"):
        raise UsageError(f"{ENV_CORE} must be 'c' or 'python', not {wanted!r}")
    if value_model() == "records":
        why = f"{why}; object records ({ENV_VALUE_MODEL}=records)"
    if wanted == "python":
        return backend, f"{why}; pure-Python core ({ENV_CORE}=python)"
    c_core = C_CORES[backend]
    reason_no_c = (csysmon if backend == "sysmon" else csettrace).available()
    if wanted == "c":
        if reason_no_c:
            raise ReplayError(f"{ENV_CORE}=c but the C core is not built: {reason_no_c}")
        return c_core, f"{why}; C core ({ENV_CORE}=c)"
    if reason_no_c:
        return backend, f"{why}; pure-Python core ({reason_no_c})"
    return c_core, f"{why}; C core"


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
