"""`replay record`: run a program under the recorder.

Three forms, as `python` and the wrappers people know (py-spy, memray) take them:

    replay record [OPTIONS] script.py [ARGS]...      in this process, as `python script.py`
    replay record [OPTIONS] -m module [ARGS]...      in this process, as `python -m module`
    replay record [OPTIONS] -- COMMAND [ARGS]...     any command; its Python processes record

Options go before the target; everything after it belongs to the program, even words that look
like replay's options. The command only checks its input and builds a `Launch`: the program
itself runs after the command-line parser has returned (see `replay.cli.main`), so that
nothing of the parser (its KeyboardInterrupt handling, its exit) stands between the program
and the interpreter.
"""

from __future__ import annotations

import os
import shutil
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any

import typer
import typer.core

from replay.cli.common import StoreOption, display_path, stderr_is_terminal, store_path
from replay.config import (
    BACKENDS,
    BACKLOG_POLICIES,
    RecordConfig,
    default_on_backlog,
    program_dir_of,
    scope_directories,
)
from replay.exceptions import StoreError, UsageError

if TYPE_CHECKING:
    from replay.recorder.runner import CommandResult
    from replay.storage import RecordingWriter

# The recorder, the runner and the store are imported by the functions that run the
# program, not here: parsing the command line, `--help` and usage errors need none of them.

HELP = """Record a program: a script, a module (-m) or any command (after --).

Options go BEFORE the target; everything after the target is the program's.

\b
  replay record app.py --port 8000
  replay record -m pkg.tool args...
  replay record -- pytest -x tests/

In the -- form every Python process the command starts is recorded, each as its
own recording.

replay exits with the program's exit status; when the program is killed by
signal N, `replay record -- COMMAND` exits with 128+N, as shells do.
"""

_MODE_KEY = "replay.record.command_mode"


class RecordCommand(typer.core.TyperCommand):
    """Click command that also notes whether the target came after `--` (a command)."""

    def parse_args(self, ctx: typer.Context, args: list[str]) -> list[str]:
        args, command_mode = split_record_args(args, self._value_options())
        ctx.meta[_MODE_KEY] = command_mode
        return super().parse_args(ctx, args)

    def _value_options(self) -> frozenset[str]:
        names: set[str] = set()
        for param in self.params:
            if isinstance(param, typer.core.TyperOption) and not param.is_flag and not param.count:
                names.update(param.opts)
        return frozenset(names)


def split_record_args(args: list[str], value_options: frozenset[str]) -> tuple[list[str], bool]:
    """Find where replay's options end: (args with `-mMOD` split, True if a `--` ended them)."""
    index = 0
    while index < len(args):
        arg = args[index]
        if arg == "--":
            return args, True
        if arg in value_options:
            index += 2
            continue
        if arg.startswith("-m") and not arg.startswith("--") and len(arg) > 2:
            return [*args[:index], "-m", arg[2:], *args[index + 1 :]], False
        if arg == "-m" or not arg.startswith("-") or arg == "-":
            return args, False
        index += 1
    return args, False


@dataclass
class Launch:
    """What `replay record` decided to run, once the parser is out of the way."""

    config: RecordConfig
    target: list[str]
    as_module: bool = False
    command_mode: bool = False
    quiet: bool = False

    def run(self) -> int:
        """Run it; returns the exit code (or raises the program's SystemExit)."""
        if self.command_mode:
            return _run_command(self)
        return _run_in_process(self)


def record(
    ctx: typer.Context,
    *,
    target: Annotated[
        list[str] | None,
        typer.Argument(
            metavar="SCRIPT|COMMAND [ARGS]...",
            help="The script, the module (with -m) or the command (after --), then its arguments.",
            show_default=False,
        ),
    ] = None,
    module: Annotated[
        bool, typer.Option("-m", help="Run a library module as a script, like python -m.")
    ] = False,
    store: StoreOption = None,
    include: Annotated[
        list[str] | None,
        typer.Option(
            "--include",
            metavar="GLOB",
            help="Also record files matching GLOB (absolute or relative to the current "
            "directory). Repeatable.",
        ),
    ] = None,
    exclude: Annotated[
        list[str] | None,
        typer.Option(
            "--exclude", metavar="GLOB", help="Do not record files matching GLOB. Repeatable."
        ),
    ] = None,
    name: Annotated[
        str | None,
        typer.Option(
            "--name", metavar="TEXT", help="A label for the recording.", show_default=False
        ),
    ] = None,
    backend: Annotated[
        str,
        typer.Option(
            "--backend",
            metavar="[auto|sysmon|settrace]",
            help="Tracing core: sys.monitoring (3.12+) or sys.settrace. auto picks sysmon "
            "where it exists.",
        ),
    ] = "auto",
    max_depth: Annotated[
        int, typer.Option("--max-depth", metavar="N", min=0, help="How deep values are recorded.")
    ] = RecordConfig.max_depth,
    max_items: Annotated[
        int, typer.Option("--max-items", metavar="N", min=0, help="Items recorded per container.")
    ] = RecordConfig.max_items,
    max_string: Annotated[
        int,
        typer.Option(
            "--max-string", metavar="N", min=0, help="Characters/bytes kept per str/bytes."
        ),
    ] = RecordConfig.max_string,
    redact: Annotated[
        list[str] | None,
        typer.Option(
            "--redact",
            metavar="REGEX",
            help="Never store values of names matching REGEX (besides the defaults: password, "
            "token, api_key, ...). Repeatable.",
        ),
    ] = None,
    no_default_redaction: Annotated[
        bool,
        typer.Option("--no-default-redaction", help="Redact only what --redact names."),
    ] = False,
    on_backlog: Annotated[
        str | None,
        typer.Option(
            "--on-backlog",
            metavar="[block|drop]",
            help="When the writer falls behind by more than the memory bound: block (the "
            "program waits for it) or drop (events are dropped, counted and shown as gaps). "
            "Default: $REPLAY_ON_BACKLOG if set, else block.",
            show_default=False,
        ),
    ] = None,
    max_overhead: Annotated[
        str | None,
        typer.Option(
            "--max-overhead",
            metavar="BUDGET",
            help="Keep the recorder's cost under BUDGET (50% or 1.5x of the program's own "
            "time): past it the hottest functions are recorded at call level only (arguments, "
            "results, exceptions), then, if that still costs too much, not at all; each change "
            "is marked by a gap. "
            "Default: no budget.",
            show_default=False,
        ),
    ] = None,
    quiet: Annotated[
        bool, typer.Option("-q", "--quiet", help="No end-of-recording line on a terminal.")
    ] = False,
) -> Launch:
    """Check the command line and build the Launch; nothing runs here."""
    args = list(target or [])
    command_mode = bool(ctx.meta.get(_MODE_KEY))
    if backend not in BACKENDS:
        raise UsageError(f"--backend must be one of {', '.join(BACKENDS)}, not {backend!r}")
    policy = on_backlog if on_backlog is not None else default_on_backlog()
    if policy not in BACKLOG_POLICIES:
        where = "--on-backlog" if on_backlog is not None else "REPLAY_ON_BACKLOG"
        raise UsageError(f"{where} must be one of {', '.join(BACKLOG_POLICIES)}, not {policy!r}")
    budget = _max_overhead(max_overhead)
    if module and not args:
        raise UsageError("-m needs a module name: replay record -m module [ARGS]...")
    if not args:
        raise UsageError(
            "nothing to record: give a script, -m module, or -- COMMAND (see replay record --help)"
        )
    if module and command_mode:
        raise UsageError("-m and -- COMMAND cannot be combined")
    config = RecordConfig(
        store=store_path(store),
        command=_command_for(args, as_module=module, command_mode=command_mode),
        name=name,
        include=tuple(include or ()),
        exclude=tuple(exclude or ()),
        backend=backend,
        max_depth=max_depth,
        max_items=max_items,
        max_string=max_string,
        redact=tuple(redact or ()),
        redact_defaults=not no_default_redaction,
        on_backlog=policy,
        max_overhead=budget,
        program_dir=None if module or command_mode else program_dir_of(args[0]),
    )
    if command_mode:
        _check_command(args[0])
    return Launch(config, args, as_module=module, command_mode=command_mode, quiet=quiet)


def _max_overhead(text: str | None) -> float | None:
    """`--max-overhead` as a fraction of the program's time."""
    if text is None:
        return None
    from replay.recorder.budget import parse_max_overhead  # noqa: PLC0415 - see the imports

    try:
        return parse_max_overhead(text)
    except ValueError as error:
        raise UsageError(str(error)) from None


def _command_for(args: list[str], *, as_module: bool, command_mode: bool) -> tuple[str, ...]:
    """The command as `replay ls` shows it: the program's own command line."""
    if as_module:
        return ("python", "-m", *args)
    if command_mode:
        return tuple(args)
    return ("python", *args)


def _check_command(program: str) -> None:
    if os.sep in program:
        if not os.path.exists(program):
            raise UsageError(f"{program}: no such file", exit_code=127)
        if not os.access(program, os.X_OK) or os.path.isdir(program):
            raise UsageError(f"{program}: not an executable file", exit_code=126)
    elif shutil.which(program) is None:
        raise UsageError(f"{program}: command not found", exit_code=127)


def _run_in_process(launch: Launch) -> int:
    """`replay record script.py` / `-m module`: this process becomes the program."""
    from replay.recorder import Recorder, session  # noqa: PLC0415 - see the imports
    from replay.recorder.runner import ProgramSyntaxError, PyRunner  # noqa: PLC0415

    recorder = Recorder(launch.config)  # checks --backend and --redact before anything runs
    runner = PyRunner(launch.target[0], launch.target[1:], as_module=launch.as_module)
    try:
        runner.prepare()
    except ProgramSyntaxError as error:  # python prints it and exits 1; nothing ran
        session.report_uncaught(error.error)
        return 1
    sys.argv = runner.argv  # what the recording's argv shows, as the program will see it
    session.start_session(launch.config, recorder=recorder)
    if summary_enabled(launch.quiet):
        current = session.current_session()
        assert current is not None
        current.on_finish = lambda done: _print_summary(
            done.recorder.stats.get("steps", 0),
            launch.config,
            [done.recorder.recording_id],
            dropped=done.recorder.stats.get("dropped", 0),
        )
    return session.run_program(runner)


def _run_command(launch: Launch) -> int:
    """`replay record -- COMMAND`: run it as a child; its Python processes record themselves."""
    from replay.recorder import Recorder, session  # noqa: PLC0415 - see the imports
    from replay.recorder.runner import run_command  # noqa: PLC0415
    from replay.storage import RecordingWriter  # noqa: PLC0415 - sqlite3 alone, no SQLAlchemy

    Recorder(launch.config)  # checks --backend and --redact
    with RecordingWriter.open(launch.config.store) as store:  # checked (or created) up front
        before = store.latest_recording_id() or 0
    env = dict(os.environ)
    env.pop(session.ENV_PARENT, None)
    env.update(session.child_environment(launch.config, None, env))
    result = run_command(launch.target, env)
    made = _settle_children(launch.config.store, before, result)
    if summary_enabled(launch.quiet):
        _summarise_children(launch.config, made)
    return result.exit_status


def _settle_children(store_file: str, before: int, result: CommandResult) -> list[dict[str, Any]]:
    """The recordings the command made; the direct child's exit code set from its real status.

    Inside a child, a bare `raise SystemExit(n)` is invisible to the recorder, but here the
    status is known: it overrides what the child wrote unless the child was killed.
    """
    from replay.storage import RecordingWriter  # noqa: PLC0415 - see the imports

    try:
        with RecordingWriter.open(store_file) as store:
            made = store.recordings_after(before)
            for row in made:
                if row["pid"] == result.pid and result.returncode >= 0:
                    _settle(store, row, result.returncode)
    except StoreError as error:
        print(f"replay: {error}", file=sys.stderr)
        return []
    return made


def _settle(store: RecordingWriter, row: dict[str, Any], code: int) -> None:
    if row["status"] in ("ok", "failed") and row["exit_code"] != code:
        status = "ok" if code == 0 and not row.get("exception_type") else "failed"
        store.update_recording(row["id"], exit_code=code, status=status)
        row.update(exit_code=code, status=status)


def _summarise_children(config: RecordConfig, made: list[dict[str, Any]]) -> None:
    if not made:
        print(
            "replay: no Python process was recorded (is the command a Python program, and is "
            "replay installed for its interpreter?)",
            file=sys.stderr,
        )
        return
    steps = sum(int(row.get("steps") or 0) for row in made)
    dropped = sum(int(row.get("events_dropped") or 0) for row in made)
    _print_summary(steps, config, [row["id"] for row in made], dropped=dropped)


def _print_summary(
    steps: int, config: RecordConfig, recording_ids: list[int | None], *, dropped: int = 0
) -> None:
    ids = [i for i in recording_ids if i is not None]
    line = summary_line(steps, config.store, ids, dropped=dropped)
    if not steps:
        line += nothing_in_scope(config)
    print(line, file=sys.stderr, flush=True)


def summary_enabled(quiet: bool) -> bool:
    """The end-of-recording line: only for people, never in a pipe (stderr stays the program's)."""
    return not quiet and stderr_is_terminal()


def summary_line(steps: int, store: str, recording_ids: list[int], *, dropped: int = 0) -> str:
    """`replay: recorded 12,345 steps to replay.db (recording 3)`, and what `drop` dropped."""
    where = display_path(store)
    lost = (
        f"; {dropped:,} events dropped (the writer fell behind; `replay show` lists the gaps)"
        if dropped
        else ""
    )
    if len(recording_ids) == 1:
        return f"replay: recorded {steps:,} steps to {where} (recording {recording_ids[0]}){lost}"
    ids = ", ".join(str(i) for i in recording_ids[:8]) + (", ..." if len(recording_ids) > 8 else "")
    return (
        f"replay: recorded {len(recording_ids)} processes, {steps:,} steps to {where} "
        f"(recordings {ids}){lost}"
    )


def nothing_in_scope(config: RecordConfig) -> str:
    """Why a recording can hold no step: none of the program's code was in the scope."""
    where = " or ".join(scope_directories(config.scope_root, config.program_dir))
    return f": no code under {where} ran (the scope; --include GLOB records other files)"


def register(app: typer.Typer) -> None:
    """Add `record` to the app."""
    app.command(
        "record",
        cls=RecordCommand,
        help=HELP,
        short_help="Record a program: script.py, -m module, or -- COMMAND.",
        context_settings={"allow_interspersed_args": False},
        no_args_is_help=False,
    )(record)
