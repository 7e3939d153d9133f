"""`replay show`: one recording as text: a header, the call tree, and the uncaught exception.

The call tree is collapsed to fit a screen or two: consecutive calls of the same function from
the same caller print once with a count, subtrees below `--depth` print as one line, and the
whole tree stops at `--lines`; the output says how many calls were left out. For a failed
recording, every frame on the exception's path is listed from the outermost to the innermost,
with its locals as they were when the exception left it.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated, Any

import typer

from replay.cli.common import (
    REC_CONTEXT,
    RecArgument,
    StoreOption,
    check_rec,
    display_path,
    effective_status,
    human_duration,
    local_time,
    store_path,
)
from replay.events import V_OPAQUE
from replay.reader import open_recording
from replay.values import short_repr

_MAX_LOCALS = 40


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
    yield from _header(meta)
    yield ""
    roots, total = reader.call_tree(max_calls=max(10_000, max_lines * 50))
    yield from _call_tree(roots, total, cwd, max_lines=max_lines, max_depth=max_depth)
    if meta.get("exception_type"):
        yield ""
        yield from _exception(reader, cwd)


# -- header ----------------------------------------------------------------------------------


def _header(meta: dict[str, Any]) -> Iterator[str]:
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
    if meta.get("events_dropped"):
        yield f"  dropped   {meta['events_dropped']:,} events (shown as gaps)"
    if meta.get("tracer_faults"):
        yield f"  faults    {meta['tracer_faults']} in the tracer: {meta.get('fault_message')}"


# -- call tree -------------------------------------------------------------------------------


@dataclass
class _TreeView:
    """What the tree may still print, and how."""

    lines_left: int
    max_depth: int
    cwd: str | None
    shown: int = 0


def _call_tree(
    roots: list[Any], total: int, cwd: str | None, *, max_lines: int, max_depth: int
) -> Iterator[str]:
    if not roots:
        yield "No calls were recorded (was any of the program's code in scope?)."
        return
    threads = sorted({root.thread for root in roots})
    view = _TreeView(max_lines, max_depth, cwd)
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
    groups = list(_runs(nodes))
    for index, group in enumerate(groups):
        if view.lines_left <= 0:
            return
        last = index == len(groups) - 1
        node = group[0]
        label = _label(node, view.cwd)
        if len(group) > 1:
            label += f"  x{len(group)}"
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


def _runs(nodes: list[Any]) -> Iterator[list[Any]]:
    """Consecutive sibling calls of one function with one outcome, as groups."""
    group: list[Any] = []
    for node in nodes:
        if group and (node.function, node.file, node.exception) != (
            group[0].function,
            group[0].file,
            group[0].exception,
        ):
            yield group
            group = []
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


# -- the uncaught exception ------------------------------------------------------------------


def _exception(reader: Any, cwd: str | None) -> Iterator[str]:
    meta = reader.meta
    message = meta.get("exception_message")
    yield f"Uncaught {meta['exception_type']}" + (f": {message}" if message else "")
    frames = reader.exception_path()
    if not frames:
        yield "  (it was raised outside the recorded code: no recorded frame on its path)"
        return
    yield "Frames, outermost first, with their locals when the exception left them:"
    for frame in frames:
        yield f"  {frame.function}  {display_path(frame.file, cwd)}:{frame.line}"
        yield from _locals(frame)


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
