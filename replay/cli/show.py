"""`replay show`: one recording as text: a header, the call tree, and the uncaught exception.

The call tree is collapsed to fit a screen or two: consecutive calls of the same function from
the same caller print once with a count, subtrees below `--depth` print as one line, and the
whole tree stops at `--lines`; the output says how many calls were left out. For a failed
recording, every frame on the exception's path is listed from the outermost to the innermost,
with its locals as they were when the exception left it.

Where events are missing (GAP events, replay.gaps) it says so, with the reason: the header
counts them, a "Gaps" section lists where they are, the call tree marks the calls a gap fell
in (`[gap: backlog]`) and those whose end was lost in one, and the exception's frames note the
gaps they lived through (their locals may miss changes made then).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated, Any

import typer

from replay.cli.common import (
    REC_CONTEXT,
    check_rec,
    display_path,
    effective_status,
    human_duration,
    local_time,
    store_path,
)
from replay.cli.typer_app import RecArgument, StoreOption
from replay.events import V_OPAQUE
from replay.gaps import CallRowFacts, Gap, find_gaps, gaps_between, inside_plain_callee
from replay.reader import open_recording
from replay.values import short_repr

_MAX_LOCALS = 40
_MAX_GAPS = 10


def show(
    rec: RecArgument = None,
    *,
    store: StoreOption = None,
    lines: Annotated[
        int,
        typer.Option("--lines", metavar="N", min=1, help="At most this many lines of call tree."),
    ] = 40,
    depth: Annotated[
        int,
        typer.Option("--depth", metavar="N", min=1, help="Collapse calls nested deeper than this."),
    ] = 12,
) -> None:
    """Summarise a recording: the call tree, and the uncaught exception with its locals."""
    with open_recording(store_path(store), check_rec(rec)) as reader:
        for line in render(reader, max_lines=lines, max_depth=depth):
            print(line)


def render(reader: Any, *, max_lines: int, max_depth: int) -> Iterator[str]:
    """Every line of `replay show` for one recording."""
    meta = reader.meta
    cwd = meta.get("cwd")
    gaps = find_gaps(reader.store, reader.recording_id, meta)
    yield from _header(meta, gaps)
    yield ""
    roots, total = reader.call_tree(max_calls=max(10_000, max_lines * 50))
    yield from _call_tree(
        roots, total, cwd, max_lines=max_lines, max_depth=max_depth, gaps=_GapMarks(gaps)
    )
    if gaps:
        yield ""
        yield from _gaps(reader, gaps, cwd)
    if meta.get("exception_type"):
        yield ""
        yield from _exception(reader, cwd, gaps)


# -- header ----------------------------------------------------------------------------------


def _header(meta: dict[str, Any], gaps: list[Gap]) -> Iterator[str]:
    title = f"Recording {meta['id']}"
    if meta.get("name"):
        title += f" [{meta['name']}]"
    yield f"{title}: {meta.get('command') or '?'}"
    status = effective_status(meta)
    if meta.get("exit_code") is not None:
        status += f", exit code {meta['exit_code']}"
    yield f"  status    {status}"
    started, ended = meta.get("started_at"), meta.get("ended_at")
    duration = human_duration(ended - started) if started and ended else "-"
    yield f"  started   {local_time(started)}   duration {duration}   steps {meta['steps']:,}"
    python = f"{meta.get('python') or '?'} ({meta.get('implementation') or '?'})"
    yield f"  python    {python}   backend {meta.get('backend') or '?'}   pid {meta.get('pid')}"
    if meta.get("parent_id") is not None:
        yield f"  parent    recording {meta['parent_id']}"
    dropped = meta.get("events_dropped") or 0
    if dropped:
        where = f"in {len(gaps):,} gap(s), listed below" if gaps else "(shown as gaps)"
        yield f"  dropped   {dropped:,} events {where}"
    elif gaps:
        yield f"  gaps      {len(gaps):,}, listed below: events were not recorded there"
    if meta.get("tracer_faults"):
        yield f"  faults    {meta['tracer_faults']} in the tracer: {meta.get('fault_message')}"


# -- call tree -------------------------------------------------------------------------------


class _GapMarks:
    """What the call tree says about gaps: the calls a gap fell in, and lost ends."""

    def __init__(self, gaps: list[Gap]) -> None:
        self.reasons: dict[int, list[str]] = {}
        for gap in gaps:
            reasons = self.reasons.setdefault(gap.call_id, [])
            if gap.reason not in reasons:
                reasons.append(gap.reason)
        self.last_gap: dict[int, int] = {}
        for gap in gaps:
            self.last_gap[gap.thread] = max(gap.step, self.last_gap.get(gap.thread, 0))

    def mark(self, node: Any) -> str:
        marks = []
        reasons = self.reasons.get(node.call_id)
        if reasons:
            marks.append(f"[gap: {', '.join(reasons)}]")
        if node.last_step is None and self.last_gap.get(node.thread, 0) > node.first_step:
            marks.append("[end lost in a gap]")
        return "  ".join(marks)


@dataclass
class _TreeView:
    """What the tree may still print, and how."""

    lines_left: int
    max_depth: int
    cwd: str | None
    gaps: _GapMarks
    shown: int = 0


def _call_tree(
    roots: list[Any],
    total: int,
    cwd: str | None,
    *,
    max_lines: int,
    max_depth: int,
    gaps: _GapMarks,
) -> Iterator[str]:
    if not roots:
        yield "No calls were recorded (was any of the program's code in scope?)."
        return
    threads = sorted({root.thread for root in roots})
    view = _TreeView(max_lines, max_depth, cwd, gaps)
    yield f"Calls ({total:,}):"
    for thread in threads:
        if len(threads) > 1:
            yield f"thread {thread}"
        yield from _subtree([root for root in roots if root.thread == thread], "", 1, view)
    hidden = total - view.shown
    if hidden > 0:
        yield f"({hidden:,} more calls folded or cut: --lines, --depth show more; export has all)"


def _subtree(nodes: list[Any], prefix: str, depth: int, view: _TreeView) -> Iterator[str]:
    tee, last_tee, bar, space = _glyphs()
    groups = list(_runs(nodes, view.gaps))
    for index, group in enumerate(groups):
        if view.lines_left <= 0:
            return
        last = index == len(groups) - 1
        node = group[0]
        label = _label(node, view.cwd)
        if len(group) > 1:
            label += f"  x{len(group)}"
        mark = view.gaps.mark(node)
        if mark:
            label += f"  {mark}"
        yield prefix + (last_tee if last else tee) + label
        view.lines_left -= 1
        view.shown += len(group)
        child_prefix = prefix + (space if last else bar)
        if not node.children:
            continue
        if depth >= view.max_depth:
            below = sum(_size(child) for child in node.children)
            yield f"{child_prefix}{last_tee}... {below:,} calls below"
            view.lines_left -= 1
            continue
        yield from _subtree(node.children, child_prefix, depth + 1, view)


def _runs(nodes: list[Any], gaps: _GapMarks) -> Iterator[list[Any]]:
    """Consecutive sibling calls of one function with one outcome (and gap mark), as groups."""
    group: list[Any] = []
    key: tuple[Any, ...] = ()
    for node in nodes:
        node_key = (node.function, node.file, node.exception, gaps.mark(node))
        if group and node_key != key:
            yield group
            group = []
        key = node_key
        group.append(node)
    if group:
        yield group


def _size(node: Any) -> int:
    return 1 + sum(_size(child) for child in node.children)


def _label(node: Any, cwd: str | None) -> str:
    where = f"{display_path(node.file, cwd)}:{node.line}" if node.file != "?" else "?"
    mark = "  [raised]" if node.exception else ""
    return f"{node.function}  {where}{mark}"


def _glyphs() -> tuple[str, str, str, str]:
    encoding = getattr(sys.stdout, "encoding", None) or "ascii"
    try:
        "├└│─".encode(encoding)
    except (UnicodeEncodeError, LookupError):
        return "|-- ", "`-- ", "|   ", "    "
    return "├── ", "└── ", "│   ", "    "


# -- gaps ------------------------------------------------------------------------------------


def _gaps(reader: Any, gaps: list[Gap], cwd: str | None) -> Iterator[str]:
    """Where events are missing, and why (the first _MAX_GAPS)."""
    threads = {gap.thread for gap in gaps}
    yield f"Gaps ({len(gaps):,}): events are missing from these steps on"
    for gap in gaps[:_MAX_GAPS]:
        where = _gap_place(reader, gap, cwd)
        thread = f"  thread {gap.thread}" if len(threads) > 1 else ""
        yield f"  step {gap.step:,}{thread}  {where}  {gap.text}"
    if len(gaps) > _MAX_GAPS:
        yield (
            f"  ({len(gaps) - _MAX_GAPS:,} more gaps: `replay debug` lists them with "
            "`info gaps`; `replay export` has them all)"
        )


def _gap_place(reader: Any, gap: Gap, cwd: str | None) -> str:
    """`function()  file:line` of the call a gap fell in, as far as it is known."""
    call = reader.store.call(reader.recording_id, gap.call_id) if gap.call_id else None
    if call is None:
        return "(in no recorded call)"
    function = reader.function_name(call["function_id"])
    path = display_path(reader.function_file(call["function_id"]), cwd)
    return f"in {function}()  {path}" + (f":{gap.line}" if gap.line else "")


# -- the uncaught exception ------------------------------------------------------------------


def _exception(reader: Any, cwd: str | None, gaps: list[Gap]) -> Iterator[str]:
    meta = reader.meta
    message = meta.get("exception_message")
    yield f"Uncaught {meta['exception_type']}" + (f": {message}" if message else "")
    frames = reader.exception_path()
    if not frames:
        yield "  (it was raised outside the recorded code: no recorded frame on its path)"
        if gaps:
            yield (
                f"  (or its path fell in a gap: the recording has {len(gaps):,}, "
                f"the last at step {gaps[-1].step:,}: {gaps[-1].text})"
            )
        return
    yield "Frames, outermost first, with their locals when the exception left them:"
    for index, frame in enumerate(frames):
        yield f"  {frame.function}  {display_path(frame.file, cwd)}:{frame.line}"
        callee = frames[index + 1] if index + 1 < len(frames) else None
        yield from _frame_gaps(reader, frame, callee, gaps)
        yield from _locals(frame)


def _frame_gaps(reader: Any, frame: Any, callee: Any, gaps: list[Gap]) -> Iterator[str]:
    """A note for each gap during which the frame may have run: its locals may miss changes.

    Not noted: a gap inside a plain callee whose end was recorded (replay.gaps), such as its
    callee on the path, which runs from its CALL to the UNWIND recorded on the path.
    """
    if not gaps:
        return
    store, rec = reader.store, reader.recording_id
    call = store.call(rec, frame.call_id)
    if call is None:
        return
    rows: dict[int, CallRowFacts | None] = {}

    def facts(call_id: int) -> CallRowFacts | None:
        if call_id not in rows:
            rows[call_id] = CallRowFacts.of(store.call(rec, call_id))
        return rows[call_id]

    lived = gaps_between(gaps, call["thread_id"], call["first_step"], frame.step)
    inner = facts(callee.call_id) if callee is not None and lived else None
    if inner is not None and not inner.generator:
        lived = [g for g in lived if not inner.first_step < g.step <= callee.step]
    lived = [g for g in lived if not inside_plain_callee(g.call_id, g.step, frame.call_id, facts)]
    for gap in lived[:3]:
        yield (
            f"      (gap at step {gap.step:,} while it ran, {gap.reason}: {gap.detail}; "
            "values changed then may be out of date)"
        )
    if len(lived) > 3:
        yield f"      ({len(lived) - 3:,} more gaps while it ran)"


def _locals(frame: Any) -> Iterator[str]:
    """`name = value` lines; a module's functions, classes and imports are only counted."""
    opaque = 0
    items = list(frame.locals.items())
    if frame.function == "<module>":
        kept = [(name, venc) for name, venc in items if not _is_opaque(venc)]
        opaque = len(items) - len(kept)
        items = kept
    for name, venc in items[:_MAX_LOCALS]:
        yield f"      {name} = {short_repr(venc)}"
    if len(items) > _MAX_LOCALS:
        yield f"      ({len(items) - _MAX_LOCALS} more locals not shown)"
    if opaque:
        yield f"      ({opaque} functions, classes and modules not shown)"


def _is_opaque(venc: Any) -> bool:
    return type(venc) is tuple and bool(venc) and venc[0] == V_OPAQUE


def register(app: typer.Typer) -> None:
    """Add `show` to the app."""
    app.command(
        "show",
        context_settings=REC_CONTEXT,
        short_help="Show a recording: call tree, exception, locals.",
    )(show)
