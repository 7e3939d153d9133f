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

The options are declared once, as the `option(...)` attributes of `RecordOptions` (type,
default, names, help). Two parsers read that one declaration: `replay.cli.fastpath`, which parses
a plain command line without Typer (the recorded process starts sooner), and Typer, for
everything else (`--help`, the errors worded by click): `register` builds the Typer command's
signature from it. Both end in `record()`. A declaration rather than `record()`'s own
Typer-annotated signature, because reading that signature means importing Typer, the very cost
the fast path avoids; and rather than a second, hand-copied list for the fast path, because the
two could drift apart. Not a dataclass either: `dataclasses` imports `inspect`, about 10 ms of
every recorded process's start. This module imports Typer (and `inspect`) only in `register`.
"""

from __future__ import annotations

import os
import sys
import typing
from functools import cache
from typing import TYPE_CHECKING, Annotated, Any, NamedTuple

from replay.cli.common import STORE_HELP, display_path, stderr_is_terminal, store_path
from replay.config import (
    BACKENDS,
    BACKLOG_POLICIES,
    DEFAULT_MAX_DEPTH,
    DEFAULT_MAX_ITEMS,
    DEFAULT_MAX_STRING,
    RecordConfig,
    default_on_backlog,
    program_dir_of,
    scope_directories,
)
from replay.exceptions import StoreError, UsageError

if TYPE_CHECKING:
    import typer

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


class Option:
    """How the command line spells a field of RecordOptions: its names, help and checks.

    Only what both parsers model can be said here, and a field's type must be one of bool (a
    flag, default False), str, int (with `min`) and list[str] (repeatable), `| None` allowed.
    """

    __slots__ = ("default", "help", "metavar", "min", "name", "names", "show_default")

    def __init__(
        self,
        default: Any,
        names: tuple[str, ...],
        *,
        help: str,
        metavar: str | None,
        min: int | None,
        show_default: bool,
    ) -> None:
        self.name = ""
        """The field it fills (the attribute of RecordOptions it is declared as)."""
        self.default = default
        self.names = names
        self.help = help
        self.metavar = metavar
        self.min = min
        self.show_default = show_default


def option(
    default: Any,
    *names: str,
    help: str,
    metavar: str | None = None,
    min: int | None = None,
    show_default: bool = True,
) -> Any:
    """Declare a field of RecordOptions (typed Any, as `dataclasses.field`: the class attribute
    holds the Option until `_declare` puts the default in its place)."""
    return Option(default, names, help=help, metavar=metavar, min=min, show_default=show_default)


class RecordOptions:
    """The options of `replay record`, in the order `--help` lists them: an instance holds the
    values given, the class the defaults (`OPTIONS` lists the declarations)."""

    def __init__(self, **values: Any) -> None:
        for name, value in values.items():
            if name not in _FIELDS:
                raise TypeError(f"RecordOptions has no option {name!r}")
            setattr(self, name, value)

    module: bool = option(False, "-m", help="Run a library module as a script, like python -m.")
    store: str | None = option(None, "--store", metavar="PATH", help=STORE_HELP, show_default=False)
    include: list[str] | None = option(
        None,
        "--include",
        metavar="GLOB",
        help="Also record files matching GLOB (absolute or relative to the current "
        "directory). Repeatable.",
    )
    exclude: list[str] | None = option(
        None, "--exclude", metavar="GLOB", help="Do not record files matching GLOB. Repeatable."
    )
    name: str | None = option(
        None, "--name", metavar="TEXT", help="A label for the recording.", show_default=False
    )
    backend: str = option(
        "auto",
        "--backend",
        metavar="[auto|sysmon|settrace]",
        help="Tracing core: sys.monitoring (3.12+) or sys.settrace. auto picks sysmon "
        "where it exists.",
    )
    max_depth: int = option(
        DEFAULT_MAX_DEPTH, "--max-depth", metavar="N", min=0, help="How deep values are recorded."
    )
    max_items: int = option(
        DEFAULT_MAX_ITEMS,
        "--max-items",
        metavar="N",
        min=0,
        help="Items recorded per container.",
    )
    max_string: int = option(
        DEFAULT_MAX_STRING,
        "--max-string",
        metavar="N",
        min=0,
        help="Characters/bytes kept per str/bytes.",
    )
    redact: list[str] | None = option(
        None,
        "--redact",
        metavar="REGEX",
        help="Never store values of names matching REGEX (besides the defaults: password, "
        "token, api_key, ...). Repeatable.",
    )
    no_default_redaction: bool = option(
        False, "--no-default-redaction", help="Redact only what --redact names."
    )
    on_backlog: str | None = option(
        None,
        "--on-backlog",
        metavar="[block|drop]",
        help="When the writer falls behind by more than the memory bound: block (the "
        "program waits for it) or drop (events are dropped, counted and shown as gaps). "
        "Default: $REPLAY_ON_BACKLOG if set, else block.",
        show_default=False,
    )
    max_overhead: str | None = option(
        None,
        "--max-overhead",
        metavar="BUDGET",
        help="Keep the recorder's cost under BUDGET (50% or 1.5x of the program's own "
        "time): past it the hottest functions are recorded at call level only (arguments, "
        "results, exceptions), then, if that still costs too much, not at all; each change "
        "is marked by a gap. "
        "Default: no budget.",
        show_default=False,
    )
    quiet: bool = option(False, "-q", "--quiet", help="No end-of-recording line on a terminal.")


def _declare(cls: type) -> tuple[Option, ...]:
    """The Options declared in `cls`'s body, in order, each named after its attribute; the
    class attribute then holds its default (what an instance shows for an option not given)."""
    declared = []
    for name, value in list(vars(cls).items()):
        if isinstance(value, Option):
            value.name = name
            setattr(cls, name, value.default)
            declared.append(value)
    return tuple(declared)


OPTIONS = _declare(RecordOptions)
"""The options of `replay record`, in the order `--help` lists them."""
_FIELDS = frozenset(spec.name for spec in OPTIONS)


@cache
def option_types() -> dict[str, Any]:
    """RecordOptions' field types, evaluated (this module's annotations are strings)."""
    return typing.get_type_hints(RecordOptions)


@cache
def value_option_names() -> frozenset[str]:
    """The option names that take a value (all but the flags), for split_record_args."""
    types = option_types()
    return frozenset(
        name for spec in OPTIONS if types[spec.name] is not bool for name in spec.names
    )


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


class Launch(NamedTuple):
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


def record(options: RecordOptions, target: list[str] | None, *, command_mode: bool) -> Launch:
    """Check the command line and build the Launch; nothing runs here (both parsers end here).

    `command_mode`: the target came after `--` (a command, not a script).
    """
    args = list(target or [])
    module, backend, on_backlog = options.module, options.backend, options.on_backlog
    if backend not in BACKENDS:
        raise UsageError(f"--backend must be one of {', '.join(BACKENDS)}, not {backend!r}")
    policy = on_backlog if on_backlog is not None else default_on_backlog()
    if policy not in BACKLOG_POLICIES:
        where = "--on-backlog" if on_backlog is not None else "REPLAY_ON_BACKLOG"
        raise UsageError(f"{where} must be one of {', '.join(BACKLOG_POLICIES)}, not {policy!r}")
    budget = _max_overhead(options.max_overhead)
    if module and not args:
        raise UsageError("-m needs a module name: replay record -m module [ARGS]...")
    if not args:
        raise UsageError(
            "nothing to record: give a script, -m module, or -- COMMAND (see replay record --help)"
        )
    if module and command_mode:
        raise UsageError("-m and -- COMMAND cannot be combined")
    config = RecordConfig(
        store=store_path(options.store),
        scope_root=os.getcwd(),
        command=_command_for(args, as_module=module, command_mode=command_mode),
        name=options.name,
        include=tuple(options.include or ()),
        exclude=tuple(options.exclude or ()),
        backend=backend,
        max_depth=options.max_depth,
        max_items=options.max_items,
        max_string=options.max_string,
        redact=tuple(options.redact or ()),
        redact_defaults=not options.no_default_redaction,
        on_backlog=policy,
        max_overhead=budget,
        program_dir=None if module or command_mode else program_dir_of(args[0]),
    )
    if command_mode:
        _check_command(args[0])
    return Launch(config, args, as_module=module, command_mode=command_mode, quiet=options.quiet)


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
    else:
        import shutil  # noqa: PLC0415 - only for `replay record -- COMMAND`

        if shutil.which(program) is None:
            raise UsageError(f"{program}: command not found", exit_code=127)


def _run_in_process(launch: Launch) -> int:
    """`replay record script.py` / `-m module`: this process becomes the program."""
    from replay.recorder import session  # noqa: PLC0415 - see the imports
    from replay.recorder.control import Recorder  # noqa: PLC0415
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
    # Not the recorder itself: this process records nothing (replay/recorder/__init__.py).
    from replay.recorder.backends import choose_backend  # noqa: PLC0415 - see the imports
    from replay.recorder.children import ENV_PARENT, child_environment  # noqa: PLC0415
    from replay.recorder.redaction import Redactor  # noqa: PLC0415
    from replay.recorder.runner import run_command  # noqa: PLC0415
    from replay.storage import RecordingWriter  # noqa: PLC0415 - sqlite3 alone, no SQLAlchemy

    # What the children's Recorder would refuse, refused once, here: --backend (with
    # REPLAY_CORE and REPLAY_VALUE_MODEL) and --redact.
    choose_backend(launch.config.backend)
    Redactor(launch.config.redact, defaults=launch.config.redact_defaults)
    with RecordingWriter.open(launch.config.store) as store:  # checked (or created) up front
        before = store.latest_recording_id() or 0
    env = dict(os.environ)
    env.pop(ENV_PARENT, None)
    env.update(child_environment(launch.config, None, env))
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
    """Add `record` to the app, its parameters built from RecordOptions (see the docstring)."""
    from inspect import Parameter, Signature  # noqa: PLC0415 - as typer: only on Typer's path

    import typer.core  # noqa: PLC0415 - only on Typer's path (typer_app), never on the fast path

    class RecordCommand(typer.core.TyperCommand):
        """Click command that also notes whether the target came after `--` (a command)."""

        def parse_args(self, ctx: typer.Context, args: list[str]) -> list[str]:
            args, command_mode = split_record_args(args, value_option_names())
            ctx.meta[_MODE_KEY] = command_mode
            return super().parse_args(ctx, args)

    def command(ctx: typer.Context, target: list[str] | None, **options: Any) -> Launch:
        return record(RecordOptions(**options), target, command_mode=bool(ctx.meta.get(_MODE_KEY)))

    target = typer.Argument(
        metavar="SCRIPT|COMMAND [ARGS]...",
        help="The script, the module (with -m) or the command (after --), then its arguments.",
        show_default=False,
    )
    params = [
        Parameter("ctx", Parameter.POSITIONAL_OR_KEYWORD, annotation=typer.Context),
        Parameter(
            "target",
            Parameter.KEYWORD_ONLY,
            default=None,
            annotation=Annotated[list[str] | None, target],
        ),
    ]
    types = option_types()
    for spec in OPTIONS:
        option = typer.Option(
            *spec.names,
            help=spec.help,
            metavar=spec.metavar,
            min=spec.min,
            show_default=spec.show_default,
        )
        params.append(
            Parameter(
                spec.name,
                Parameter.KEYWORD_ONLY,
                default=spec.default,
                annotation=Annotated[types[spec.name], option],
            )
        )
    # Typer reads the signature, and the type hints for parameters without Typer metadata (ctx).
    command.__signature__ = Signature(params, return_annotation=Launch)  # type: ignore[attr-defined]
    command.__annotations__ = {param.name: param.annotation for param in params}
    app.command(
        "record",
        cls=RecordCommand,
        help=HELP,
        short_help="Record a program: script.py, -m module, or -- COMMAND.",
        context_settings={"allow_interspersed_args": False},
        no_args_is_help=False,
    )(command)
