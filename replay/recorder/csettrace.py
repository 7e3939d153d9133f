"""The C sys.settrace core: settrace.py's trace functions, implemented in `_ctracer.c`.

The recorder on Python 3.11 (no sys.monitoring) when the extension is built, and on 3.12+ with
`--backend settrace`. Same contract and the same events as `SettraceCore`, step for step (only
`ts` differs): tests/recorder/test_core_parity.py records every fidelity program with both and
compares. The C `Tracer` is installed with `PyEval_SetTrace` (`_ctracer_settrace.c.h`); this
class only starts and stops it, on this thread and, through `threading.settrace`, on the threads
started while it records.
"""

from __future__ import annotations

import dis
import threading
from collections.abc import Callable
from typing import Any

from replay.recorder.backends import c_core_unavailable
from replay.recorder.budget import REVIEW_NS, OverheadBudget
from replay.recorder.csysmon import new_tracer
from replay.recorder.scope import is_replay_code
from replay.recorder.state import RecordingState

_OPCODES = {
    name: dis.opmap[name]
    for name in ("RETURN_VALUE", "RETURN_CONST", "YIELD_VALUE", "RESUME")
    if name in dis.opmap
}
"""The opcodes that tell a return from a yield and an unwinding exception (settrace._leave_kind)."""


def available() -> str | None:
    """None if this core can run here, else the reason it cannot."""
    return c_core_unavailable("settrace")


class CSettraceCore:
    """Records in-scope code through a C trace function (sys.settrace's C level)."""

    name = "c-settrace"

    def __init__(
        self, state: RecordingState, encode_exception: Callable[[BaseException], Any]
    ) -> None:
        self.state = state
        self.encode_exception = encode_exception
        self._tracer = new_tracer(state, encode_exception)

    def steps_taken(self) -> int:
        """The last step number handed out (after stop())."""
        return int(self._tracer.counters()["steps"])

    def set_budget(self, budget: OverheadBudget) -> None:
        """Record hot code at call level only past `budget` (budget.py): the tracer times each
        trace call, charges it to the frame's code object and asks `budget.review` once per
        REVIEW_NS; a demoted code object's frames get no line events (f_trace_lines)."""
        self._tracer.set_budget(budget.review, 0, REVIEW_NS)

    def start(self) -> None:
        # New threads call the tracer as a Python trace function first; it then installs the C
        # one on them (see _ctracer_settrace.c.h).
        self.state.watch_gc()
        self._tracer.settrace_start(_OPCODES, is_replay_code, self.state.collecting)
        threading.settrace(self._tracer)

    def stop(self) -> None:
        self._tracer.settrace_stop()
        threading.settrace(None)  # type: ignore[arg-type]
        if hasattr(threading, "settrace_all_threads"):
            threading.settrace_all_threads(None)  # type: ignore[attr-defined]
        self.state.unwatch_gc()
        self._tracer.close()
