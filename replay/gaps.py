"""Gaps: where a recording has no events, and why. How every reader finds and words them.

A GAP event (kind 10, payload `(reason, detail)`, docs/internals.md) stands where events are
missing: `backlog` when `--on-backlog drop` dropped events because the writer fell behind; other
producers add their own reasons. This module is the one place readers learn about gaps, so that
`replay show`, `replay debug`, the engine and the UI find them the same way and present each one
as a gap with its reason, never as silence, whatever the reason is.

Finding them: GAP events live in the chunks like any other event, so a reader that wants them
all decodes the recording's chunks. It does so only for a recording that may have some
(`may_have_gaps`): one whose `events_dropped` is not zero (`backlog` gaps: the producer counts
the events it drops there), or recorded with an option whose producer does not drop steps
(`--max-overhead`: `budget` gaps). A new producer of GAP events adds its test there.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple, Protocol

from replay.events import GAP
from replay.storage import Store


@dataclass(frozen=True, slots=True)
class Gap:
    """One GAP event: where events are missing, and why."""

    step: int
    """The step of the GAP event (the first missing step)."""
    thread: int
    call_id: int
    """The call that was running where the events start missing (0: none known)."""
    line: int
    """Its line there (0: not known)."""
    reason: str
    """A short word: `backlog`, ..."""
    detail: str
    """A sentence for people, e.g. "12,288 events dropped: the writer fell behind"."""
    time_ns: int

    @property
    def text(self) -> str:
        return gap_text(self.reason, self.detail)


def gap_text(reason: str, detail: str) -> str:
    """How every reader words a gap: `gap (backlog): 12,288 events dropped: ...`."""
    return f"gap ({reason}): {detail}" if detail else f"gap ({reason})"


def payload_parts(payload: Any) -> tuple[str, str]:
    """(reason, detail) of a GAP payload; tolerant of a malformed one (never raises)."""
    if isinstance(payload, tuple | list) and payload:
        reason = str(payload[0])
        detail = str(payload[1]) if len(payload) > 1 and payload[1] is not None else ""
        return reason, detail
    return "unknown", "" if payload is None else str(payload)


def gap_of(thread_id: int, event: tuple) -> Gap:
    """The Gap of a GAP event tuple."""
    reason, detail = payload_parts(event[5])
    return Gap(
        step=event[1],
        thread=thread_id,
        call_id=event[3] or 0,
        line=event[4] or 0,
        reason=reason,
        detail=detail,
        time_ns=event[2],
    )


def may_have_gaps(meta: Mapping[str, Any]) -> bool:
    """Whether the recording can hold GAP events worth looking for (see the module docstring)."""
    if meta.get("events_dropped"):
        return True
    config = meta.get("config")
    return isinstance(config, Mapping) and config.get("max_overhead") is not None


def gaps_in(thread_id: int, events: Iterable[tuple]) -> list[Gap]:
    """The gaps among a thread's events."""
    return [gap_of(thread_id, event) for event in events if event[0] == GAP]


def find_gaps(store: Store, recording_id: int, meta: Mapping[str, Any]) -> list[Gap]:
    """Every gap of a recording, in step order (decodes its chunks only if it may have some)."""
    if not may_have_gaps(meta):
        return []
    found: list[Gap] = []
    for info in store.chunk_index(recording_id):
        found.extend(gaps_in(info.thread_id, store.read_chunk(info.id)))
    found.sort(key=lambda gap: gap.step)
    return found


def gaps_between(gaps: Iterable[Gap], thread: int, after: int, upto: int) -> list[Gap]:
    """The gaps of `thread` with `after < step <= upto` (events of that span may be missing)."""
    return [gap for gap in gaps if gap.thread == thread and after < gap.step <= upto]


class CallFacts(Protocol):
    """What `inside_plain_callee` reads of a call (the engine's CallRow has it)."""

    @property
    def parent_id(self) -> int: ...
    @property
    def depth(self) -> int: ...
    @property
    def first_step(self) -> int: ...
    @property
    def last_step(self) -> int | None: ...
    @property
    def generator(self) -> bool: ...


class CallRowFacts(NamedTuple):
    """CallFacts from a `calls` row of the Store API (a dict)."""

    parent_id: int
    depth: int
    first_step: int
    last_step: int | None
    generator: bool

    @classmethod
    def of(cls, row: Mapping[str, Any] | None) -> CallRowFacts | None:
        if row is None:
            return None
        return cls(
            row["parent_id"] or 0,
            row["depth"],
            row["first_step"],
            row["last_step"],
            bool(row["generator"]),
        )


def inside_plain_callee(
    call_id: int, step: int, frame: int, facts: Callable[[int], CallFacts | None]
) -> bool:
    """Whether a gap (in call `call_id`, at `step`) hides nothing of frame `frame` itself.

    True when the gap lies inside a callee of `frame` that is a plain call (not a generator)
    whose end was recorded: such a call runs from its CALL to its last step without `frame`
    running in between, and a gap inside it either is a run of dropped events that ended
    before that last step (`backlog`: dropped events are contiguous and the last step is not
    one of them) or concerns that callee's code only (`budget`). False when in doubt.
    """
    if not call_id or call_id == frame:
        return False
    outer = facts(frame)
    row = facts(call_id)
    if outer is None or row is None:
        return False
    while row is not None and row.depth > outer.depth + 1:
        row = facts(row.parent_id) if row.parent_id else None
    return (
        row is not None
        and row.parent_id == frame
        and not row.generator
        and row.last_step is not None
        and row.first_step < step <= row.last_step
    )
