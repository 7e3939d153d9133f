"""`replay debug`: a line-oriented reverse debugger over a recording, in pdb/gdb/rr habits.

Commands come from the terminal (with a prompt and line editing), from standard input (one per
line: `echo "n\\nn\\np x" | replay debug`) or from `-c "cmd; cmd"` (then the debugger exits).
After every movement it prints where it stands on one line, gdb-style, then the source line:

    step 123  shop.py:42 in checkout()
        42      total = sum(item.price for item in order.items)

A command that fails (unknown command, bad expression, no such step...) prints one line on
stderr, `error: ...`, and the session goes on. A session that is not interactive (stdin is not a
terminal, or -c) exits with status 1 if any of its commands failed, else 0, so scripts can tell;
an interactive one exits 0. Errors opening the recording are reported by `replay.cli.main` as
one line with a non-zero status. All the work is done by `replay.engine`; this module only
parses commands and prints answers.

Gaps (steps where events are missing, replay.gaps) are shown as such, with their reason: at a
GAP step the location line says `[gap (backlog): 12,288 events dropped: ...]`, a next or
finish that stops at one says so, `bt` marks the frames that lived through one and `locals`
warns that their values may be out of date, `goto` into missing steps names the gap, and
`info gaps` lists them all.
"""

from __future__ import annotations

import contextlib
import re
import sys
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from typing import IO, Annotated, Any

import typer

from replay.cli.common import (
    REC_CONTEXT,
    check_rec,
    display_path,
    store_path,
)
from replay.cli.typer_app import RecArgument, StoreOption
from replay.engine import UNBOUND, Change, Engine, EngineError, Frame, Stop
from replay.events import V_OPAQUE
from replay.exceptions import ReplayError
from replay.values import short_repr

_VALUE_LIMIT = 1000
_ARG_LIMIT = 40
_LIST_CONTEXT = 5
_NOTE_INDEX_CHUNKS = 250  # about a million steps

HELP = """\
Moving (forwards / in reverse; N repeats):
  s, step [N]          / rs, reverse-step [N]     one event, into calls
  n, next [N]          / rn, reverse-next [N]     the frame's next/previous event, over calls
  f, finish            / rf, reverse-finish       to the call's return (its start); again: caller's
  c, continue          / rc, reverse-continue     to the next/previous breakpoint hit (any thread)
  goto N               to step N            goto call ID [end]   to a call's first/last step
  exception [N]        to where the uncaught exception (or the N-th raised one) was raised
  thread [N]           show or switch threads (standing where that thread was at this step)
Breakpoints:
  b, break FILE:LINE [if COND]   b FUNCTION [if COND]   b exception [TYPE] [if COND]
  delete [N]   disable N   enable N   info breakpoints
State at the cursor (over recorded values only):
  bt, tb, where        the call stack         up [N], down [N]   select a frame for p/locals
  p, print EXPR        a value or path: x, order.items[0].price, len(items) > 3
  locals, args         the selected frame's locals / arguments
  history VAR          every change of VAR in the selected frame's call
  origin VAR           the step that gave VAR its current value
  search COND [in CALL]  steps where a variable changed so that COND held
  list, l [LINE]       source around the cursor (from the recording)
  info threads | info exceptions | info gaps | info recording
  help, q, quit"""


class CommandError(ReplayError):
    """A command the debugger cannot run as written."""


class Debugger:
    """The command interpreter; `run(lines)` executes commands, printing to `out`/`err`."""

    def __init__(self, engine: Engine, out: IO[str], err: IO[str]) -> None:
        self.engine = engine
        self.out = out
        self.err = err
        self.level = 0
        """The selected frame (0: innermost), for p/locals/history/origin; reset by movements."""
        self.failures = 0
        self._sources: dict[str, list[str] | None] = {}
        self._cwd = engine.meta.get("cwd")
        self.quit = False
        self._commands: dict[str, Callable[[str], None]] = {}
        for names, handler in self._table():
            for name in names:
                self._commands[name] = handler

    # -- the loop ------------------------------------------------------------------------

    def run(self, lines: Iterable[str]) -> None:
        for line in lines:
            self.execute(line)
            if self.quit:
                return

    def execute(self, line: str) -> None:
        """Run one command line; errors become one line on `err`."""
        line = line.strip()
        if not line or line.startswith("#"):
            return
        word, rest = [*line.split(None, 1), ""][:2]
        handler = self._commands.get(word)
        try:
            if handler is None:
                raise CommandError(f"unknown command {word!r} (type `help`)")
            handler(rest.strip())
        except ReplayError as error:
            self._error(str(error))
        except KeyboardInterrupt:
            self._error("interrupted")
        except BrokenPipeError:
            raise  # the reader went away (`| head`): replay.cli.main ends quietly
        except Exception as error:  # a bug in replay: one line, not a traceback
            self._error(f"internal error: {type(error).__name__}: {error}")

    def _error(self, message: str) -> None:
        self.failures += 1
        self.out.flush()
        self.err.write("error: " + " ".join(message.split()) + "\n")
        self.err.flush()

    def say(self, text: str = "") -> None:
        self.out.write(text + "\n")

    def _table(self) -> list[tuple[tuple[str, ...], Callable[[str], None]]]:
        e = self.engine
        return [
            (("s", "step"), self._repeat(e.step)),
            (("n", "next"), self._repeat(e.next)),
            (("f", "finish", "r", "return"), self._once(e.finish)),
            (("c", "cont", "continue"), self._once(e.continue_)),
            (("rs", "reverse-step"), self._repeat(e.reverse_step)),
            (("rn", "reverse-next"), self._repeat(e.reverse_next)),
            (("rf", "reverse-finish"), self._once(e.reverse_finish)),
            (("rc", "reverse-continue"), self._once(e.reverse_continue)),
            (("goto", "g"), self.cmd_goto),
            (("exception",), self.cmd_exception),
            (("thread",), self.cmd_thread),
            (("b", "break"), self.cmd_break),
            (("delete", "d"), self.cmd_delete),
            (("disable",), lambda arg: self._enable(arg, False)),
            (("enable",), lambda arg: self._enable(arg, True)),
            (("info", "i"), self.cmd_info),
            (("bt", "tb", "backtrace", "where", "w"), self.cmd_backtrace),
            (("up", "u"), lambda arg: self._select(arg, +1)),
            (("down",), lambda arg: self._select(arg, -1)),
            (("p", "print"), self.cmd_print),
            (("locals",), self.cmd_locals),
            (("args", "a"), self.cmd_args),
            (("history",), self.cmd_history),
            (("origin",), self.cmd_origin),
            (("search",), self.cmd_search),
            (("list", "l"), self.cmd_list),
            (("help", "h", "?"), self.cmd_help),
            (("q", "quit", "exit"), self.cmd_quit),
        ]

    # -- movements -----------------------------------------------------------------------

    def _once(self, move: Callable[[], Stop]) -> Callable[[str], None]:
        def handler(arg: str) -> None:
            if arg:
                raise CommandError(f"this command takes no argument (got {arg!r})")
            self._moved(move())

        return handler

    def _repeat(self, move: Callable[[], Stop]) -> Callable[[str], None]:
        def handler(arg: str) -> None:
            count = _count(arg)
            stop = move()
            for _ in range(count - 1):
                if stop.reason in ("end", "start"):
                    break
                stop = move()
            self._moved(stop)

        return handler

    def _moved(self, stop: Stop) -> None:
        self.level = 0
        if stop.reason == "breakpoint" and stop.breakpoint is not None:
            self.say(f"Breakpoint {stop.breakpoint.describe()}")
        elif stop.reason in ("end", "start"):
            self.say(f"({stop.message or stop.reason})")
        elif stop.reason == "exception" and stop.message:
            self.say(f"raised {stop.message}")
        elif stop.message:
            self.say(f"({stop.message})")
        self.where()

    def where(self) -> None:
        """The cursor's location line, then its source line."""
        cursor = self.engine.cursor
        parts = [f"step {cursor.step}"]
        if len(self.engine.thread_ids) > 1:
            parts.append(f"thread {cursor.thread_id}")
        line = f":{cursor.line}" if cursor.line or cursor.gap is None else ""  # a gap's: unknown
        where = self._path(cursor.file) + line
        parts.append(f"{where} in {cursor.function}()")
        detail = self._event_detail()
        if detail:
            parts.append(f"[{detail}]")
        self.say("  ".join(parts))
        source = self._source_line(cursor.file, cursor.line)
        if source is not None:
            self.say(f"    {cursor.line:<6}{source}")

    def _event_detail(self) -> str:
        cursor = self.engine.cursor
        kind = cursor.kind
        outcome = cursor.outcome
        if outcome is not None:
            if outcome.kind == "unwind":
                return f"unwind {outcome.exc_type}: {outcome.message}"
            return f"{outcome.kind} {short_repr(outcome.value, 80)}"
        payload = cursor.event[5]
        if kind in ("exception", "handled", "throw"):
            return f"{kind} {payload[0]}: {payload[1]}"
        if kind == "external":
            callee, observed, value, exc = payload
            if exc is not None:
                return f"{callee}() raised {exc[0]}"
            if observed:
                return f"{callee}() -> {short_repr(value, 60)}"
            return f"{callee}()"
        gap = cursor.gap
        if gap is not None:
            return gap.text
        if kind == "line":
            return ""
        return kind

    def cmd_goto(self, arg: str) -> None:
        words = arg.split()
        if len(words) >= 2 and words[0] == "call":
            end = len(words) == 3 and words[2] == "end"
            if len(words) > 3 or (len(words) == 3 and not end):
                raise CommandError("usage: goto call ID [end]")
            self._moved(self.engine.goto_call(_int(words[1], "a call id"), end=end))
            return
        if len(words) != 1:
            raise CommandError("usage: goto N   or   goto call ID [end]")
        self._moved(self.engine.goto(_int(words[0], "a step number")))

    def cmd_exception(self, arg: str) -> None:
        number = _int(arg, "an exception number") if arg else None
        self._moved(self.engine.goto_exception(number))

    def cmd_thread(self, arg: str) -> None:
        if not arg:
            self.say(f"thread {self.engine.thread_id}")
            return
        self.engine.select_thread(_int(arg, "a thread id"))
        self.level = 0
        self.where()

    # -- breakpoints ---------------------------------------------------------------------

    def cmd_break(self, arg: str) -> None:
        if not arg:
            self._list_breakpoints()
            return
        match = re.match(r"^(.*?)\s+if\s+(.+)$", arg)
        spec, condition = (match.group(1), match.group(2)) if match else (arg, None)
        bp = self.engine.breakpoints.add(spec, condition)
        where = "; ".join(self._path(w) for w in bp.where[:3])
        self.say(f"Breakpoint {bp.describe()}  ({where})")

    def cmd_delete(self, arg: str) -> None:
        if not arg:
            count = len(self.engine.breakpoints)
            self.engine.breakpoints.clear()
            self.say(f"deleted {count} breakpoint(s)")
            return
        for word in arg.split():
            bp = self.engine.breakpoints.delete(_int(word, "a breakpoint number"))
            self.say(f"deleted breakpoint {bp.number}")

    def _enable(self, arg: str, enabled: bool) -> None:
        if not arg:
            raise CommandError("which breakpoint? (a number, see `info breakpoints`)")
        for word in arg.split():
            self.engine.breakpoints.get(_int(word, "a breakpoint number")).enabled = enabled

    def _list_breakpoints(self) -> None:
        bps = list(self.engine.breakpoints)
        if not bps:
            self.say("no breakpoints")
        for bp in bps:
            self.say(bp.describe())

    def cmd_info(self, arg: str) -> None:
        what = arg.split(maxsplit=1)[0] if arg else ""
        if what in ("b", "break", "breakpoints"):
            self._list_breakpoints()
        elif what in ("threads", "thread"):
            self._info_threads()
        elif what in ("exceptions", "exception"):
            self._info_exceptions()
        elif what in ("gaps", "gap"):
            self._info_gaps()
        elif what in ("recording", "rec"):
            self._info_recording()
        elif what == "locals":
            self.cmd_locals("")
        else:
            raise CommandError(
                "info what? breakpoints, threads, exceptions, gaps, recording, locals"
            )

    def _info_threads(self) -> None:
        engine = self.engine
        for thread_id in engine.thread_ids:
            stream = engine.stream(thread_id)
            name = (engine.thread_rows.get(thread_id) or {}).get("name") or ""
            mark = "*" if thread_id == engine.thread_id else " "
            self.say(f"{mark} {thread_id}  {name}  steps {stream.first_step}..{stream.last_step}")

    def _info_exceptions(self) -> None:
        rows = self.engine.exceptions()
        if not rows:
            self.say("no exceptions were raised")
        for number, row in enumerate(rows, 1):
            message = f": {row['message']}" if row.get("message") else ""
            self.say(f"{number}  step {row['step']}  {row['type']}{message}")

    def _info_gaps(self) -> None:
        engine = self.engine
        gaps = engine.gaps()
        if not gaps:
            self.say("no gaps: no events are missing")
        for gap in gaps:
            row = engine.call_row(gap.call_id) if gap.call_id else None
            where = "in no recorded call"
            if row is not None:
                path = self._path(engine.function_file(row.function_id))
                line = f":{gap.line}" if gap.line else ""
                where = f"{path}{line} in {engine.function_name(row.function_id)}()"
            thread = f"  thread {gap.thread}" if len(engine.thread_ids) > 1 else ""
            self.say(f"step {gap.step}{thread}  {where}  {gap.text}")

    def _info_recording(self) -> None:
        engine = self.engine
        meta = engine.meta
        self.say(f"recording {engine.recording_id}: {meta.get('command') or '?'}")
        self.say(
            f"steps {engine.first_step}..{engine.last_step}, "
            f"{len(engine.thread_ids)} thread(s), status {meta.get('status')}"
        )
        gaps = engine.gaps()
        if meta.get("events_dropped"):
            self.say(
                f"{meta['events_dropped']:,} events dropped, in {len(gaps):,} gap(s) "
                "(see `info gaps`)"
            )
        elif gaps:
            self.say(f"{len(gaps):,} gap(s) where events were not recorded (see `info gaps`)")
        if meta.get("exception_type"):
            self.say(f"uncaught {meta['exception_type']}: {meta.get('exception_message') or ''}")

    # -- state ---------------------------------------------------------------------------

    def cmd_backtrace(self, arg: str) -> None:
        stack = self.engine.stack()
        for number, frame in enumerate(stack):
            mark = ">" if number == self.level else " "
            args = ", ".join(
                f"{name}={short_repr(value, _ARG_LIMIT)}" for name, value in frame.args.items()
            )
            gap = f"  [gap at step {frame.gap.step}]" if frame.gap is not None else ""
            self.say(
                f"{mark}#{number:<3} {frame.function}({args}) at "
                f"{self._path(frame.file)}:{frame.line}  (call {frame.call_id}){gap}"
            )

    def _select(self, arg: str, direction: int) -> None:
        depth = len(self.engine.stack())
        level = self.level + direction * _count(arg)
        if not 0 <= level < depth:
            raise CommandError(
                "already at the outermost frame"
                if direction > 0
                else "already at the innermost frame"
            )
        self.level = level
        frame = self.engine.frame(level)
        self.say(f"#{level}  {frame.function}() at {self._path(frame.file)}:{frame.line}")

    def cmd_print(self, arg: str) -> None:
        if not arg:
            raise CommandError("print what? (a name or a path such as order.items[0].price)")
        from replay.engine.expr import describe  # noqa: PLC0415 - keep the import list short

        result = self.engine.evaluate(arg, self.level)
        text = describe(result)
        if len(text) > _VALUE_LIMIT:
            text = text[: _VALUE_LIMIT - 3] + "..."
        self.say(text)

    def cmd_locals(self, arg: str) -> None:
        frame = self.engine.frame(self.level)
        self._names(frame.locals, module=frame.function == "<module>")
        self._gap_note(frame)

    def _gap_note(self, frame: Frame) -> None:
        """Say that a frame's values may be out of date: it lived through a gap."""
        if frame.gap is not None:
            gap = frame.gap
            self.say(
                f"(gap at step {gap.step} while this frame ran, {gap.reason}: {gap.detail}; "
                "values changed then may be out of date)"
            )

    def cmd_args(self, arg: str) -> None:
        frame = self.engine.frame(self.level)
        self._names(
            {name: frame.locals.get(name, v) for name, v in frame.args.items()}, empty="arguments"
        )
        self._gap_note(frame)

    def _names(self, values: dict[str, Any], module: bool = False, empty: str = "locals") -> None:
        hidden = 0
        shown = 0
        for name, venc in values.items():
            if module and type(venc) is tuple and venc and venc[0] == V_OPAQUE:
                hidden += 1
                continue
            self.say(f"{name} = {short_repr(venc)}")
            shown += 1
        if hidden:
            self.say(f"({hidden} functions, classes and modules not shown)")
        if not shown and not hidden:
            self.say(f"(no {empty})")

    def cmd_history(self, arg: str) -> None:
        name = _name(arg, "history")
        frame = self.engine.frame(self.level)
        now = self.engine.cursor.step
        shown, total, current = _window(self.engine.iter_history(name, self.level), now)
        if not total and name not in frame.locals:
            raise EngineError(f"{name!r} is never bound in {frame.function}()")
        self.say(f"{name} in {frame.function}() (call {frame.call_id}): {total} change(s)")
        previous = -1
        for i, change in shown:
            if i > previous + 1:
                self.say(f"  ... {i - previous - 1} more ...")
            previous = i
            mark = ">" if i == current else " "
            later = "   (later)" if change.step > now else ""
            self.say(f"{mark} {_change_text(change)}{later}")
        if total > previous + 1:
            self.say(f"  ... {total - previous - 1} more ...")

    def cmd_origin(self, arg: str) -> None:
        name = _name(arg, "origin")
        change = self.engine.origin(name, self.level)
        frame = self.engine.frame(self.level)
        if change.new is UNBOUND:
            self.say(f"{name} was deleted at step {change.step} (line {change.line})")
        else:
            old = "" if change.old is UNBOUND else f" (was {short_repr(change.old, 60)})"
            self.say(
                f"{name} = {short_repr(change.new, 80)}: set by line {change.line}, "
                f"seen at step {change.step}{old}"
            )
        source = self._source_line(frame.file, change.line)
        if source is not None:
            self.say(f"    {change.line:<6}{source}")

    def cmd_search(self, arg: str) -> None:
        match = re.match(r"^(.*?)\s+in\s+(\d+)$", arg)
        condition, call_id = (match.group(1), int(match.group(2))) if match else (arg, None)
        if not condition:
            raise CommandError("search what? e.g. `search total > 100` or `search x == 0 in 12`")
        matches = self.engine.search(condition, call_id=call_id, limit=50)
        if not matches:
            self.say("no match")
        for m in matches:
            values = ", ".join(f"{k}={short_repr(v, _ARG_LIMIT)}" for k, v in m.values.items())
            self.say(f"step {m.step}  {self._path(m.file)}:{m.line} in {m.function}()  {values}")
        if len(matches) == 50:
            self.say("(first 50 matches)")

    def cmd_list(self, arg: str) -> None:
        frame = self.engine.frame(self.level)
        lines = self._source(frame.file)
        if lines is None:
            raise EngineError(f"the source of {self._path(frame.file)} was not recorded")
        center = _int(arg, "a line number") if arg else frame.line
        first = max(1, center - _LIST_CONTEXT)
        last = min(len(lines), center + _LIST_CONTEXT)
        for number in range(first, last + 1):
            mark = "->" if number == frame.line else "  "
            self.say(f"{number:>5} {mark} {lines[number - 1]}")

    def cmd_help(self, arg: str) -> None:
        self.say(HELP)

    def cmd_quit(self, arg: str) -> None:
        self.quit = True

    # -- text ----------------------------------------------------------------------------

    def _path(self, path: str) -> str:
        return display_path(path, self._cwd) if path and path != "?" else path

    def _source(self, path: str) -> list[str] | None:
        if path not in self._sources:
            self._sources[path] = self.engine.source_lines(path)
        return self._sources[path]

    def _source_line(self, path: str, line: int) -> str | None:
        lines = self._source(path)
        if lines is None or not 1 <= line <= len(lines):
            return None
        return lines[line - 1].rstrip()


def _window(
    changes: Iterable[Change], now: int, edge: int = 10
) -> tuple[list[tuple[int, Change]], int, int]:
    """From a stream of changes, keep the first and last `edge` ones and those around `now`.

    Returns (kept (index, change) pairs in order, the total count, the index of the change
    giving the value at `now`, -1 if none). Memory stays bounded however many there are.
    """
    first: list[tuple[int, Change]] = []
    before: deque[tuple[int, Change]] = deque(maxlen=edge + 1)
    after: list[tuple[int, Change]] = []
    last: deque[tuple[int, Change]] = deque(maxlen=edge)
    total = 0
    for i, change in enumerate(changes):
        total += 1
        item = (i, change)
        if i < edge:
            first.append(item)
        if change.step <= now:
            before.append(item)
        elif len(after) < edge:
            after.append(item)
        last.append(item)
    current = before[-1][0] if before else -1
    kept = {i: change for i, change in (*first, *before, *after, *last)}
    return sorted(kept.items()), total, current


def _change_text(change: Change) -> str:
    old = "<unbound>" if change.old is UNBOUND else short_repr(change.old, 60)
    new = "<unbound>" if change.new is UNBOUND else short_repr(change.new, 60)
    return f"step {change.step:<8} line {change.line:<5} {old} -> {new}"


def _count(arg: str) -> int:
    if not arg:
        return 1
    count = _int(arg, "a count")
    if count < 1:
        raise CommandError("the count must be at least 1")
    return count


def _int(text: str, what: str) -> int:
    try:
        return int(text.strip())
    except ValueError:
        raise CommandError(f"{text.strip()!r} is not {what}") from None


def _name(arg: str, command: str) -> str:
    name = arg.strip()
    if not name.isidentifier():
        raise CommandError(f"usage: {command} VARIABLE (a name of the selected frame)")
    return name


def _gaps_note(engine: Engine) -> str:
    """For the first line: that events are missing, if they are (`info gaps` says where)."""
    meta = engine.meta
    if meta.get("events_dropped"):
        return f", {meta['events_dropped']:,} events dropped: see `info gaps`"
    gaps = engine.gaps()  # a recording that may have gaps without dropped steps (replay.gaps)
    return f", {len(gaps):,} gap(s): see `info gaps`" if gaps else ""


def split_commands(text: str) -> list[str]:
    """`-c` text split on `;` outside quotes."""
    commands, current, quote = [], [], ""
    for char in text:
        if quote:
            if char == quote:
                quote = ""
        elif char in "'\"":
            quote = char
        elif char == ";":
            commands.append("".join(current))
            current = []
            continue
        current.append(char)
    commands.append("".join(current))
    return [c.strip() for c in commands if c.strip()]


def _interactive_lines(debugger: Debugger) -> Iterator[str]:
    """Prompted lines from the terminal; an empty line repeats the last movement."""
    with contextlib.suppress(ImportError):
        import readline  # noqa: F401, PLC0415 - line editing and history where available
    last = ""
    while True:
        try:
            line = input("(replay) ")
        except EOFError:
            print()
            return
        except KeyboardInterrupt:
            print()
            continue
        if not line.strip() and last:
            line = last
        word = line.strip().split(" ", 1)[0]
        if word in _REPEATABLE:
            last = line
        yield line


_REPEATABLE = frozenset(
    {"s", "step", "n", "next", "rs", "reverse-step", "rn", "reverse-next", "c", "continue",
     "rc", "reverse-continue", "f", "finish", "rf", "reverse-finish", "l", "list"}
)  # fmt: skip


def debug(
    rec: RecArgument = None,
    *,
    store: StoreOption = None,
    commands: Annotated[
        str | None,
        typer.Option("-c", "--commands", metavar="CMDS", help='Run "cmd; cmd; ..." and exit.'),
    ] = None,
    thread: Annotated[
        int | None,
        typer.Option("--thread", metavar="N", help="Start in thread N (default: the first)."),
    ] = None,
) -> int:
    """Debug a recording backwards and forwards: step, next, finish, continue, and reverse."""
    engine = Engine.open(store_path(store), check_rec(rec))
    try:
        debugger = Debugger(engine, sys.stdout, sys.stderr)
        if thread is not None:
            engine.select_thread(thread)  # the recording's first step: the thread's first
        meta = engine.meta
        interactive = commands is None and sys.stdin.isatty()
        debugger.say(
            f"recording {engine.recording_id}: {meta.get('command') or '?'}  "
            f"(steps {engine.first_step}..{engine.last_step}"
            + (f", {len(engine.thread_ids)} threads" if len(engine.thread_ids) > 1 else "")
            + _gaps_note(engine)
            + ")"
            + ("  type `help` for commands" if interactive else "")
        )
        if not engine.indexed and engine.chunk_count > _NOTE_INDEX_CHUNKS:
            millions = engine.last_step / 1e6
            debugger.say(
                f"(first reading of this recording: jumps far ahead build its index once, "
                f"about {max(1, round(millions))} s for {millions:.1f}M steps; it is then saved)"
            )
        debugger.where()
        if commands is not None:
            debugger.run(split_commands(commands))
        elif interactive:
            debugger.run(_interactive_lines(debugger))
        else:
            debugger.run(sys.stdin)
        sys.stdout.flush()
        return 1 if debugger.failures and not interactive else 0
    finally:
        engine.close()


def register(app: typer.Typer) -> None:
    """Add `debug` to the app."""
    app.command(
        "debug",
        context_settings=REC_CONTEXT,
        short_help="Step through a recording forwards and backwards (a reverse debugger).",
    )(debug)
