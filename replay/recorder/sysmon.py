"""The sys.monitoring core (PEP 669, Python 3.12+): the recorder's hot path on modern Pythons.

How it keeps out-of-scope code cheap: PY_START is the only location event enabled globally. The
first time a code object starts, its file is checked once; out-of-scope code gets DISABLE and
never calls back again, in-scope code gets the full set of local events (LINE, returns, yields,
call sites) through `set_local_events`. Exception events cannot be set per code object, so those
callbacks check the code's scope with one dict lookup and return.

Each callback is a closure over local names (cheaper than attribute lookups on every event) and
catches every Exception: a fault in the recorder is counted, never raised into the program.
KeyboardInterrupt and SystemExit belong to the program and pass through.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterable
from types import CodeType
from typing import Any

from replay.events import (
    CALL,
    EXTERNAL,
    HANDLED,
    LINE,
    RAISE,
    RESUME,
    RETURN,
    THROW,
    UNWIND,
    V_REDACTED,
    YIELD,
)
from replay.recorder.backends import TOOL_PREFERENCE, sysmon_unavailable
from replay.recorder.budget import CALLS, OFF, CostMeter, OverheadBudget
from replay.recorder.callees import callee_name, python_code
from replay.recorder.state import (
    BATCH_EVENTS,
    TS_MASK,
    FrameState,
    RecordingState,
    note_unnamed,
    settle_unnamed,
    touched_now,
)

_TOOL_NAME = "replay"


def acquire_tool() -> int:
    """Take the first free tool id in `TOOL_PREFERENCE` (RuntimeError when none is free)."""
    mon = sys.monitoring
    for tool in TOOL_PREFERENCE:
        if mon.get_tool(tool) is None:
            mon.use_tool_id(tool, _TOOL_NAME)
            return tool
    raise RuntimeError("every sys.monitoring tool id is in use")


def local_events() -> int:
    """The events an in-scope code object gets (set_local_events), the same for every core."""
    ev = sys.monitoring.events
    return (
        ev.JUMP
        | ev.STOP_ITERATION
        | ev.PY_RETURN
        | ev.PY_YIELD
        | ev.PY_RESUME
        | ev.LINE
        | ev.CALL
        | ev.C_RETURN
        | ev.C_RAISE
    )


def call_level_events() -> int:
    """The local events of a code object the overhead budget demoted (budget.py): returns,
    yields and resumes; with the global PY_START, PY_UNWIND, PY_THROW and exception events that
    is its calls, arguments, results and exceptions, without its lines or library calls."""
    ev = sys.monitoring.events
    return ev.STOP_ITERATION | ev.PY_RETURN | ev.PY_YIELD | ev.PY_RESUME


def install(tool: int, callbacks: dict[int, Callable[..., Any]]) -> None:
    """Register the callbacks and switch on the global events (PY_START and exceptions)."""
    mon = sys.monitoring
    ev = mon.events
    for event, callback in callbacks.items():
        mon.register_callback(tool, event, callback)
    # DISABLE is remembered per location across tool reuse: start from a clean slate.
    mon.restart_events()
    mon.set_events(tool, ev.PY_START | ev.PY_UNWIND | ev.PY_THROW | ev.RAISE | ev.EXCEPTION_HANDLED)


def uninstall(tool: int, codes: Iterable[CodeType]) -> None:
    """Undo `install` and every set_local_events on `codes`, then give the tool id back."""
    mon = sys.monitoring
    mon.set_events(tool, 0)
    for code in codes:
        mon.set_local_events(tool, code, 0)
    for event in vars(mon.events).values():
        if isinstance(event, int) and event and (event & (event - 1)) == 0:
            mon.register_callback(tool, event, None)
    mon.free_tool_id(tool)


def available() -> str | None:
    """None if this core can run here, else the reason it cannot."""
    return sysmon_unavailable()


class SysMonitoringCore:
    """Records in-scope code through sys.monitoring callbacks."""

    name = "sysmon"

    def __init__(
        self, state: RecordingState, encode_exception: Callable[[BaseException], Any]
    ) -> None:
        self.state = state
        self.encode_exception = encode_exception
        self.tool: int | None = None
        self._externals: set[int] = set()
        self._budget: OverheadBudget | None = None
        self._levels: dict[int, int] = {}
        """With a budget: the code objects it demoted (id -> budget.CALLS or budget.OFF)."""

    def steps_taken(self) -> int:
        """The last step number handed out (after stop(): reading it takes the next one)."""
        return next(self.state.steps) - 1

    def set_budget(self, budget: OverheadBudget) -> None:
        """Record hot code at call level only past `budget` (before start)."""
        self._budget = budget

    def start(self) -> None:
        self.tool = acquire_tool()
        if self._budget is None:
            callbacks = self._callbacks()
        else:
            meter = CostMeter(self._budget, self.state, self._demote)
            self._levels = meter.levels  # before the callbacks read it
            # Each callback then runs inside a timing wrapper: one more frame above the program's.
            callbacks = self._budgeted(self._callbacks(wrapped=True), meter.charge)
        install(self.tool, callbacks)

    def _demote(self, code: CodeType, level: int) -> None:
        """The budget demoted `code` (CostMeter): at CALLS it keeps only its call-level events;
        at OFF, py_start turns its new calls away and its running calls keep their returns."""
        if level == CALLS and self.tool is not None:
            sys.monitoring.set_local_events(self.tool, code, call_level_events())

    @staticmethod
    def _budgeted(
        callbacks: dict[int, Callable[..., Any]], charge: Callable[[Any, int], None]
    ) -> dict[int, Callable[..., Any]]:
        """The callbacks, each timed and its time charged to its code object (every event's
        first argument; CostMeter.charge reviews the budget once per REVIEW_NS)."""
        clock = time.perf_counter_ns

        def timed(callback: Callable[..., Any]) -> Callable[..., Any]:
            def charged(code: Any, *args: Any) -> Any:
                start = clock()
                result = callback(code, *args)
                charge(code, start)
                return result

            return charged

        return {event: timed(callback) for event, callback in callbacks.items()}

    def stop(self) -> None:
        if self.tool is None:
            return
        externals = [_code_by_id.pop(code_id, None) for code_id in list(self._externals)]
        codes = [info.code for info in list(self.state.codes.values())]
        uninstall(self.tool, codes + [code for code in externals if code is not None])
        self.tool = None

    def _callbacks(self, *, wrapped: bool = False) -> dict[int, Callable[..., Any]]:  # noqa: PLR0915
        """Build the callbacks as closures over this recording's state (the hot path).

        `wrapped`: each callback will be called by a wrapper (`_budgeted`), so the program's
        frames are one level further up the stack than `getframe` is asked for."""
        state = self.state
        mon = sys.monitoring
        ev = mon.events
        tool = self.tool
        DISABLE = mon.DISABLE
        in_scope_events = local_events()
        getframe = sys._getframe
        if wrapped:
            _getframe = sys._getframe

            def getframe(depth: int = 0) -> Any:
                return _getframe(depth + 2)  # this function, and the wrapper

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
        externals = self._externals
        levels = self._levels

        def current(frame: Any, code: CodeType) -> tuple[Any, FrameState | None]:
            """The thread state and the FrameState of `frame`, resynchronising if needed; None
            for an untracked frame of code the budget turned off (its events are ignored)."""
            try:
                ts = local.ts
            except AttributeError:
                ts = thread_state()
            stack = ts.stack
            if stack:
                st = stack[-1]
                if st.frame_id == id(frame):
                    return ts, st
                # Slow path: a frame left without an event we saw (a recorder fault). Drop
                # states above it if it is on the stack, else adopt the frame as a new call.
                for depth in range(len(stack) - 1, -1, -1):
                    if stack[depth].frame_id == id(frame):
                        del stack[depth + 1 :]
                        return ts, stack[depth]
            if levels and levels.get(id(code)) == OFF:
                return ts, None
            info = codes.get(id(code))
            st = FrameState(next(calls), id(frame), code, info, switch[1])
            parent = stack[-1].call_id if stack else 0
            stack.append(st)
            ts.events.append(
                (CALL, next(steps), (now() - t0) & TS_MASK, st.call_id, frame.f_lineno,
                 (info.code_id if info else 0, parent), None, None)
            )  # fmt: skip
            return ts, st

        def emit(ts: Any, event: tuple) -> None:
            events = ts.events
            events.append(event)
            if len(events) >= BATCH_EVENTS:
                hand_off(ts)

        def finish_pending(
            ts: Any, st: FrameState, value: Any, exc: Any, observed: bool = False
        ) -> None:
            """Record the completed call into out-of-scope code as one EXTERNAL step."""
            callee = st.pending
            st.pending = None
            step = next(steps)
            if observed and exc is None:
                if is_secret(callee):  # keyring.get_password(...)
                    value = (V_REDACTED, type(value).__name__)
                else:
                    note_unnamed(ts, step, value)
            emit(ts, (EXTERNAL, step, (now() - t0) & TS_MASK, st.call_id, st.line,
                      (callee, observed, value, exc), None, None))  # fmt: skip

        def py_start(code: CodeType, offset: int) -> Any:
            try:
                info = codes.get(id(code))
                if info is None:
                    if not scope_wants(code.co_filename):
                        return DISABLE
                    info = state.register_code(code)
                    mon.set_local_events(tool, code, in_scope_events)
                elif levels and levels.get(id(code)) == OFF:
                    return DISABLE  # the budget turned its new calls off (budget.py)
                frame = getframe(1)
                try:
                    ts = local.ts
                except AttributeError:
                    ts = thread_state()
                stack = ts.stack
                parent = stack[-1].call_id if stack else 0
                st = FrameState(next(calls), id(frame), code, info, switch[1])
                st.line = frame.f_lineno
                changes, _ = diff_locals(st, frame, encode_named)
                if ts.unnamed is not None:
                    settle_unnamed(ts, st, changes, False)
                stack.append(st)
                emit(ts, (CALL, next(steps), (now() - t0) & TS_MASK, st.call_id, st.line,
                          (info.code_id, parent), changes, None))  # fmt: skip
            except Exception as exc:  # a recorder fault must never reach the program
                fault(exc)
            return None

        def py_resume(code: CodeType, offset: int) -> Any:
            try:
                frame = getframe(1)
                st = suspended.pop(id(frame), None)
                if st is None:
                    # Started before recording began: adopt it as a call.
                    current(frame, code)
                    return None
                try:
                    ts = local.ts
                except AttributeError:
                    ts = thread_state()
                ts.stack.append(st)
                changes, deleted = diff_locals(st, frame, encode_named)
                emit(ts, (RESUME, next(steps), (now() - t0) & TS_MASK, st.call_id, frame.f_lineno,
                          None, changes, deleted))  # fmt: skip
            except Exception as exc:
                fault(exc)
            return None

        def leave(code: CodeType, kind: int, payload_value: Any, is_exc: bool) -> None:
            frame = getframe(2)
            ts, st = current(frame, code)
            if st is None:
                return
            if st.pending is not None:
                finish_pending(ts, st, None, None)
            changes, deleted = diff_locals(st, frame, encode_named, touched_now(st, ts, switch))
            if ts.unnamed is not None:
                settle_unnamed(ts, st, changes, False)
            step = next(steps)
            if is_exc:
                payload = encode_exception(payload_value)
            elif kind == RETURN and st.info is not None and is_secret(st.info.name):
                payload = (V_REDACTED, type(payload_value).__name__)  # def get_password(): ...
            else:
                payload = encode_named("", payload_value)
                note_unnamed(ts, step, payload)
            ts.stack.pop()
            if kind == YIELD:
                suspended[st.frame_id] = st
            emit(ts, (kind, step, (now() - t0) & TS_MASK, st.call_id, frame.f_lineno,
                      payload, changes, deleted))  # fmt: skip

        def py_return(code: CodeType, offset: int, retval: Any) -> Any:
            try:
                if id(code) not in codes:
                    external_return(code, retval, None)
                    return None
                leave(code, RETURN, retval, False)
            except Exception as exc:
                fault(exc)
            return None

        def py_yield(code: CodeType, offset: int, retval: Any) -> Any:
            try:
                leave(code, YIELD, retval, False)
            except Exception as exc:
                fault(exc)
            return None

        def py_unwind(code: CodeType, offset: int, exc: BaseException) -> Any:
            try:
                if id(code) not in codes:
                    if id(code) in externals:
                        external_return(code, None, exc)
                    return None
                leave(code, UNWIND, exc, True)
            except Exception as fault_exc:
                fault(fault_exc)
            return None

        def external_return(code: CodeType, retval: Any, exc: BaseException | None) -> None:
            """An out-of-scope Python callee returned: complete its caller's pending step."""
            caller = getframe(2).f_back
            if caller is None:
                return
            try:
                ts = local.ts
            except AttributeError:
                return
            stack = ts.stack
            if not stack:
                return
            st = stack[-1]
            if st.frame_id != id(caller) or st.pending is None or st.pending_code != id(code):
                return
            if exc is not None:
                finish_pending(ts, st, None, encode_exception(exc), True)
            else:
                finish_pending(ts, st, encode_named("", retval), None, True)

        def exception_event(kind: int) -> Callable[[CodeType, int, BaseException], Any]:
            def callback(code: CodeType, offset: int, exc: BaseException) -> Any:
                try:
                    if id(code) not in codes:
                        return None
                    frame = getframe(1)
                    ts, st = current(frame, code)
                    if st is None:
                        return None
                    if st.pending is not None:
                        finish_pending(ts, st, None, encode_exception(exc), True)
                    changes, deleted = diff_locals(
                        st, frame, encode_named, touched_now(st, ts, switch)
                    )
                    if ts.unnamed is not None:
                        settle_unnamed(ts, st, changes, False)
                    st.line = frame.f_lineno
                    emit(ts, (kind, next(steps), (now() - t0) & TS_MASK, st.call_id, st.line,
                              encode_exception(exc), changes, deleted))  # fmt: skip
                except Exception as fault_exc:
                    fault(fault_exc)
                return None

            return callback

        def py_throw(code: CodeType, offset: int, exc: BaseException) -> Any:
            try:
                if id(code) not in codes:
                    return None
                frame = getframe(1)
                st = suspended.pop(id(frame), None)
                if st is not None:
                    try:
                        ts = local.ts
                    except AttributeError:
                        ts = thread_state()
                    ts.stack.append(st)
                else:
                    ts, st = current(frame, code)
                    if st is None:
                        return None
                emit(ts, (THROW, next(steps), (now() - t0) & TS_MASK, st.call_id, frame.f_lineno,
                          encode_exception(exc), None, None))  # fmt: skip
            except Exception as fault_exc:
                fault(fault_exc)
            return None

        def stop_iteration(code: CodeType, offset: int, value: Any) -> Any:
            # A generator ended inside `yield from`/`await`/a for loop: settrace reports a
            # StopIteration there, so we record it as RAISE. CPython passes the one it made
            # (`yield from`, a send from C) or the value returned (a for loop): one is made then.
            try:
                frame = getframe(1)
                ts, st = current(frame, code)
                if st is None:
                    return None
                exc = encode_exception(
                    value
                    if issubclass(type(value), StopIteration)  # (isinstance could read __class__)
                    else StopIteration(value)
                    if value is not None
                    else StopIteration()
                )
                emit(ts, (RAISE, next(steps), (now() - t0) & TS_MASK, st.call_id, frame.f_lineno,
                          exc, None, None))  # fmt: skip
            except Exception as fault_exc:
                fault(fault_exc)
            return None

        def line(code: CodeType, line_number: int, depth: int = 1) -> Any:
            # The hottest callback: one per executed line of in-scope code.
            try:
                frame = getframe(depth)
                try:
                    ts = local.ts
                except AttributeError:
                    ts = thread_state()
                stack = ts.stack
                if stack and stack[-1].frame_id == id(frame):
                    st = stack[-1]
                else:
                    ts, st = current(frame, code)
                    if st is None:
                        return None
                if st.pending is not None:
                    finish_pending(ts, st, None, None)
                changes, deleted = diff_locals(st, frame, encode_named, touched_now(st, ts, switch))
                if ts.unnamed is not None:
                    settle_unnamed(ts, st, changes, True)
                st.line = line_number
                events = ts.events
                events.append((LINE, next(steps), (now() - t0) & TS_MASK, st.call_id, line_number,
                               None, changes, deleted))  # fmt: skip
                if len(events) >= BATCH_EVENTS:
                    hand_off(ts)
            except Exception as exc:
                fault(exc)
            return None

        def jump(code: CodeType, from_offset: int, to_offset: int) -> Any:
            # A loop that stays on one line (`for x in xs: total += x`, a comprehension) gets no
            # LINE event per iteration from sys.monitoring; settrace reports one, and so do we.
            # As CPython's own settrace emulation does: forward jumps and jumps to another line
            # are DISABLEd at their location after the first call, so only same-line loops cost.
            if to_offset > from_offset:
                return DISABLE
            try:
                info = codes.get(id(code))
                if info is None:
                    return DISABLE
                line_of = info.line_of
                to_line = line_of(to_offset)
                if to_line != line_of(from_offset) or to_line is None:
                    return DISABLE
                line(code, to_line, 2)
            except Exception as exc:
                fault(exc)
            return None

        def call(code: CodeType, offset: int, callable_: Any, arg0: Any) -> Any:
            try:
                callee_code = python_code(callable_)
                if callee_code is not None:
                    if id(callee_code) in codes or scope_wants(callee_code.co_filename):
                        return None  # in-scope Python code: it gets its own CALL event
                    if id(callee_code) not in externals:
                        # Listen to this library function's returns so its value is recorded.
                        externals.add(id(callee_code))
                        _code_by_id[id(callee_code)] = callee_code
                        mon.set_local_events(tool, callee_code, ev.PY_RETURN)
                frame = getframe(1)
                ts, st = current(frame, code)
                if st is None:
                    return None
                if st.pending is not None:
                    finish_pending(ts, st, None, None)
                st.pending = callee_name(callable_)
                st.pending_code = id(callee_code) if callee_code is not None else 0
            except Exception as exc:
                fault(exc)
            return None

        def c_return(code: CodeType, offset: int, callable_: Any, arg0: Any) -> Any:
            try:
                ts = local.ts
                stack = ts.stack
                if stack:
                    st = stack[-1]
                    if st.pending is not None and st.frame_id == id(getframe(1)):
                        finish_pending(ts, st, None, None)
            except Exception as exc:
                fault(exc)
            return None

        return {
            ev.PY_START: py_start,
            ev.PY_RESUME: py_resume,
            ev.PY_RETURN: py_return,
            ev.PY_YIELD: py_yield,
            ev.PY_UNWIND: py_unwind,
            ev.PY_THROW: py_throw,
            ev.RAISE: exception_event(RAISE),
            ev.EXCEPTION_HANDLED: exception_event(HANDLED),
            ev.LINE: line,
            ev.JUMP: jump,
            ev.STOP_ITERATION: stop_iteration,
            ev.CALL: call,
            ev.C_RETURN: c_return,
            # C_RAISE needs no callback of its own: the RAISE event that follows in the caller
            # completes the pending step with the exception. It must be registered for
            # C_RETURN to fire, hence the no-op.
            ev.C_RAISE: _ignore,
        }


def _ignore(*args: Any) -> None:
    return None


_code_by_id: dict[int, CodeType] = {}
"""Out-of-scope code objects given local PY_RETURN events, so stop() can clear them."""
