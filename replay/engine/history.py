"""Value history, origin and search: questions about how variables changed over time.

This module owns the reading of a frame's changes across its whole life. A call's events are
read from the chunk holding its CALL, then, for every later chunk of its life, from the index's
digest (the changes made by frames live at the chunk's start), skipping chunks whose summary
shows the name never changed there. So the history of a variable of a frame that lives for
millions of steps reads small digests, not every chunk.

Semantics (docs/engine.md): a change is reported at the step where the new value is first seen,
i.e. the frame's next event after the binding, with the line that made it (the frame's previous
event's line). The recording cannot tell two bindings between two events of a frame apart: the
last one wins. Changes a generator makes while resumed on another thread are not seen (its
events there belong to that thread's stream).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from replay.engine.errors import EngineError
from replay.engine.expr import Expression
from replay.engine.views import UNBOUND, Change, Match

if TYPE_CHECKING:
    from replay.engine.cursor import CallRow
    from replay.engine.engine import Engine

Raw = tuple[int, int, Any, Any]
"""(step, line that made it, changes, deleted) of one event of the frame."""


def _call(engine: Engine, call_id: int) -> CallRow:
    row = engine.call_row(call_id)
    if row is None:
        raise EngineError(f"no call {call_id} in the recording")
    return row


def frame_events(engine: Engine, call_id: int, name: str | None = None) -> Iterator[Raw]:
    """The frame's events that changed something, in order (only those touching `name`)."""
    row = _call(engine, call_id)
    stream = engine.stream(row.thread_id)
    index = engine.index(row.thread_id)
    start = stream.at_or_after(row.first_step)
    if start is None:
        return
    k0 = start[0]
    k_end = len(stream) - 1
    if row.last_step is not None:
        last = stream.at_or_before(row.last_step)
        k_end = last[0] if last is not None else k0
    # The chunk holding the CALL: read its events.
    prev_line = 0
    for event in stream.events(k0)[start[1] :]:
        if event[3] != call_id:
            continue
        if event[0] == 0:  # CALL: arguments are bound by the call's own line
            prev_line = event[4]
        if event[6] or event[7]:
            yield (event[1], prev_line, event[6], event[7])
        prev_line = event[4]
    # Later chunks: the frame is live at their start, its changes are in the digests.
    for k in range(k0 + 1, k_end + 1):
        if name is not None and name not in index.summary(k).names:
            continue
        yield from index.digest(k).get(call_id, ())


def frame_events_backward(engine: Engine, call_id: int, name: str, at_step: int) -> Iterator[Raw]:
    """The frame's events touching `name` at or before `at_step`, newest first."""
    row = _call(engine, call_id)
    stream = engine.stream(row.thread_id)
    index = engine.index(row.thread_id)
    start = stream.at_or_after(row.first_step)
    end = stream.at_or_before(at_step)
    if start is None or end is None:
        return
    k0 = start[0]
    for k in range(end[0], k0, -1):
        if name not in index.summary(k).names:
            continue
        for raw in reversed(index.digest(k).get(call_id, ())):
            if raw[0] <= at_step:
                yield raw
    first_chunk = [
        raw for raw in _chunk_raws(stream.events(k0)[start[1] :], call_id) if raw[0] <= at_step
    ]
    yield from reversed(first_chunk)


def _chunk_raws(events: list[tuple], call_id: int) -> Iterator[Raw]:
    prev_line = 0
    for event in events:
        if event[3] != call_id:
            continue
        if event[0] == 0:
            prev_line = event[4]
        if event[6] or event[7]:
            yield (event[1], prev_line, event[6], event[7])
        prev_line = event[4]


def _value_in(raw: Raw, name: str) -> Any:
    """The new value `raw` gives `name`, UNBOUND if it deletes it, None if it leaves it."""
    changes, deleted = raw[2], raw[3]
    if changes:
        for key, venc in changes:
            if key == name:
                return (venc,)
    if deleted and name in deleted:
        return (UNBOUND,)
    return None


def iter_history(engine: Engine, call_id: int, name: str, thread: int = 0) -> Iterator[Change]:
    """Every change of `name` in the frame, oldest first, read as it goes (bounded memory)."""
    old: Any = UNBOUND
    for raw in frame_events(engine, call_id, name):
        found = _value_in(raw, name)
        if found is None:
            continue
        new = found[0]
        yield Change(raw[0], raw[1], old, new, thread, call_id)
        old = new


def origin(engine: Engine, call_id: int, name: str, at_step: int, thread: int = 0) -> Change | None:
    """The change that gave `name` its value at `at_step` (with the value before it)."""
    latest: Raw | None = None
    new: Any = None
    for raw in frame_events_backward(engine, call_id, name, at_step):
        found = _value_in(raw, name)
        if found is None:
            continue
        if latest is None:
            latest, new = raw, found[0]
            continue
        return Change(latest[0], latest[1], found[0], new, thread, call_id)
    if latest is None:
        return None
    return Change(latest[0], latest[1], UNBOUND, new, thread, call_id)


def search(
    engine: Engine,
    condition: str,
    *,
    call_id: int | None = None,
    thread: int | None = None,
    limit: int = 100,
) -> list[Match]:
    """Steps where a frame bound one of the condition's names and the condition then held.

    With `call_id`, only that call and the calls below it (its dynamic subtree) are searched.
    """
    expr = Expression(condition)
    if not expr.names:
        raise EngineError(f"{condition!r} names no variable to watch")
    names = expr.names
    if call_id is not None:
        row = _call(engine, call_id)
        threads = [row.thread_id]
        lo, hi = row.first_step, row.last_step
    else:
        threads = [thread] if thread is not None else engine.thread_ids
        lo, hi = None, None
    matches: list[Match] = []
    for thread_id in threads:
        _search_thread(
            engine,
            thread_id,
            expr=expr,
            names=names,
            call_id=call_id,
            lo=lo,
            hi=hi,
            limit=limit,
            matches=matches,
        )
    matches.sort(key=lambda m: m.step)
    return matches[:limit]


def _search_thread(
    engine: Engine,
    thread_id: int,
    *,
    expr: Expression,
    names: frozenset[str],
    call_id: int | None,
    lo: int | None,
    hi: int | None,
    limit: int,
    matches: list[Match],
) -> None:
    stream = engine.stream(thread_id)
    index = engine.index(thread_id)
    resolve = engine.resolve
    k_first = 0 if lo is None else (stream.at_or_after(lo) or (len(stream), 0))[0]
    k_last = len(stream) - 1 if hi is None else (stream.at_or_before(hi) or (-1, 0))[0]
    found = 0
    for k in range(k_first, k_last + 1):
        if names.isdisjoint(index.summary(k).names):
            continue
        state = index.checkpoint(k)
        for event in stream.events(k):
            kind, step = event[0], event[1]
            frame = state.apply(event, resolve, pop=False)
            touched = event[6] or event[7]
            if (
                touched
                and (lo is None or lo <= step)
                and (hi is None or step <= hi)
                and _touches(event, names)
                and (call_id is None or call_id in state.stack)
                and expr.test(frame.locals)
            ):
                matches.append(
                    Match(
                        step=step,
                        thread=thread_id,
                        call_id=frame.call_id,
                        function=engine.function_name(frame.code_id),
                        file=engine.function_file(frame.code_id),
                        line=event[4],
                        values={n: frame.locals[n] for n in sorted(names) if n in frame.locals},
                    )
                )
                found += 1
                if found >= limit:
                    return
            if kind in (2, 5, 6):  # RETURN, UNWIND, YIELD: finish the event
                state.leave(kind, event[3])


def _touches(event: tuple, names: frozenset[str]) -> bool:
    changes, deleted = event[6], event[7]
    if changes:
        for key, _ in changes:
            if key in names:
                return True
    return bool(deleted) and not names.isdisjoint(deleted)
