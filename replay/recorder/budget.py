"""The overhead budget (`replay record --max-overhead`): hot code recorded at call level only.

Why: recording every line of a function that runs a million times a second costs far more than
the function itself, and in production the engineer would rather have the service at its usual
speed and that function's calls (arguments, return values, exceptions) than every line of it.
With a budget, the core measures the time it spends in its callbacks for each code object, and
every `REVIEW_NS` of run time this module compares the recorder's time with the program's. When
the recorder took more than `max_overhead` times the program's own time, the code objects that
cost the most are demoted, hottest first, until what they cost covers the excess: from then on
they get only their call-level events (PY_START, PY_RETURN, yields, exceptions), no lines and no
calls into libraries. Each demotion is recorded where it happens as a GAP step with reason
`budget`, so readers show "lines not recorded from here" instead of silence.

A function whose calls alone still cost more than the budget allows (their arguments and
results are encoded at every call: a request handler called with a large dict costs far more
than its body) is demoted once more, to *not recorded*: its new calls are not recorded at all
(sys.monitoring stops calling back for them; settrace still calls, and the core ignores them),
calls already running end as recorded, and a second GAP step says so. Without that second rung
a budget could not hold: on a JSON request handler, call level alone cost about 15 times the
program's own time.

A demotion is for the rest of the recording: a function that was too hot once is likely to be
again, and switching back and forth would make the recording harder to read than a clear gap.
The cores own the measuring (it is per event); this module owns the decision, the same for
every core.

The writer thread's time counts too (`other_ns`): it indexes, encodes and compresses the events
on the same GIL, so it takes about as much from the program as the callbacks do. It is charged to
the code objects in proportion to their callback time (their events are what it writes), so
demoting a function is expected to save its share of the writer as well.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from types import CodeType
from typing import TYPE_CHECKING, Any, NamedTuple

from replay.events import GAP
from replay.recorder.state import TS_MASK

if TYPE_CHECKING:
    from replay.recorder.state import RecordingState

__all__ = [
    "CALLS",
    "GAP_REASON_BUDGET",
    "LINES",
    "OFF",
    "REVIEW_NS",
    "CostMeter",
    "OverheadBudget",
    "parse_max_overhead",
]

GAP_REASON_BUDGET = "budget"
"""The reason of the GAP step recorded where a code object is demoted."""

# How much of a code object is recorded (its level), from full to nothing: each demotion moves
# it one level down. (The C core numbers them alike: _ctracer.c, CodeEntry.demoted.)
LINES = 0
"""Every line, call and library call (no budget, or not demoted yet)."""
CALLS = 1
"""Its calls only: arguments, results, exceptions."""
OFF = 2
"""Its new calls not at all."""

REVIEW_NS = 25_000_000
"""How much run time (ns) is looked at per decision: long enough to average over many calls,
short enough that the hot code of a program that runs a fraction of a second is caught while it
still runs (json_requests at 0.043 s untraced, under --max-overhead 100%: 0.32 s with 100 ms
windows, 0.23-0.24 s with 25 or 50 ms ones, 0.17 s with 12.5 ms ones, which would also demote
a function for one busy moment more often). A review costs tens of microseconds."""


def parse_max_overhead(text: str) -> float:
    """`--max-overhead` as a fraction of the program's own time: "50%" -> 0.5, "2x" -> 1.0 (the
    recording may take 2x the untraced time), a bare number is a percentage. ValueError with a
    sentence for anything else."""
    raw = text.strip().lower()
    try:
        if raw.endswith("%"):
            value = float(raw[:-1]) / 100
        elif raw.endswith("x"):
            value = float(raw[:-1]) - 1
        else:
            value = float(raw) / 100
    except ValueError:
        raise ValueError(
            f"--max-overhead takes a percentage such as 50% or a factor such as 2x, not {text!r}"
        ) from None
    if not value > 0 or value == float("inf"):
        raise ValueError(f"--max-overhead must be above 0% (1x), not {text!r}")
    return value


class Demotion(NamedTuple):
    """One code object moved down to `level` (CALLS or OFF), and the sentence its GAP step
    carries."""

    code: Any
    level: int
    detail: str


class OverheadBudget:
    """Decides which code objects to demote, from the recorder time each one cost in a window."""

    def __init__(self, max_overhead: float, other_ns: Callable[[], int] | None = None) -> None:
        """`other_ns()`: the recorder's time outside the callbacks so far, in ns (the writer
        thread's CPU time), or None to count the callbacks alone."""
        self.max_overhead = max_overhead
        self.demoted = 0
        self.other_ns = other_ns
        self._other_seen = other_ns() if other_ns is not None else 0

    def review(self, window_ns: int, costs: Iterable[tuple[Any, str, int, int]]) -> list[Demotion]:
        """`costs`: (code, its qualified name, recorder ns spent on it, its level: LINES or
        CALLS) over the last `window_ns` of wall time. Returns the code objects to demote now,
        each one level down (possibly none)."""
        costs = sorted(costs, key=lambda c: c[2], reverse=True)
        spent = sum(c[2] for c in costs)
        other = 0
        if self.other_ns is not None:
            now = self.other_ns()
            other = max(now - self._other_seen, 0)
            self._other_seen = now
        if spent <= 0:
            return []  # nothing to demote: the writer is only writing what came before
        total = spent + other
        program = max(window_ns - total, 1)
        allowed = self.max_overhead * program
        excess = total - allowed
        if excess <= 0:
            return []
        scale = total / spent  # each code object's callbacks and its share of the writer
        out: list[Demotion] = []
        for code, name, ns, level in costs:
            if excess <= 0 or ns <= 0:
                break
            if level >= OFF:
                continue
            cost = ns * scale
            # Its share of the wall time (the recorder's own share can exceed the program's by
            # any factor, which reads as nonsense once the program barely ran in the window).
            share = cost / max(window_ns, 1)
            if level == LINES:
                what = f"{name} recorded at call level from here: recording its lines took"
            else:
                what = f"{name} not recorded from here: recording its calls alone took"
            out.append(
                Demotion(
                    code,
                    level + 1,
                    f"{what} {share:.0%} of the run time, over the --max-overhead budget of "
                    f"{self.max_overhead:.0%} of the program's own time",
                )
            )
            excess -= cost
        self.demoted += len(out)
        return out


class CostMeter:
    """The Python cores' side of a budget (the C core's is in _ctracer.c, "The overhead
    budget"): the recorder time charged to each code object, a review once per REVIEW_NS of run
    time, the level of each code object it demoted, and the GAP step that says so, recorded on
    the thread that reviewed. The cores read `levels` (code id -> CALLS or OFF; absent: LINES) to
    record less of a demoted code object; `demote(code, level)` lets a core act at once (the
    sys.monitoring core changes the code object's local events)."""

    def __init__(
        self,
        budget: OverheadBudget,
        state: RecordingState,
        demote: Callable[[CodeType, int], None] | None = None,
    ) -> None:
        self.budget = budget
        self.state = state
        self.demote = demote
        self.levels: dict[int, int] = {}
        # Keyed by id(code): hashing a code object hashes its bytecode and constants.
        self._costs: dict[int, int] = {}
        self._window_start = time.perf_counter_ns()

    def charge(self, code: CodeType, start: int) -> None:
        """After a callback that began at `start` (perf_counter_ns): its time goes to `code`,
        and the window is reviewed when it is over (at the next callback of recorded code). A
        failing review is a recorder fault."""
        now = time.perf_counter_ns()
        code_id = id(code)
        if self.levels.get(code_id, LINES) < OFF:
            costs = self._costs
            costs[code_id] = costs.get(code_id, 0) + now - start
        # Reviewed from recorded code only, inside a recorded call: its GAP step then belongs to
        # that call (not to no call, after the last frame's return).
        if now - self._window_start >= REVIEW_NS and code_id in self.state.codes:
            try:
                ts = self.state.local.ts
            except AttributeError:
                return
            if not ts.stack:
                return
            try:
                self._review(now, ts)
            except Exception as exc:
                self.state.fault(exc)

    def _review(self, now: int, ts: Any) -> None:
        state, levels = self.state, self.levels
        codes = state.codes  # in-scope code only (not the out-of-scope callees the cores watch)
        spent = []
        for code_id, ns in self._costs.items():
            info = codes.get(code_id)
            if info is not None:
                spent.append((info.code, info.code.co_qualname, ns, levels.get(code_id, LINES)))
        self._costs.clear()
        elapsed = now - self._window_start
        self._window_start = now
        for demotion in self.budget.review(elapsed, spent):
            code = demotion.code
            if levels.get(id(code), LINES) >= demotion.level:
                continue
            levels[id(code)] = demotion.level
            if self.demote is not None:
                self.demote(code, demotion.level)
            st = ts.stack[-1]
            ts.events.append(
                (GAP, next(state.steps), (now - state.t0) & TS_MASK, st.call_id, st.line,
                 (GAP_REASON_BUDGET, demotion.detail), None, None)
            )  # fmt: skip
