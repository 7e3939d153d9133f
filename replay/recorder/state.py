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

import itertools
import os
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from types import CodeType, FrameType
from typing import Any

from replay.config import ENV_INJECT_FAULT
from replay.events import ATOM_TYPES
from replay.recorder.scope import Scope

CO_OPTIMIZED = 0x0001
BATCH_EVENTS = 4096
"""A thread hands its list to the writer once it holds this many events."""

_PY312 = sys.version_info[:2] == (3, 12)


class FrameState:
    """What the recorder remembers about one running (or suspended) in-scope frame."""

    __slots__ = (
        "call_id",
        "code",
        "frame_id",
        "is_module",
        "line",
        "pending",
        "pending_code",
        "raised",
        "raised_exc",
        "snap",
    )

    def __init__(self, call_id: int, frame_id: int, code: CodeType) -> None:
        self.call_id = call_id
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
        self.line = 0


class ThreadState:
    """One traced thread: its event list and its stack of in-scope frames."""

    __slots__ = ("events", "ident", "name", "stack", "thread_id")

    def __init__(self, thread_id: int, ident: int, name: str) -> None:
        self.thread_id = thread_id
        self.ident = ident
        self.name = name
        self.events: list[tuple] = []
        self.stack: list[FrameState] = []


class CodeInfo:
    """A code object the recorder has seen in scope; becomes a `functions` row."""

    __slots__ = ("_lines", "code", "code_id", "filename", "firstlineno", "name", "qualname")

    def __init__(self, code_id: int, code: CodeType) -> None:
        self.code_id = code_id
        self.code = code
        self.filename = code.co_filename
        self.name = code.co_name
        self.qualname = getattr(code, "co_qualname", code.co_name)
        self.firstlineno = code.co_firstlineno
        self._lines: dict[int, int | None] | None = None

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
        self.encode_named = _with_injected_fault(encode_named)
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
        """id(frame) -> state of a suspended generator/coroutine frame (any thread may resume it)."""
        self.handoff: deque[tuple[int, list[tuple]]] = deque()
        """Full per-thread lists waiting for the writer: (thread_id, events)."""
        self.local = threading.local()
        self.on_backlog: Callable[[], None] | None = None
        """Called by a traced thread when the writer is too far behind (see writer.py)."""
        self.max_pending = 256
        self.faults = 0
        self.last_fault = ""

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
        live = sys._current_frames().keys()
        self.threads = [ts for ts in self.threads if ts.events or ts.ident in live]

    def register_code(self, code: CodeType) -> CodeInfo:
        info = CodeInfo(len(self.codes) + 1, code)
        self.codes[id(code)] = info
        self.new_codes.append(info)
        return info

    def hand_off(self, ts: ThreadState) -> None:
        """Give the thread's full list to the writer and start a new one (the traced thread's side)."""
        events = ts.events
        ts.events = []
        self.handoff.append((ts.thread_id, events))
        if len(self.handoff) > self.max_pending and self.on_backlog is not None:
            self.on_backlog()

    def fault(self, exc: BaseException) -> None:
        """A bug in the recorder: count it and keep the program running."""
        self.faults += 1
        if not self.last_fault:
            self.last_fault = f"{type(exc).__name__}: {exc}"


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
) -> tuple[tuple | None, tuple | None]:
    """Changes and deletions of the frame's locals since its previous event; updates st.snap.

    A name counts as changed when it is bound to another object, or when its object is not an
    immutable atom and encodes differently than before (in-place mutation, seen to the capture
    depth). Hot path: written for speed, hence the local aliases and the single pass.
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
                venc = encode_named(name, value)
                if venc == entry[1]:
                    continue
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
    deleted = None
    if seen < len(snap) - new:
        # Some remembered name was not seen: it was unbound (del, or cleared by the compiler).
        present = loc.keys()
        gone = [name for name in snap if name not in present]
        for name in gone:
            del snap[name]
        deleted = tuple(gone) if gone else None
    return (tuple(changes) if changes else None), deleted
