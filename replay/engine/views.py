"""The engine's answers: plain frozen records, values still encoded (render with replay.values)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from replay.engine.breakpoints import Breakpoint
    from replay.gaps import Gap


class _Unbound:
    """The value of a name that is not bound (before its first binding, after `del`)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "<unbound>"


UNBOUND: Any = _Unbound()


@dataclass(frozen=True, slots=True)
class Frame:
    """One frame of the call stack at a step."""

    call_id: int
    function: str
    """Qualified name of its code."""
    file: str
    line: int
    """The line the frame is at: the line of its latest event at or before the step."""
    locals: dict[str, Any]
    """Name -> encoded value, as recorded at the step; an object a frame that ran later also
    holds shows as that frame last recorded it (replay/engine/identity.py)."""
    args: dict[str, Any]
    """The locals bound when the call started: its arguments."""
    code_id: int
    gap: Gap | None = None
    """The latest gap (missing events) the frame lived through up to the step, if any: its
    locals may miss changes made during it, and its line may be older than shown."""


@dataclass(frozen=True, slots=True)
class Outcome:
    """How a call ends (or pauses) at a RETURN, UNWIND or YIELD step."""

    kind: str
    """'return', 'unwind' (left by an exception) or 'yield'."""
    value: Any
    """The returned/yielded value's venc, or the exception's venc."""
    exc_type: str | None = None
    message: str | None = None


@dataclass(frozen=True, slots=True)
class Stop:
    """Where a movement ended and why."""

    step: int
    thread: int
    reason: str
    """'step', 'breakpoint', 'end' (nothing further that way), 'start', 'goto', 'exception',
    'gap' (a next/finish stopped where the frame's events may be missing: a GAP step)."""
    breakpoint: Breakpoint | None = None
    message: str = ""


@dataclass(frozen=True, slots=True)
class Change:
    """A variable of one frame getting a new value (or being unbound)."""

    step: int
    """The step at which the new value is first seen (the frame's event after the binding)."""
    line: int
    """The line that made the change: the line of the frame's previous event (for arguments,
    the line of the call)."""
    old: Any
    new: Any
    """Encoded values; UNBOUND before the first binding and after `del`."""
    thread: int = 0
    call_id: int = 0


@dataclass(frozen=True, slots=True)
class Match:
    """A search result: a step where a frame's variables satisfied a condition."""

    step: int
    thread: int
    call_id: int
    function: str
    file: str
    line: int
    values: dict[str, Any]
    """The condition's names bound in the frame, with their values then."""
