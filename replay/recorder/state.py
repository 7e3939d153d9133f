"""Per-thread and per-frame recording state shared by the Python cores (sys.monitoring, settrace).

This is the hot path's data: every event reads a ThreadState and a FrameState and appends one
tuple (see docs/internals.md) to the thread's own list. Nothing here takes a lock: each thread
touches only its own ThreadState, and the shared counters rely on `next()` on an
itertools.count being atomic under the GIL.

What is deliberately NOT kept: frame objects and user objects (trap 2 in the notes: holding them
moves finalizers). A frame is known by `id(frame)` while it runs or is suspended; values are kept
as their encoded form. Code objects ARE kept alive (no finalizers, immutable), which also means
their ids are never reused while recording.
"""

from __future__ import annotations

import dis
import gc
import itertools
import os
import sys
import threading
import time
from array import array
from collections import deque
from collections.abc import Callable, Mapping
from types import CodeType, FrameType
from typing import Any, Protocol

from replay.config import ENV_INJECT_FAULT
from replay.events import ATOM_TYPES, EXTERNAL, LINE, V_ERROR, V_REDACTED
from replay.recorder.scope import Scope

CO_OPTIMIZED = 0x0001
TS_MASK = -256
"""`ts & TS_MASK`: event times are kept in steps of 256 ns. The clock's lowest byte differs from
event to event at random and does not compress (it was about one byte of every stored step);
a quarter of a microsecond is finer than the recorder's own cost per event."""
BATCH_EVENTS = 4096
"""A thread hands its list to the writer once it holds this many events."""
MAX_PENDING_BATCHES = 8
"""Handed-off lists the writer may be behind by before `on_backlog` runs: the memory bound
(about 33k events; with nested values some tens of MB). Past it, per `--on-backlog`, a traced
thread waits for the writer, up to 10 s at a time (`block`, the default), or the newest lists
are dropped, counted and replaced by a GAP event (`drop`). The writer shares the GIL with the
program, so a smaller bound costs no time overall (measured: json_requests 4000, peak RSS
217 -> 141 MB)."""

WAKE_WRITER_LISTS = 4
"""Handed-off lists waiting from which a hand-off wakes the writer (`wake_writer`), rather than
leaving them to its next tick. Without it the writer slept until the queue passed the memory
bound, and the traced thread then waited for it at every ninth hand-off (5 ms each time, 8-12%
of the recording's time on nbody, json_requests and generators). Four is where the writer
counts itself behind and joins the lists into bigger chunks (writer.BEHIND_LISTS): the chunks
it writes are the same."""

_PY312 = sys.version_info[:2] == (3, 12)

DiffLocals = Callable[..., tuple[tuple | None, tuple | None]]
"""`diff_locals(st, frame, encode_named, touched=None)` -> (changes, deleted)."""


class ValueVersions(Protocol):
    """What a recording of object records adds to the cores (versions.ObjectVersions)."""

    def diff_locals(self, *args: Any) -> tuple[tuple | None, tuple | None]:
        """The Python cores' diff, writing entries and records."""
        ...

    def records_for(self, values: Mapping[str, Any], flat: tuple) -> tuple:
        """The C cores' way to records for what their C record encoder leaves."""
        ...

    def carry(self, handed: list[tuple], kept: list[tuple]) -> None:
        """Give events kept back at a hand-off the records they refer to."""
        ...


class FrameState:
    """What the recorder remembers about one running (or suspended) in-scope frame."""

    __slots__ = (
        "call_id",
        "code",
        "epoch",
        "frame_id",
        "info",
        "is_module",
        "line",
        "pending",
        "pending_code",
        "raised",
        "raised_exc",
        "rechecked",
        "snap",
    )

    def __init__(
        self,
        call_id: int,
        frame_id: int,
        code: CodeType,
        info: CodeInfo | None = None,
        epoch: int = 0,
    ) -> None:
        self.call_id = call_id
        self.info = info
        self.epoch = epoch
        """The thread-switch count when the frame last had its in-place check (touched_now)."""
        self.frame_id = frame_id
        self.code = code
        self.snap: dict[str, tuple[int, Any]] = {}
        """name -> (id of the bound object, its venc) as of the frame's last event."""
        self.pending: str | None = None
        """Callee name of a call into out-of-scope code that has not completed yet."""
        self.pending_code = 0
        """id() of the pending callee's code object when it is Python code, else 0."""
        self.is_module = code.co_name == "<module>"
        self.raised = False
        """settrace only: an exception was raised here and not yet seen handled or unwinding."""
        self.raised_exc: Any = None
        self.rechecked: dict[str, Any] | None = None
        self.line = 0


class ThreadState:
    """One traced thread: its event list and its stack of in-scope frames."""

    __slots__ = (
        "cut_requested",
        "events",
        "guard",
        "ident",
        "name",
        "stack",
        "thread_id",
        "unnamed",
        "written",
    )

    def __init__(self, thread_id: int, ident: int, name: str) -> None:
        self.thread_id = thread_id
        self.ident = ident
        self.name = name
        self.events: list[tuple] = []
        """The thread's events not yet handed off. The C cores replace the list by their
        EventBuffer (replay/recorder/_eventbuffer.c), which behaves as a list of event tuples."""
        self.stack: list[FrameState] = []
        self.unnamed: list[tuple[int, int]] | None = None
        """(step, id(value)) of recent RETURN/EXTERNAL steps whose value is a bare str/bytes:
        still patchable, in case the program binds that value to a secret-looking name
        (see `note_unnamed`). The writer leaves them in the list until settled."""
        self.written: dict[int, Any] = {}
        """Recordings of object records only (versions.py): obj_id -> the record the current
        list holds for it. Forgotten at every hand-off, so that each list is self-contained."""
        self.cut_requested = False
        """Set by the writer where it may not cut the list itself (`RecordingState.versions`):
        the thread hands its list off at its next event."""
        self.guard: object = None
        """The C cores' ListGuard (_ctracer.c): whether the thread is inside a callback, so
        that the writer may take its list between two (`RecordingState.take_idle_list`)."""

    def request_cut(self) -> None:
        """The writer asks the thread to hand its list off at its next event: the Python cores
        read `cut_requested`, the C cores the same flag on their event buffer (in C, per
        event)."""
        self.cut_requested = True
        if type(self.events) is not list:
            self.events.cut_requested = True  # type: ignore[attr-defined]


class CodeInfo:
    """A code object the recorder has seen in scope; becomes a `functions` row."""

    __slots__ = (
        "_lines",
        "_quiet",
        "_touched",
        "code",
        "code_id",
        "filename",
        "firstlineno",
        "name",
        "qualname",
    )

    def __init__(self, code_id: int, code: CodeType) -> None:
        self.code_id = code_id
        self.code = code
        self.filename = code.co_filename
        self.name = code.co_name
        self.qualname = getattr(code, "co_qualname", code.co_name)
        self.firstlineno = code.co_firstlineno
        self._lines: dict[int, int | None] | None = None
        self._touched: dict[int, frozenset[str] | None] | None = None
        self._quiet: frozenset[int] | None = None

    def touched(self, line: int) -> frozenset[str] | None:
        """Names whose objects the line may have changed in place; None: could be any of them.

        Built once per code object from its bytecode (see `touched_by_line`).
        """
        touched = self._touched
        if touched is None:
            try:
                touched = self._touched = touched_by_line(self.code)
            except Exception:
                touched = self._touched = {}
        return touched.get(line, _NOTHING)

    def quiet(self, line: int) -> bool:
        """Whether the line is quiet (`quiet_lines`): built once per code object."""
        quiet = self._quiet
        if quiet is None:
            try:
                quiet = self._quiet = quiet_lines(self.code)
            except Exception:
                quiet = self._quiet = frozenset()
        return line in quiet

    def line_of(self, offset: int) -> int | None:
        """The line of the instruction at byte `offset` (built once per code object)."""
        lines = self._lines
        if lines is None:
            lines = self._lines = {}
            for start, end, line in self.code.co_lines():
                for at in range(start, end, 2):
                    lines[at] = line
        return lines.get(offset)


class RecordingState:
    """Everything the cores share for one recording in one process."""

    def __init__(self, scope: Scope, encode_named: Callable[[str, Any], Any]) -> None:
        self.scope = scope
        self.encode_named = self._guarded(_with_injected_fault(encode_named))
        self.diff_locals: DiffLocals = diff_locals
        """What the Python cores call to diff a frame's locals (`use_versions` replaces it)."""
        self.versions: ValueVersions | None = None
        """A recording of object records (versions.py), else None: its diffs write records,
        a hand-off carries records along with the events it keeps back, and the writer takes
        a live thread's list only between two of its events (`take_idle_list`), else leaves it
        to the thread to cut (`ThreadState.cut_requested`)."""
        self.set_writer_thread: Callable[[int], None] | None = None
        """The C cores' `set_writer_thread` (_ctracer.c): the writer tells it its thread, which
        runs none of the program's code, so that a program with one thread of its own is known
        to have one (the fingerprinter's log may then outlast a callback)."""
        self.take_idle_list: Callable[[ThreadState], Any] | None = None
        """The C cores' `take_idle_list` (_ctracer.c): a live thread's list, taken where the
        thread is between two callbacks, or None. The Python cores have none: their threads
        cut their own lists."""
        self.steps = itertools.count(1)
        self.calls = itertools.count(1)
        self.t0 = time.perf_counter_ns()
        self.codes: dict[int, CodeInfo] = {}
        """id(code) -> CodeInfo for in-scope code (the code objects are kept alive)."""
        self.new_codes: deque[CodeInfo] = deque()
        self.threads: list[ThreadState] = []
        """Every thread that recorded something and may still hold events."""
        self.thread_ids = itertools.count(1)
        self.suspended: dict[int, FrameState] = {}
        """id(frame) -> state of a suspended generator or coroutine (any thread may resume it)."""
        self.handoff: deque[tuple[int, list[tuple]]] = deque()
        """Full per-thread lists waiting for the writer: (thread_id, events)."""
        self.local = threading.local()
        self.switch: list[Any] = [None, 0]
        """[the thread that last asked touched_now, how many times that thread changed]."""
        self.is_secret: Callable[[str], bool] = lambda name: False
        """The redactor's name test (set by the Recorder), for callee and function names."""
        self.on_backlog: Callable[[], None] | None = None
        """Called by a traced thread when the writer is too far behind (see writer.py)."""
        self.wake_writer: Callable[[], None] | None = None
        """Wakes the writer (set by it): see WAKE_WRITER_LISTS."""
        self.max_pending = MAX_PENDING_BATCHES
        self.faults = 0
        self.last_fault = ""
        self._gc_callback: Callable[[str, Mapping[str, int]], None] | None = None
        self.collecting = array("b", [0, 0])
        """[1 while the garbage collector runs, collections begun modulo 128] (`watch_gc`). The
        settrace cores show no call it makes (weak reference callbacks, finalizers) as a call of
        the frame it interrupted: the program did not make it, and when it happens depends on the
        recorder's own allocations. The C settrace core's walks tell by the count that a
        collection (and with it finalizers, program code) ran between two of them (3.11)."""

    def use_versions(self, versions: ValueVersions) -> None:
        """Write object records (versions.py) instead of trees: set before the core starts."""
        self.versions = versions
        self.diff_locals = versions.diff_locals

    def watch_gc(self) -> None:
        """Keep `collecting` up to date (gc.callbacks), until `unwatch_gc`.

        The callback is C where the C core is built (`_ctracer.gc_watcher`): the interpreter
        runs a pending signal's handler inside any Python code, and a KeyboardInterrupt raised
        in a collector's callback is reported as ignored and lost, so the program's Ctrl-C was
        dropped when it came during a collection. Without the extension, `_on_gc` (that gap).
        """
        if self._gc_callback is None:
            try:
                from replay.recorder import _ctracer  # noqa: PLC0415 - optional, built with the C core
            except ImportError:
                self._gc_callback = self._on_gc
            else:
                self._gc_callback = _ctracer.gc_watcher(self.collecting)
        if self._gc_callback not in gc.callbacks:
            gc.callbacks.append(self._gc_callback)

    def unwatch_gc(self) -> None:
        while self._gc_callback is not None and self._gc_callback in gc.callbacks:
            gc.callbacks.remove(self._gc_callback)

    def _on_gc(self, phase: str, info: Mapping[str, int]) -> None:
        self.collecting[0] = phase == "start"
        if phase == "start":
            self.collecting[1] = (self.collecting[1] + 1) % 128

    def _guarded(self, encode_named: Callable[[str, Any], Any]) -> Callable[[str, Any], Any]:
        """The encoder, made unable to fail: a fault costs one value, never the event around it."""

        def encode(name: str, value: Any) -> Any:
            try:
                return encode_named(name, value)
            except Exception as exc:
                self.fault(exc)
                return (V_ERROR, "?", f"replay could not record this value ({type(exc).__name__})")

        return encode

    def thread_state(self) -> ThreadState:
        """The calling thread's state, created on its first event (a new thread each time).

        Called only when the thread-local slot is empty, i.e. for a thread not seen before:
        thread idents are reused once a thread exits, so the ident alone never identifies one.
        """
        ts = ThreadState(next(self.thread_ids), threading.get_ident(), _thread_name())
        self.threads.append(ts)
        self.local.ts = ts
        return ts

    def prune_threads(self) -> None:
        """Forget states of threads that have exited and whose events were all taken (writer)."""
        # A set, not the dict's keys: the dict holds this frame, whose locals would then hold
        # the dict, a cycle that kept the writer's frames (and the event lists of the write
        # they were making) alive until the garbage collector ran, usually on the program's
        # thread, which then freed them for the writer (on nbody.py, 10% of its time).
        live = set(sys._current_frames())
        self.threads = [ts for ts in self.threads if ts.events or ts.ident in live]

    def register_code(self, code: CodeType) -> CodeInfo:
        info = CodeInfo(len(self.codes) + 1, code)
        self.codes[id(code)] = info
        self.new_codes.append(info)
        return info

    def hand_off(self, ts: ThreadState) -> None:
        """Give the thread's full list to the writer and start a new one (traced thread's side).

        No lock: a deque append and an attribute store. The list is queued before `ts.events`
        is replaced, so a writer that finds the new (newer) list has the old one in the queue
        already and writes them in order. Steps still open to redaction (`note_unnamed`) stay
        with the thread. With more than `max_pending` lists waiting, `on_backlog` (installed
        by the writer, per `--on-backlog`) runs: past the memory bound it either waits for the
        writer (`block`) or takes the newest lists off the queue and replaces them by a GAP
        (`drop`, which also wakes the writer earlier); see replay/recorder/writer.py.
        """
        events = ts.events
        # Slices, so that the C cores' event buffers (replay/recorder/_eventbuffer.c) stay
        # buffers: `keep` has the type of `events`.
        cut = len(events)
        if ts.unnamed:
            first = ts.unnamed[0][0]
            while cut and events[cut - 1][1] >= first:
                cut -= 1
        keep = events[cut:]
        if cut < len(events):
            del events[cut:]
            if len(keep) > BATCH_EVENTS // 2:
                # No LINE on this thread for half a batch (code recorded at call level by
                # --max-overhead, say): holding the tail back again and again would make every
                # event a hand-off. Settle on the safe side: the values are hidden.
                assert ts.unnamed is not None
                for step, _ in ts.unnamed:
                    _redact_step(keep, step)
                ts.unnamed = None
                events.extend(keep)
                keep = events[len(events) :]
        if keep and self.versions is not None:
            self.versions.carry(events, keep)
        if events:
            self.handoff.append((ts.thread_id, events))
        ts.events = keep
        ts.cut_requested = False
        if ts.written:
            ts.written = {}
        queued = len(self.handoff)
        if queued > self.max_pending and self.on_backlog is not None:
            self.on_backlog()
        elif queued >= WAKE_WRITER_LISTS and self.wake_writer is not None:
            self.wake_writer()

    def fault(self, exc: BaseException) -> None:
        """A bug in the recorder: count it and keep the program running."""
        self.faults += 1
        if not self.last_fault:
            self.last_fault = f"{type(exc).__name__}: {exc}"


_NOTHING: frozenset[str] = frozenset()

# Opcodes that cannot run code nor change an object in place (loads, stores of names, stack
# shuffles, jumps, building new objects). A line made only of these cannot mutate anything the
# frame can see; any other opcode (a call, an attribute or item access, an operator, iteration)
# might run arbitrary code, so the objects of every name the line mentions are re-checked.
_PURE_OPS = frozenset(
    {
        "BUILD_CONST_KEY_MAP", "BUILD_LIST", "BUILD_MAP", "BUILD_SET", "BUILD_SLICE",
        "BUILD_STRING", "BUILD_TUPLE", "CACHE", "CHECK_EG_MATCH", "CHECK_EXC_MATCH",
        "COPY", "COPY_FREE_VARS", "DELETE_DEREF", "DELETE_FAST", "DELETE_GLOBAL",
        "DELETE_NAME", "END_FOR", "EXTENDED_ARG", "JUMP", "JUMP_BACKWARD",
        "JUMP_BACKWARD_NO_INTERRUPT", "JUMP_FORWARD", "JUMP_NO_INTERRUPT", "KW_NAMES",
        "LOAD_ASSERTION_ERROR", "LOAD_CLOSURE", "LOAD_CONST", "LOAD_DEREF", "LOAD_FAST",
        "LOAD_FAST_AND_CLEAR", "LOAD_FAST_CHECK", "LOAD_FAST_LOAD_FAST", "LOAD_GLOBAL",
        "LOAD_NAME", "LOAD_SMALL_INT", "MAKE_CELL", "MAKE_FUNCTION", "NOP", "NOT_TAKEN",
        "POP_EXCEPT", "POP_JUMP_BACKWARD_IF_FALSE", "POP_JUMP_BACKWARD_IF_NONE",
        "POP_JUMP_BACKWARD_IF_NOT_NONE", "POP_JUMP_BACKWARD_IF_TRUE",
        "POP_JUMP_FORWARD_IF_FALSE", "POP_JUMP_FORWARD_IF_NONE",
        "POP_JUMP_FORWARD_IF_NOT_NONE", "POP_JUMP_FORWARD_IF_TRUE", "POP_JUMP_IF_FALSE",
        "POP_JUMP_IF_NONE", "POP_JUMP_IF_NOT_NONE", "POP_JUMP_IF_TRUE", "POP_TOP",
        "PUSH_EXC_INFO", "PUSH_NULL", "RESUME", "RETURN_CONST", "RETURN_GENERATOR",
        "RETURN_VALUE", "SET_FUNCTION_ATTRIBUTE", "STORE_DEREF", "STORE_FAST",
        "STORE_FAST_LOAD_FAST", "STORE_FAST_STORE_FAST", "STORE_GLOBAL", "STORE_NAME",
        "SWAP",
    }
)  # fmt: skip
_NAME_OPS = frozenset(
    {
        "LOAD_CLOSURE", "LOAD_DEREF", "LOAD_FAST", "LOAD_FAST_AND_CLEAR", "LOAD_FAST_CHECK",
        "LOAD_FAST_LOAD_FAST", "LOAD_FROM_DICT_OR_DEREF", "LOAD_FROM_DICT_OR_GLOBALS",
        "LOAD_GLOBAL", "LOAD_NAME", "STORE_FAST_LOAD_FAST",
    }
)  # fmt: skip


# Opcodes that read their operands: in C they change no object (for the builtin types), so they
# change one in place only by running Python code (a property, `__getattr__`, `__eq__`, an
# operator, a generator's next item). A line made of these and pure opcodes is a *read line*:
# its names are re-checked only when in-scope code ran during the line, which the events it made
# show (`touched_now`). Not here: subscripts (a defaultdict inserts the missing key in C), in-place
# operators (`xs += ys` extends the list in C), calls, stores and deletions of attributes and items.
_READ_OPS = frozenset(
    {
        "BINARY_SLICE", "COMPARE_OP", "CONTAINS_OP", "CONVERT_VALUE", "DICT_MERGE",
        "DICT_UPDATE", "FORMAT_SIMPLE", "FORMAT_VALUE", "FORMAT_WITH_SPEC", "FOR_ITER",
        "GET_ITER", "IS_OP", "LIST_APPEND", "LIST_EXTEND", "LOAD_ATTR", "LOAD_METHOD",
        "LOAD_SUPER_ATTR", "MAP_ADD", "SET_ADD", "SET_UPDATE", "TO_BOOL", "UNARY_INVERT",
        "UNARY_NEGATIVE", "UNARY_NOT", "UNARY_POSITIVE", "UNPACK_EX", "UNPACK_SEQUENCE",
    }
)  # fmt: skip


class ReadNames(frozenset):
    """The names of a read line (see `_READ_OPS`): `touched` checks them only if code ran."""

    __slots__ = ()


# Opcodes that run code on an object held on the value stack rather than named in the line (a
# `with` block's __exit__, an awaited or sent-to object): the line gets the full check.
_STACK_CALL_OPS = frozenset(
    {
        "BEFORE_ASYNC_WITH", "BEFORE_WITH", "CLEANUP_THROW", "END_ASYNC_FOR",
        "GET_AWAITABLE", "LOAD_SPECIAL", "SEND", "WITH_EXCEPT_START", "YIELD_VALUE",
    }
)  # fmt: skip


# Builtins that reach the frame's locals without naming them in the bytecode: zero-argument
# super() reads `self` from the frame in C (3.11), locals()/vars()/eval()/exec() see them all.
_FRAME_READERS = frozenset({"super", "locals", "vars", "eval", "exec"})


# Opcodes that change no object in place in C and make none that a value shows but through an
# operator (`p + q`: a new container, which the C core tells from a dead one at its address by
# its items: _fingerprint.c, part_tag), and whose calls are events of their own (sys.monitoring's
# CALL fires before every call in-scope code makes; the C core lets only a call of in-scope code
# carry on, into its PY_START): loads, attribute loads, local stores, stack shuffles, jumps,
# returns, operators, comparisons, calls. A line made only of these is *quiet* (`quiet_lines`).
# Not here: stores and deletions of attributes, items and globals, subscripts (a defaultdict
# inserts the missing key in C), in-place operators (`xs += ys` extends the list in C), building
# containers, iteration (a generator out of scope runs without an event), `with`, imports.
_QUIET_OPS = frozenset(
    {
        "BINARY_OP", "CACHE", "CALL", "CALL_FUNCTION_EX", "CALL_KW", "COMPARE_OP",
        "CONTAINS_OP", "COPY", "COPY_FREE_VARS", "DELETE_FAST", "EXTENDED_ARG", "IS_OP",
        "JUMP", "JUMP_BACKWARD", "JUMP_BACKWARD_NO_INTERRUPT", "JUMP_FORWARD",
        "JUMP_NO_INTERRUPT", "KW_NAMES", "LOAD_ATTR", "LOAD_CLOSURE", "LOAD_CONST",
        "LOAD_DEREF", "LOAD_FAST", "LOAD_FAST_AND_CLEAR", "LOAD_FAST_CHECK",
        "LOAD_FAST_LOAD_FAST", "LOAD_GLOBAL", "LOAD_METHOD", "LOAD_SMALL_INT", "MAKE_CELL",
        "NOP", "NOT_TAKEN", "POP_JUMP_BACKWARD_IF_FALSE", "POP_JUMP_BACKWARD_IF_NONE",
        "POP_JUMP_BACKWARD_IF_NOT_NONE", "POP_JUMP_BACKWARD_IF_TRUE",
        "POP_JUMP_FORWARD_IF_FALSE", "POP_JUMP_FORWARD_IF_NONE",
        "POP_JUMP_FORWARD_IF_NOT_NONE", "POP_JUMP_FORWARD_IF_TRUE", "POP_JUMP_IF_FALSE",
        "POP_JUMP_IF_NONE", "POP_JUMP_IF_NOT_NONE", "POP_JUMP_IF_TRUE", "POP_TOP", "PRECALL",
        "PUSH_NULL", "RESUME", "RETURN_CONST", "RETURN_VALUE", "STORE_DEREF", "STORE_FAST",
        "STORE_FAST_LOAD_FAST", "STORE_FAST_STORE_FAST", "SWAP", "TO_BOOL", "UNARY_NEGATIVE",
        "UNARY_NOT",
    }
)  # fmt: skip


def quiet_lines(code: CodeType) -> frozenset[int]:
    """The lines made only of quiet opcodes (`_QUIET_OPS`): what the C sysmon core's walks may
    carry across.

    Between an event and the next one of the same thread, with only (the rest of) a quiet line
    between them, every object a value shows is as the last event's walks saw it, and is still
    the object they saw at its address: so the next event's walks copy what they learnt rather
    than walk it again (`fp_carry_into`, _fingerprint.h; docs/internals.md, "Walks carried from
    one event to the next"). The exception is Python code out of scope that an attribute load, an
    operator or a comparison runs (a property): it changes objects without an event, as it does
    on a read line (`touched_now`), and such a change is recorded at the next walk that is not
    carried, not at once.
    """
    lines: dict[int, bool] = {}
    for ins in dis.get_instructions(code):
        line = ins.positions.lineno if ins.positions else None
        if line is None:
            continue
        quiet = ins.opname in _QUIET_OPS and not (
            ins.opname == "BINARY_OP" and ins.argrepr.endswith("=")  # `xs += ys` extends xs
        )
        lines[line] = lines.get(line, True) and quiet
    return frozenset(line for line, quiet in lines.items() if quiet)


def touched_by_line(code: CodeType) -> dict[int, frozenset[str] | None]:
    """For each line that may run code: the names it mentions (their objects may change).

    Lines absent from the result run only pure opcodes and change no object in place; lines
    mapped to None call something held on the stack and get the full check; read lines (only
    pure and read opcodes) map to a `ReadNames`. This is what keeps the in-place mutation check
    cheap: after a line, only the non-atom locals it mentioned are re-encoded and compared, and
    only if the line could have changed them.
    """
    names: dict[int, set[str]] = {}
    impure: set[int] = set()
    writes: set[int] = set()
    full: set[int] = set()
    for ins in dis.get_instructions(code):
        line = ins.positions.lineno if ins.positions else None
        if line is None:
            continue
        if ins.opname in _NAME_OPS:
            argval = ins.argval
            bucket = names.setdefault(line, set())
            if isinstance(argval, tuple):  # LOAD_FAST_LOAD_FAST (3.13) names two locals
                bucket.update(a for a in argval if isinstance(a, str))
            elif isinstance(argval, str):
                bucket.add(argval)
                if argval in _FRAME_READERS and ins.opname in ("LOAD_GLOBAL", "LOAD_NAME"):
                    full.add(line)
        if ins.opname not in _PURE_OPS:
            impure.add(line)
            if ins.opname in _STACK_CALL_OPS:
                full.add(line)
            if ins.opname not in _READ_OPS and not (
                ins.opname == "BINARY_OP" and not ins.argrepr.endswith("=")
            ):
                writes.add(line)
    return {
        line: None
        if line in full
        else (frozenset if line in writes else ReadNames)(names.get(line, ()))
        for line in impure
    }


def _thread_name() -> str:
    # current_thread() is a dict lookup in threading._active; during interpreter shutdown or in
    # a thread started by C code it makes a _DummyThread, which is fine for a name.
    try:
        return threading.current_thread().name
    except Exception:
        return f"thread-{threading.get_ident()}"


def _with_injected_fault(
    encode_named: Callable[[str, Any], Any],
) -> Callable[[str, Any], Any]:
    """Test hook: REPLAY_INJECT_FAULT=NAME makes encoding a variable called NAME fail.

    The tests use it to prove that a fault inside the recorder is counted and reported, and
    never reaches the traced program. Unset (always, outside the tests), it costs nothing.
    """
    target = os.environ.get(ENV_INJECT_FAULT)
    if not target:
        return encode_named

    def faulty(name: str, value: Any) -> Any:
        if name == target:
            raise RuntimeError(f"injected fault while encoding {name!r}")
        return encode_named(name, value)

    return faulty


def touched_now(st: FrameState, ts: ThreadState, switch: list[Any]) -> frozenset[str] | None:
    """What the in-place check may skip after the frame's current line (None: check all).

    `switch` is the recording's [last thread seen here, number of thread switches]. When another
    traced thread ran since this frame's last check, that thread may have changed objects this
    frame holds without any line of this frame naming them (a worker filling a shared dict while
    the main thread waits in join()), so the frame gets the full check.

    After a read line, the thread's latest event tells whether in-scope code ran during it: if
    that event is still the frame's own LINE, nothing was recorded since, and the line's names
    are not checked at all.
    """
    if switch[0] is not ts:
        switch[0] = ts
        switch[1] += 1
    if st.epoch != switch[1]:
        st.epoch = switch[1]
        return None
    info = st.info
    if info is None or not st.line:
        return None
    names = info.touched(st.line)
    if type(names) is ReadNames and ts.events:
        last = ts.events[-1]
        if last[0] == LINE and last[3] == st.call_id:
            return _NOTHING
    return names


def note_unnamed(ts: ThreadState, step: int, value: Any) -> None:
    """Remember a step whose value has no name yet (call before appending the event).

    `password = os.environ.get("DB_PASSWORD")`: the library call's EXTERNAL step carries the
    secret before the assignment gives it a secret-looking name. Until the thread's next LINE,
    `settle_unnamed` may still redact that step, and nothing lets the writer take it earlier.
    """
    kind = type(value)
    if kind is str or kind is bytes:
        if ts.unnamed is None:
            ts.unnamed = [(step, id(value))]
        elif len(ts.unnamed) < 8:
            ts.unnamed.append((step, id(value)))


def settle_unnamed(ts: ThreadState, st: FrameState, changes: tuple | None, final: bool) -> None:
    """Redact remembered steps whose value this event binds to a secret-looking name.

    Called with the changes of the thread's next events, before they are appended. `final`
    (a LINE event: the statement that received the value is over) forgets what is left.
    """
    pending = ts.unnamed
    if pending is None:
        return
    if changes:
        snap = st.snap
        secret_ids = {
            snap[name][0]
            for name, venc in changes
            if type(venc) is tuple and venc and venc[0] == V_REDACTED and name in snap
        }
        if secret_ids:
            for step, value_id in pending:
                if value_id in secret_ids:
                    _redact_step(ts.events, step)
    if final:
        ts.unnamed = None


def _redact_step(events: list[tuple], step: int) -> None:
    for index in range(len(events) - 1, -1, -1):
        event = events[index]
        if event[1] == step:
            payload = event[5]
            if event[0] == EXTERNAL:
                callee, observed, value, exc = payload
                payload = (callee, observed, (V_REDACTED, type(value).__name__), exc)
            else:
                payload = (V_REDACTED, type(payload).__name__)
            events[index] = (*event[:5], payload, *event[6:])
            return
        if event[1] < step:
            return


def read_locals(frame: FrameType, code: CodeType) -> Mapping[str, Any] | None:
    """The mapping to diff for a frame, read without side effects on every supported version.

    Functions: `frame.f_locals` (a fresh dict on 3.11/3.12, a write-through proxy on 3.13 that
    we only read). Module bodies: `f_globals`, never `f_locals`: on 3.12 reading f_locals of a
    module or class frame inside an inlined comprehension sets the loop variable to None
    (CPython gh-108732, trap 1). Class bodies with hidden comprehension locals on 3.12 are not
    read at all for the same reason.
    """
    if code.co_flags & CO_OPTIMIZED:
        return frame.f_locals
    if code.co_name == "<module>":
        return frame.f_globals
    if _PY312 and code.co_nlocals:
        return None
    return frame.f_locals


def diff_locals(
    st: FrameState,
    frame: FrameType,
    encode_named: Callable[[str, Any], Any],
    touched: frozenset[str] | None = None,
) -> tuple[tuple | None, tuple | None]:
    """Changes and deletions of the frame's locals since its previous event; updates st.snap.

    A name counts as changed when it is bound to another object, or when its object is not an
    immutable atom and encodes differently than before (in-place mutation, seen to the capture
    depth). `touched` narrows the in-place check to the names the line that just ran could have
    changed (None: check them all). Once one in-place change is found the check widens to every
    name, since other names may reach the same object (aliases, containers holding it).
    Hot path: written for speed, hence the local aliases and the single pass.
    """
    loc = read_locals(frame, st.code)
    if loc is None:
        return None, None
    snap = st.snap
    changes = None
    seen = 0
    new = 0
    module = st.is_module
    atoms = ATOM_TYPES
    mutated = False
    for name, value in loc.items():
        if module and name[:2] == "__" and name[-2:] == "__":
            continue
        entry = snap.get(name)
        vid = id(value)
        if entry is not None:
            seen += 1
            if entry[0] == vid:
                if type(value) in atoms:
                    continue
                if touched is not None and name not in touched:
                    continue  # re-checked by _recheck_untouched if anything changed in place
                venc = encode_named(name, value)
                if venc == entry[1]:
                    continue
                if not mutated and touched is not None:
                    mutated = True
                    _recheck_untouched(st, loc, encode_named, touched, name)
            else:
                venc = encode_named(name, value)
        else:
            new += 1
            venc = encode_named(name, value)
        snap[name] = (vid, venc)
        if changes is None:
            changes = [(name, venc)]
        else:
            changes.append((name, venc))
    if mutated:
        changes = _merge_rechecked(st, changes)
    deleted = None
    if seen < len(snap) - new:
        # Some remembered name was not seen: it was unbound (del, or cleared by the compiler).
        present = loc.keys()
        gone = [name for name in snap if name not in present]
        for name in gone:
            del snap[name]
        deleted = tuple(gone) if gone else None
    return (tuple(changes) if changes else None), deleted


def _recheck_untouched(
    st: FrameState,
    loc: Mapping[str, Any],
    encode_named: Callable[[str, Any], Any],
    touched: frozenset[str],
    found: str,
) -> None:
    """After an in-place change, re-encode the non-atom names the line did not mention.

    Their changes are parked in `st.rechecked` and merged by `_merge_rechecked`, so the main
    loop's order (and thus the event) stays the same as a full check would give.
    """
    rechecked: dict[str, Any] = {}
    snap = st.snap
    for name, value in loc.items():
        if name in touched or name == found:
            continue
        entry = snap.get(name)
        if entry is None or entry[0] != id(value) or type(value) in ATOM_TYPES:
            continue
        if st.is_module and name[:2] == "__" and name[-2:] == "__":
            continue
        venc = encode_named(name, value)
        if venc != entry[1]:
            rechecked[name] = venc
    st.rechecked = rechecked


def _merge_rechecked(st: FrameState, changes: list | None) -> list | None:
    rechecked = st.rechecked
    st.rechecked = None
    if not rechecked:
        return changes
    changes = list(changes or ())
    names = {name for name, _ in changes}
    for name, venc in rechecked.items():
        if name not in names:
            st.snap[name] = (st.snap[name][0], venc)
            changes.append((name, venc))
    return changes
