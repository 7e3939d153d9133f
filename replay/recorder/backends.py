"""Which per-event core records, and why: decided without loading any core.

The choice is separate from the cores (core.py builds them) because two kinds of process make
it. A recorded process makes it as its recording starts. `replay record -- COMMAND` makes it
once, before it runs the command, to refuse a `--backend`, `REPLAY_CORE` or
`REPLAY_VALUE_MODEL` that cannot work in one line rather than in every Python child; that
process records nothing itself, and loading the cores, the encoder and the writer only to ask
cost it 12 ms of its 87 (`-- true`). So this module asks only `sys.monitoring` and whether the
C extension imports.

Like coverage.py's core.py: the choice and its reason are kept, so `replay ls`/`show` can say
which core recorded a trace and why. `--backend` forces one; forcing `sysmon` where it cannot
run is an error, not a silent fallback. Each backend has a pure-Python core and a C one
(`c-sysmon`, `c-settrace`: the `_ctracer` extension) producing the same events faster; the C
core is used when it is built, `REPLAY_CORE=python` forces the Python cores and `REPLAY_CORE=c`
the C one (an error where it cannot run). The core that ran is the recording's `backend`.
"""

from __future__ import annotations

import importlib.util
import os
import sys

from replay.config import ENV_CORE, ENV_VALUE_MODEL, VALUE_MODELS
from replay.exceptions import ReplayError, UsageError

try:
    from replay.recorder import _ctracer
except ImportError as error:  # not built (no compiler), or a Python it does not support
    _ctracer = None
    if importlib.util.find_spec("replay.recorder._ctracer") is None:
        IMPORT_ERROR: str | None = (
            f"replay.recorder._ctracer was not compiled for this Python "
            f"({sys.implementation.name} {sys.version_info.major}.{sys.version_info.minor}; "
            "it is built by pip install where a C compiler is found, for CPython 3.11 to 3.13)"
        )
    else:
        IMPORT_ERROR = f"{type(error).__name__}: {error}"
else:
    IMPORT_ERROR = None

C_CORES = {"sysmon": "c-sysmon", "settrace": "c-settrace"}
"""Backend -> the name of its C core (the `name` of csysmon's and csettrace's core classes)."""

TOOL_PREFERENCE = (3, 4, 2, 0, 5)
"""sys.monitoring tool ids in the order replay tries them. Ids 0 (debugger), 1 (coverage), 2
(profiler) and 5 (optimizer) are conventionally taken by other tools (trap 7); the free ones
come first so that replay coexists with coverage and debuggers."""


def sysmon_unavailable() -> str | None:
    """None if a sys.monitoring core can run here, else the reason it cannot."""
    if not hasattr(sys, "monitoring"):
        return "sys.monitoring needs Python 3.12+"
    if all(sys.monitoring.get_tool(t) is not None for t in TOOL_PREFERENCE):
        return "every sys.monitoring tool id is in use"
    return None


def c_core_unavailable(backend: str) -> str | None:
    """None if the C core of `backend` (sysmon or settrace) can run here, else why not."""
    if _ctracer is None:
        return IMPORT_ERROR
    if backend == "sysmon" and not hasattr(sys, "monitoring"):
        return "sys.monitoring needs Python 3.12+"
    return None


def choose_backend(requested: str) -> tuple[str, str]:
    """The core to use (`c-sysmon`, `sysmon`, `c-settrace` or `settrace`) and why, for
    `requested` in auto|sysmon|settrace and the REPLAY_CORE environment variable."""
    reason_no_sysmon = sysmon_unavailable()
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
    reason_no_c = c_core_unavailable(backend)
    if wanted == "c":
        if reason_no_c:
            raise ReplayError(f"{ENV_CORE}=c but the C core is not built: {reason_no_c}")
        return c_core, f"{why}; C core ({ENV_CORE}=c)"
    if reason_no_c:
        return backend, f"{why}; pure-Python core ({reason_no_c})"
    return c_core, f"{why}; C core"
