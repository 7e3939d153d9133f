"""The sys.settrace core in Python: the reference that `c-settrace` (the C twin, csettrace.py) must
match event for event, and the recorder on 3.11 (no sys.monitoring) where the C extension is not
built. `--backend settrace` picks this backend on 3.12+.

settrace calls the global trace function for every new Python frame in the process, in or out
of scope; that cost cannot be avoided on 3.11. Out-of-scope frames get no local trace function
(so no line events), except a frame called directly from in-scope code, which gets a small one
that only records its return value as the caller's EXTERNAL step. Calls into C functions are not
visible to settrace and are not recorded on this backend.

settrace does not tell a return from a yield or an unwinding exception: the opcode at `f_lasti`
tells them apart. Nor does it report that an exception was caught, and "a line runs after the
exception" is not enough to say so (a `finally` block runs lines, then re-raises): this backend
records no HANDLED steps; a caught exception shows as its RAISE and the frame going on.
"""

from __future__ import annotations

import dis
import sys
import threading
import time
from collections.abc import Callable
from types import CodeType, FrameType
from typing import Any

from replay.events import (
    CALL,
    EXTERNAL,
    LINE,
    RAISE,
    RESUME,
    RETURN,
    UNWIND,
    V_REDACTED,
    YIELD,
)
from replay.recorder.budget import CALLS, LINES, OFF, CostMeter, OverheadBudget
from replay.recorder.scope import is_replay_code
from replay.recorder.state import (
    BATCH_EVENTS,
    TS_MASK,
    FrameState,
    RecordingState,
    note_unnamed,
    settle_unnamed,
    touched_now,
)

_YIELD = dis.opmap["YIELD_VALUE"]
_RESUME = dis.opmap.get("RESUME", -1)
_RETURNS = frozenset(
    dis.opmap[name] for name in ("RETURN_VALUE", "RETURN_CONST") if name in dis.opmap
)
_UNSEEN_EXCEPTION = ("BaseException", "(the exception was not seen by settrace)", None)
_GENERATOR_FLAGS = 0x20 | 0x80 | 0x200  # CO_GENERATOR | CO_COROUTINE | CO_ASYNC_GENERATOR


def _is_start(frame: FrameType) -> bool:
    """Whether a 'call' event starts the frame (RESUME 0), rather than resuming a generator."""
    code = frame.f_code.co_code
    lasti = frame.f_lasti
    return 0 <= lasti < len(code) - 1 and code[lasti] == _RESUME and code[lasti + 1] == 0


def _leave_kind(frame: FrameType) -> int:
    """RETURN, YIELD or UNWIND for a settrace 'return' event, from the opcode being executed."""
    code = frame.f_code
    lasti = frame.f_lasti
    op = code.co_code[lasti] if lasti >= 0 else -1
    if op in _RETURNS:
        return RETURN
    if code.co_flags & _GENERATOR_FLAGS and (
        op == _YIELD or (op == _RESUME and lasti >= 2 and code.co_code[lasti - 2] == _YIELD)
    ):
        return YIELD
    return UNWIND


class SettraceCore:
    """Records in-scope code through sys.settrace / threading.settrace."""

    name = "settrace"

    def __init__(
        self, state: RecordingState, encode_exception: Callable[[BaseException], Any]
    ) -> None:
        self.state = state
        self.encode_exception = encode_exception
        self._previous: Any = None
        self._global: Callable[..., Any] | None = None
        self._meter: CostMeter | None = None

    def steps_taken(self) -> int:
        """The last step number handed out (after stop(): reading it takes the next one)."""
        return next(self.state.steps) - 1

    def set_budget(self, budget: OverheadBudget) -> None:
        """Record hot code at call level only past `budget` (before start): each trace call is
        timed and charged to its frame's code (budget.CostMeter)."""
        self._meter = CostMeter(budget, self.state)

    def start(self) -> None:
        self._global = self._build()
        self.state.watch_gc()
        self._previous = sys.gettrace()
        threading.settrace(self._global)
        sys.settrace(self._global)

    def stop(self) -> None:
        sys.settrace(None)
        threading.settrace(None)  # type: ignore[arg-type]
        if hasattr(threading, "settrace_all_threads"):
            threading.settrace_all_threads(None)  # type: ignore[attr-defined]
        self.state.unwatch_gc()

    def _build(self) -> Callable[..., Any]:  # noqa: PLR0915
        """The global and local trace functions, as closures over this recording (hot path)."""
        state = self.state
        now = time.perf_counter_ns
        t0 = state.t0
        steps = state.steps
        calls = state.calls
        codes = state.codes
        scope_wants = state.scope.wants
        encode_named = state.encode_named
        diff_locals = state.diff_locals  # tree or object-record changes (versions.py)
        encode_exception = self.encode_exception
        suspended = state.suspended
        local = state.local
        thread_state = state.thread_state
        hand_off = state.hand_off
        fault = state.fault
        is_secret = state.is_secret
        switch = state.switch
        collecting = state.collecting
        out_of_scope: set[int] = set()
        meter = self._meter
        # With a budget (budget.py): code id -> CALLS or OFF for the code objects it demoted.
        levels: dict[int, int] = meter.levels if meter is not None else {}

        def thread() -> Any:
            try:
                return local.ts
            except AttributeError:
                return thread_state()

        def emit(ts: Any, event: tuple) -> None:
            events = ts.events
            events.append(event)
            if len(events) >= BATCH_EVENTS:
                hand_off(ts)

        def traced(code: CodeType) -> bool:
            key = id(code)
            if key in codes:
                return True
            if key in out_of_scope:
                return False
            if scope_wants(code.co_filename):
                state.register_code(code)
                return True
            out_of_scope.add(key)
            return False

        def global_trace(frame: FrameType, event: str, arg: Any) -> Any:
            if event != "call":
                return None
            try:
                code = frame.f_code
                if not traced(code):
                    caller = frame.f_back
                    if (
                        caller is not None
                        and id(caller.f_code) in codes
                        and not collecting[0]
                        and not (levels and levels.get(id(caller.f_code), LINES) >= CALLS)
                        and not is_replay_code(code.co_filename)
                    ):
                        return external(frame, caller)
                    return None
                level = levels.get(id(code), LINES) if levels else LINES
                if level >= CALLS:
                    frame.f_trace_lines = False  # the budget demoted it: no lines
                ts = thread()
                st = suspended.pop(id(frame), None)
                if st is not None and _is_start(frame):
                    st = None  # a new frame at a dead generator's address (ids are reused)
                if st is not None:
                    ts.stack.append(st)
                    changes, deleted = diff_locals(st, frame, encode_named)
                    emit(ts, (RESUME, next(steps), (now() - t0) & TS_MASK, st.call_id,
                              frame.f_lineno, None, changes, deleted))  # fmt: skip
                    return local_trace
                if level == OFF:
                    return None  # the budget turned its new calls off (budget.py)
                stack = ts.stack
                parent = stack[-1].call_id if stack else 0
                st = FrameState(next(calls), id(frame), code, codes[id(code)], switch[1])
                st.line = frame.f_lineno
                changes, _ = diff_locals(st, frame, encode_named)
                if ts.unnamed is not None:
                    settle_unnamed(ts, st, changes, False)
                stack.append(st)
                emit(ts, (CALL, next(steps), (now() - t0) & TS_MASK, st.call_id, st.line,
                          (codes[id(code)].code_id, parent), changes, None))  # fmt: skip
            except Exception as exc:
                fault(exc)
                return None
            return local_trace

        def state_of(frame: FrameType) -> tuple[Any, FrameState | None]:
            ts = thread()
            stack = ts.stack
            for depth in range(len(stack) - 1, -1, -1):
                if stack[depth].frame_id == id(frame):
                    del stack[depth + 1 :]
                    return ts, stack[depth]
            return ts, None

        def local_trace(frame: FrameType, event: str, arg: Any) -> Any:
            # Hot path: one call per line of in-scope code.
            try:
                ts = thread()
                stack = ts.stack
                st = stack[-1] if stack and stack[-1].frame_id == id(frame) else None
                if st is None:
                    ts, st = state_of(frame)
                    if st is None:
                        return local_trace
                if event == "line":
                    if levels and levels.get(id(st.code), LINES) >= CALLS:
                        frame.f_trace_lines = False  # demoted while this frame ran
                        return local_trace
                    changes, deleted = diff_locals(
                        st, frame, encode_named, touched_now(st, ts, switch)
                    )
                    if ts.unnamed is not None:
                        settle_unnamed(ts, st, changes, True)
                    st.line = frame.f_lineno
                    events = ts.events
                    events.append((LINE, next(steps), (now() - t0) & TS_MASK, st.call_id, st.line,
                                   None, changes, deleted))  # fmt: skip
                    if len(events) >= BATCH_EVENTS:
                        hand_off(ts)
                elif event == "exception":
                    changes, deleted = diff_locals(
                        st, frame, encode_named, touched_now(st, ts, switch)
                    )
                    if ts.unnamed is not None:
                        settle_unnamed(ts, st, changes, False)
                    st.line = frame.f_lineno
                    exc = encode_exception(arg[1])
                    st.raised = True
                    st.raised_exc = exc
                    emit(ts, (RAISE, next(steps), (now() - t0) & TS_MASK, st.call_id, st.line,
                              exc, changes, deleted))  # fmt: skip
                elif event == "return":
                    kind = _leave_kind(frame)
                    changes, deleted = diff_locals(
                        st, frame, encode_named, touched_now(st, ts, switch)
                    )
                    if ts.unnamed is not None:
                        settle_unnamed(ts, st, changes, False)
                    step = next(steps)
                    if kind == UNWIND:
                        payload = st.raised_exc if st.raised else _UNSEEN_EXCEPTION
                    elif kind == RETURN and is_secret(frame.f_code.co_name):
                        payload = (V_REDACTED, type(arg).__name__)  # def get_password(): ...
                    else:
                        payload = encode_named("", arg)
                        note_unnamed(ts, step, payload)
                    st.raised = False
                    stack.pop()
                    if kind == YIELD:
                        suspended[st.frame_id] = st
                    emit(ts, (kind, step, (now() - t0) & TS_MASK, st.call_id, frame.f_lineno,
                              payload, changes, deleted))  # fmt: skip
            except Exception as exc:
                fault(exc)
            return local_trace

        def external(frame: FrameType, caller: FrameType) -> Callable[..., Any] | None:
            """A local tracer for an out-of-scope frame called from in-scope code."""
            frame.f_trace_lines = False
            code = frame.f_code
            callee = f"{frame.f_globals.get('__name__', '?')}.{code.co_qualname}"
            last_exc: list[Any] = []
            # Only the caller's id: holding the frame would keep its locals alive (trap 2).
            caller_id = id(caller)

            def external_trace(frame: FrameType, event: str, arg: Any) -> Any:
                try:
                    if event == "exception":
                        last_exc[:] = [encode_exception(arg[1])]  # encoded: no reference kept
                    elif event == "return":
                        kind = _leave_kind(frame)
                        if kind == YIELD:
                            return external_trace  # suspended (an awaited library coroutine)
                        ts = thread()
                        stack = ts.stack
                        if not stack or stack[-1].frame_id != caller_id:
                            return None
                        st = stack[-1]
                        step = next(steps)
                        if kind == UNWIND and last_exc:
                            payload = (callee, True, None, last_exc[0])
                        elif is_secret(callee):  # keyring.get_password(...)
                            payload = (callee, True, (V_REDACTED, type(arg).__name__), None)
                        else:
                            value = encode_named("", arg)
                            note_unnamed(ts, step, value)
                            payload = (callee, True, value, None)
                        emit(ts, (EXTERNAL, step, (now() - t0) & TS_MASK, st.call_id, st.line,
                                  payload, None, None))  # fmt: skip
                except Exception as exc:
                    fault(exc)
                return external_trace

            if meter is None:
                return external_trace
            caller_code = caller.f_code  # the caller's EXTERNAL step: its cost

            def external_timed(frame: FrameType, event: str, arg: Any) -> Any:
                start = clock()
                result = external_trace(frame, event, arg)
                charge(caller_code, start)
                return external_timed if result is not None else None

            return external_timed

        if meter is None:
            return global_trace
        # With a budget, each trace call runs inside a timing wrapper that charges its time to
        # the frame's code; the trace functions return `local_trace`, rebound here to the wrapper.
        clock = time.perf_counter_ns
        charge = meter.charge
        untimed_global, untimed_local = global_trace, local_trace

        def global_timed(frame: FrameType, event: str, arg: Any) -> Any:
            start = clock()
            result = untimed_global(frame, event, arg)
            charge(frame.f_code, start)
            return result

        def local_timed(frame: FrameType, event: str, arg: Any) -> Any:
            start = clock()
            result = untimed_local(frame, event, arg)
            charge(frame.f_code, start)
            return result

        local_trace = local_timed
        return global_timed
