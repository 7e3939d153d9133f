"""Running the program: in this process as `python script.py` / `python -m mod` would, or a command.

This module owns the illusion that the program was started by `python` itself: `sys.argv`, the
`__main__` module (`__name__`, `__file__`, `__spec__`, `__loader__`, `__builtins__`), `sys.path[0]`
and the code object compiled from the file's bytes under its real path, so tracebacks, `inspect`
and multiprocessing's spawn (which re-imports `__main__` by path or name) behave as untraced.

Running happens in two stages, after coverage.py's `execfile.PyRunner`:

- `prepare()` checks the target without running any of the program's code (a missing script or
  module is a `UsageError`, raised before the recorder starts or the store is created) and
  compiles a script (a `SyntaxError` there is the program's error: see `ProgramSyntaxError`);
- `run()` installs `__main__`, `sys.argv` and `sys.path[0]`, then executes. The program's
  exceptions, `SystemExit` included, propagate to the caller unchanged; `program_traceback()`
  cuts replay's own frames off their traceback so it prints as it would under `python`.

Modules and directories run through `runpy._run_module_as_main`, the very function `python -m`
calls, so even the `<frozen runpy>` lines of a traceback are the same.

`run_command` runs `replay record -- COMMAND`: a child process with the standard streams shared,
SIGINT and SIGTERM forwarded, and its exit status reported the way a shell reports it.
"""

from __future__ import annotations

import builtins
import contextlib
import importlib.machinery
import importlib.util
import os
import runpy
import signal
import sys
import types
import zipimport
from collections.abc import Mapping, Sequence
from importlib.machinery import ModuleSpec
from typing import NamedTuple

from replay.exceptions import UsageError

__all__ = ["CommandResult", "ProgramSyntaxError", "PyRunner", "program_traceback", "run_command"]


class ProgramSyntaxError(Exception):
    """The script does not compile: Python would print the SyntaxError and exit 1."""

    def __init__(self, error: SyntaxError) -> None:
        super().__init__(str(error))
        self.error = error


class PyRunner:
    """One program to run in-process: a script path (or directory, or zip) or a module name."""

    def __init__(self, target: str, args: Sequence[str], *, as_module: bool) -> None:
        self.target = target
        self.args = list(args)
        self.as_module = as_module
        self._code: types.CodeType | None = None
        self._path0: str | None = None
        self._run_as_main_module = False
        """True for a directory or zip file: its __main__.py runs through runpy."""
        self._origin: str | None = None
        """The module's file, for -m (python puts it in sys.argv[0])."""

    @property
    def argv(self) -> list[str]:
        """The `sys.argv` the program will see."""
        first = (self._origin or self.target) if self.as_module else self.target
        return [first, *self.args]

    # -- stage 1: check, without running the program -----------------------------------------

    def prepare(self) -> None:
        """Check the target exists and can run; compile a script. No program code runs."""
        if self.as_module:
            self._path0 = os.getcwd()
            search = sys.path[:] if sys.flags.safe_path else [self._path0, *sys.path[1:]]
            self._origin = _check_module(self.target, search)
        elif os.path.isdir(self.target) or _is_zip_application(self.target):
            self._prepare_main_container()
        else:
            self._prepare_script()

    def _prepare_script(self) -> None:
        path = _python_abspath(self.target)
        try:
            with open(path, "rb") as file:
                source = file.read()
        except OSError as error:
            reason = f"[Errno {error.errno}] {error.strerror}" if error.errno else str(error)
            raise UsageError(f"can't open file {path!r}: {reason}") from None
        try:
            # dont_inherit: this module's `from __future__` flags must not leak into the program.
            self._code = compile(source, path, "exec", dont_inherit=True)
        except SyntaxError as error:  # python shows it with no traceback: the program never ran
            raise ProgramSyntaxError(error.with_traceback(None)) from None
        except ValueError as error:  # null bytes in the source
            raise ProgramSyntaxError(SyntaxError(str(error))) from None
        self._path0 = os.path.dirname(os.path.realpath(path))

    def _prepare_main_container(self) -> None:
        """A directory or zip file holding __main__.py: python puts it first on sys.path."""
        path0 = os.path.realpath(self.target)
        spec = importlib.machinery.PathFinder.find_spec("__main__", [path0])
        if spec is None:
            raise UsageError(f"can't find '__main__' module in {self.target!r}")
        self._path0 = path0
        self._run_as_main_module = True

    # -- stage 2: run --------------------------------------------------------------------------

    def run(self) -> None:
        """Run the program in a fresh `__main__`; its exceptions propagate unchanged."""
        if self._path0 is None:
            raise RuntimeError("PyRunner.run() called before prepare()")
        main = _fresh_main_module()
        if not sys.flags.safe_path:
            sys.path[0] = self._path0  # replaces replay's own entry directory, as python would
        if self.as_module:
            sys.argv = ["-m", *self.args]  # runpy puts the module's path in argv[0]
            sys.modules["__main__"] = main
            _exec_module(self.target, alter_argv=True)
        elif self._run_as_main_module:
            sys.argv = [self.target, *self.args]
            sys.modules["__main__"] = main
            _exec_module("__main__", alter_argv=False)
        else:
            assert self._code is not None
            main.__file__ = self._code.co_filename
            main.__cached__ = None  # type: ignore[attr-defined]
            main.__loader__ = importlib.machinery.SourceFileLoader("__main__", main.__file__)
            sys.argv = [self.target, *self.args]
            sys.modules["__main__"] = main
            _exec_code(self._code, main.__dict__)


def _python_abspath(path: str) -> str:
    """The script's `__file__` as python makes it: cwd joined on, nothing normalised."""
    return path if os.path.isabs(path) else os.path.join(os.getcwd(), path)


def _fresh_main_module() -> types.ModuleType:
    """A module like the `__main__` python makes before running the program (same key order)."""
    main = types.ModuleType("__main__")
    main.__annotations__ = {}
    main.__builtins__ = builtins  # type: ignore[attr-defined]
    return main


def _exec_code(code: types.CodeType, namespace: dict[str, object]) -> None:
    """The frame every program traceback passes through; `program_traceback` cuts here."""
    exec(code, namespace)


def _exec_module(name: str, *, alter_argv: bool) -> None:
    """Run a module as `python -m` does (by the same runpy function); cut point like above."""
    runpy._run_module_as_main(name, alter_argv=alter_argv)  # type: ignore[attr-defined]


_CUT_CODES = frozenset({_exec_code.__code__, _exec_module.__code__})


def program_traceback(tb: types.TracebackType | None) -> types.TracebackType | None:
    """The part of `tb` that belongs to the program: everything after replay's run frame."""
    cut: types.TracebackType | None = None
    entry = tb
    while entry is not None:
        if entry.tb_frame.f_code in _CUT_CODES:
            cut = entry
        entry = entry.tb_next
    return cut.tb_next if cut is not None else tb


# -- finding a module without running any of its packages ------------------------------------


def _check_module(name: str, path: list[str]) -> str | None:
    """Raise UsageError, worded as python words it, if `python -m name` could not start.

    Returns the file that will run, when known.

    Packages on the way are NOT imported (their code would run before recording starts): each
    level is looked up in its parent's search locations. Exotic importers that this cannot see
    through are left for runpy to handle when the program runs.
    """
    if not name or name.startswith("."):
        raise UsageError("Relative module names not supported")
    saved = sys.path[:]
    sys.path[:] = path
    try:
        spec = _find_spec_quietly(name)
        if spec is not None and spec.submodule_search_locations is not None:
            main_name = f"{name}.__main__"
            spec = _find_spec_quietly(main_name)
            if spec is None:
                raise UsageError(
                    f"No module named {main_name}; {name!r} is a package and cannot be "
                    "directly executed"
                )
    finally:
        sys.path[:] = saved
    return spec.origin if spec is not None else None


def _find_spec_quietly(name: str) -> ModuleSpec | None:
    """find_spec for `name` that never executes a package `__init__`."""
    parts = name.split(".")
    try:
        spec = importlib.util.find_spec(parts[0])
    except (ImportError, ValueError) as error:
        raise UsageError(
            f"Error while finding module specification for {name!r}: {error}"
        ) from None
    if spec is None:
        raise UsageError(f"No module named {parts[0]}")
    for depth in range(1, len(parts)):
        locations = spec.submodule_search_locations
        if locations is None:
            prefix = ".".join(parts[:depth])
            raise UsageError(
                f"Error while finding module specification for {name!r} (ModuleNotFoundError: "
                f"__path__ attribute not found on {prefix!r} while trying to find "
                f"{'.'.join(parts[: depth + 1])!r})"
            )
        if not isinstance(spec.loader, _TRANSPARENT_LOADERS):
            return spec  # an importer we cannot see through without importing: runpy decides
        child = ".".join(parts[: depth + 1])
        found = importlib.machinery.PathFinder.find_spec(child, list(locations))
        if found is None:
            if child.endswith(".__main__"):
                return None
            raise UsageError(f"No module named {child}")
        spec = found
    return spec


_TRANSPARENT_LOADERS = (
    importlib.machinery.SourceFileLoader,
    importlib.machinery.SourcelessFileLoader,
    importlib.machinery.NamespaceLoader,
    type(None),
)


# -- running a command as a child process (`replay record -- COMMAND`) -----------------------


class CommandResult(NamedTuple):
    """How a child command ended."""

    pid: int
    returncode: int
    """As subprocess gives it: the exit status, or -N when killed by signal N."""

    @property
    def exit_status(self) -> int:
        """What a shell would report: the status, or 128+N after signal N."""
        return self.returncode if self.returncode >= 0 else 128 - self.returncode


_FORWARDED = (signal.SIGINT, signal.SIGTERM)


def run_command(argv: Sequence[str], env: Mapping[str, str]) -> CommandResult:
    """Run `argv` with `env`, standard streams shared, forwarding SIGINT and SIGTERM to it.

    A signal someone sends to replay with kill(2) is passed on. A SIGINT from the terminal
    (Ctrl-C) already reaches the child, which is in the same process group, so it is not
    sent twice. Where sigtimedwait(2) is missing, SIGTERM is forwarded and SIGINT left to
    the terminal.
    """
    try:
        if hasattr(signal, "sigtimedwait"):
            return _run_waiting_for_signals(list(argv), dict(env))
        return _run_with_handlers(list(argv), dict(env))
    except OSError as error:
        raise UsageError(f"{argv[0]}: {error.strerror or error}", exit_code=127) from None


def _run_waiting_for_signals(argv: list[str], env: dict[str, str]) -> CommandResult:
    watched = {*_FORWARDED, signal.SIGCHLD}
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, watched)
    try:
        # The child must not inherit the blocked mask. preexec_fn is safe here: this process
        # runs no other thread while the command runs.
        unblock = lambda: signal.pthread_sigmask(signal.SIG_SETMASK, previous)  # noqa: E731
        import subprocess  # noqa: PLC0415 - `-- COMMAND` only: 1.5 ms of every recorded start

        child = subprocess.Popen(argv, env=env, preexec_fn=unblock)  # noqa: PLW1509
        while (returncode := child.poll()) is None:
            info = signal.sigtimedwait(watched, 0.5)
            if info is not None and info.si_signo in _FORWARDED and _sent_by_a_process(info):
                with contextlib.suppress(ProcessLookupError):
                    child.send_signal(info.si_signo)
        return CommandResult(child.pid, returncode)
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def _sent_by_a_process(info: signal.struct_siginfo) -> bool:
    """kill(2), sigqueue(3), tgkill(2) give si_code <= 0; the kernel (a terminal) gives > 0."""
    return info.si_code <= 0


def _run_with_handlers(argv: list[str], env: dict[str, str]) -> CommandResult:
    import subprocess  # noqa: PLC0415 - as above

    child = subprocess.Popen(argv, env=env)

    def forward(signum: int, _frame: object) -> None:
        with contextlib.suppress(ProcessLookupError):
            child.send_signal(signum)

    saved = {
        signal.SIGTERM: signal.signal(signal.SIGTERM, forward),
        signal.SIGINT: signal.signal(signal.SIGINT, lambda *_: None),
    }
    try:
        return CommandResult(child.pid, child.wait())
    finally:
        for signum, handler in saved.items():
            signal.signal(signum, handler)


def _is_zip_application(path: str) -> bool:
    """Whether python runs the file `path` as a zip application: zipimport takes it.

    As python decides (its main asks the path hooks for an importer of the file): a script
    whose text happens to hold a zip's end record is a script, though `zipfile.is_zipfile`
    says yes to it. zipimport is imported already (frozen, by importlib); zipfile took 3.3 ms of
    every recorded start.
    """
    try:
        zipimport.zipimporter(path)
    except (ImportError, OSError):  # zipimport.ZipImportError is an ImportError
        return False
    return True
