"""The life of one process's recording: how it starts, and every way the process can end.

A session wraps one `Recorder` for the whole process. It is started either by `replay record
script.py` (in-process: the CLI runs the program, see `run_program`) or by the bootstrap
`sitecustomize` in a child process (`bootstrap`). This module owns the exit paths, so that the
recording is finished with the right status whatever happens, without changing what the
program sees:

- normal end, `SystemExit`, an uncaught exception: the outcome is noted when it happens and
  the recorder is stopped by an `atexit` handler registered before the program runs, so it runs
  after the program's own handlers and after non-daemon threads were joined;
- `KeyboardInterrupt`: flushed at once, then the process exits by SIGINT, as python does;
- SIGTERM and SIGHUP: a handler is installed only where the disposition is the default one; it
  stops the recorder ('killed'), restores the default and sends the signal again, so the exit
  status is the untraced one. A handler the program installs later replaces ours: theirs wins;
- `os._exit()` (how forked multiprocessing workers end) skips atexit, so it is wrapped, and so
  are `os.execv`/`os.execve` (every `os.exec*` ends in them): the recording ends at the exec;
- `os.fork()`: the child starts a recording of its own (`Recorder.after_fork_in_child`);
- children: the environment carries `REPLAY_CONFIG`, `PYTHONPATH` (the bootstrap directory
  first) and `REPLAY_PARENT` (this recording's id), so every Python child records itself too.

In a child (bootstrap mode) nothing wraps the program's main module, so the uncaught exception
comes through a chained `sys.excepthook` and the exit code through a transparent `sys.exit`
wrapper (a bare `raise SystemExit(n)` is not seen there: see the README's limits).
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import gc
import os
import signal
import sys
import threading
from collections.abc import Callable
from types import FrameType, TracebackType
from typing import TYPE_CHECKING, Any, NamedTuple, NoReturn

from replay.config import ENV_CONFIG, RecordConfig, program_dir_of
from replay.recorder.children import ENV_PARENT, child_environment
from replay.recorder.control import Recorder

if TYPE_CHECKING:
    # Only the in-process mode runs a program itself; a bootstrapped child does not need it.
    from replay.recorder.runner import PyRunner

_TERMINATING_SIGNALS = (signal.SIGTERM, signal.SIGHUP)
_original_os_exit = os._exit


class Outcome(NamedTuple):
    """How the program ended, as the recording will say."""

    exit_code: int | None
    status: str
    exception: BaseException | None = None
    resignal: int | None = None
    """Exit by this signal once the recording is finished (SIGINT after KeyboardInterrupt)."""


def outcome_of_exit(error: SystemExit) -> Outcome:
    """The exit code python gives a SystemExit: None->0, int->int, anything else->1."""
    code = error.code
    if code is None:
        exit_code = 0
    elif isinstance(code, int):
        exit_code = int(code)
    else:
        exit_code = 1
    return Outcome(exit_code, "ok" if exit_code == 0 else "failed")


def outcome_of_exception(error: BaseException) -> Outcome:
    """An uncaught exception: failed, exit 1; KeyboardInterrupt: killed by SIGINT."""
    if isinstance(error, SystemExit):
        return outcome_of_exit(error)
    if isinstance(error, KeyboardInterrupt):
        return Outcome(128 + signal.SIGINT, "killed", error)
    return Outcome(1, "failed", error)


class Session:
    """One process's recording and the state of its exit paths."""

    def __init__(self, recorder: Recorder, config: RecordConfig, *, bootstrap: bool) -> None:
        self.recorder = recorder
        self.config = config
        self.bootstrap = bootstrap
        self.pid = os.getpid()
        self.origin_pid = self.pid
        self.outcome: Outcome | None = None
        self.exit_request: int | None = None
        """Code of the last sys.exit() call (bootstrap mode), when no outcome was noted."""
        self.finished = False
        self.on_finish: Callable[[Session], None] | None = None
        self._lock = threading.RLock()

    def note(self, outcome: Outcome) -> None:
        """Remember how the program ended; the recorder stops at exit (`finish`)."""
        self.outcome = outcome

    def finish(self, outcome: Outcome | None = None) -> None:
        """Stop the recorder with `outcome` (or the noted one); once per process, never raises."""
        with self._lock:
            if self.finished:
                return
            self.finished = True
        final = outcome or self.outcome or self._default_outcome()
        try:
            self.recorder.stop(
                exit_code=final.exit_code, status=final.status, exception=final.exception
            )
        except Exception as error:  # stop() promises not to raise; never let it hurt the program
            _warn(f"could not finish the recording: {error}")
        if self.on_finish is not None and os.getpid() == self.origin_pid:
            with contextlib.suppress(Exception):
                self.on_finish(self)

    def _default_outcome(self) -> Outcome:
        # python sets sys.last_exc/last_value before calling sys.excepthook, so an uncaught
        # exception is seen here even when the program replaced our excepthook with its own.
        uncaught = getattr(sys, "last_exc", None) or getattr(sys, "last_value", None)
        if self.bootstrap and isinstance(uncaught, BaseException):
            return outcome_of_exception(uncaught)
        if self.exit_request is not None:
            return outcome_of_exit(SystemExit(self.exit_request))
        return Outcome(0, "ok")

    def forked(self) -> None:
        """In a fork child: a new recording, a clean slate of outcomes."""
        self.pid = os.getpid()
        self.outcome = None
        self.exit_request = None
        self.finished = False
        self._lock = threading.RLock()


_session: Session | None = None


def current_session() -> Session | None:
    """The session of this process, if one was started."""
    return _session


def start_session(
    config: RecordConfig, *, bootstrap: bool = False, recorder: Recorder | None = None
) -> Recorder:
    """Start recording this process and install the exit paths; see the module docstring.

    `recorder`: one already made from `config` (the CLI makes it first to check the options).
    Store errors (StoreError, NotAStoreError) propagate before anything is installed.
    """
    global _session
    if _session is not None:
        raise RuntimeError("a recording session is already running in this process")
    recorder = recorder or Recorder(config)
    # Importing what recording needs (SQLAlchemy above all: some 40k objects) leaves the cyclic
    # garbage collector with a full collection due; left alone it lands in the program's time
    # and walks the program's objects too (12 ms of library_hot_loop's 66). Collected here, the
    # program starts with the collector's counts at rest, as an untraced program does.
    gc.collect()
    recorder.start()
    _session = Session(recorder, config, bootstrap=bootstrap)
    os.environ.update(child_environment(config, recorder.recording_id, os.environ))
    atexit.register(_at_exit)
    _install_signal_handlers()
    os.register_at_fork(
        before=_before_fork,
        after_in_parent=_after_fork_in_parent,
        after_in_child=_after_fork_in_child,
    )
    os._exit = _os_exit  # type: ignore[assignment]
    os.execv = _wrap_exec(os.execv)
    os.execve = _wrap_exec(os.execve)
    threading.excepthook = _chain_threading_excepthook(threading.excepthook)
    if bootstrap:
        sys.excepthook = _chain_excepthook(sys.excepthook)
        sys.exit = _wrap_sys_exit(sys.exit)
    return recorder


# -- in-process mode: `replay record script.py` ----------------------------------------------


def run_program(runner: PyRunner) -> int:
    """Run a prepared program under the current session; return the exit code for the CLI.

    `SystemExit` propagates unchanged (python then exits as usual). An uncaught exception is
    printed as python prints it, through `sys.excepthook`, with replay's frames cut off.
    """
    session = _require_session()
    try:
        runner.run()
    except SystemExit as error:
        session.note(outcome_of_exit(error))
        raise
    except BaseException as error:
        outcome = outcome_of_exception(error)
        if isinstance(error, KeyboardInterrupt):
            outcome = outcome._replace(resignal=signal.SIGINT)
        session.note(outcome)
        _flush_quietly(session)
        report_uncaught(error)
        return outcome.exit_code or 1
    session.note(Outcome(0, "ok"))
    return 0


def report_uncaught(error: BaseException) -> None:
    """Print an uncaught exception as python's top level does (pythonrun.c, _PyErr_PrintEx)."""
    from replay.recorder.runner import program_traceback  # noqa: PLC0415 - see the imports

    tb = program_traceback(error.__traceback__)
    error.__traceback__ = tb  # the display uses the exception's own traceback
    for stream in (sys.stderr, sys.stdout):  # flush_io(): program output first
        with contextlib.suppress(Exception):
            stream.flush()
    sys.last_type, sys.last_value, sys.last_traceback = type(error), error, tb
    if sys.version_info >= (3, 12):
        sys.last_exc = error
    try:
        sys.excepthook(type(error), error, tb)
    except BaseException as hook_error:
        print("Error in sys.excepthook:", file=sys.stderr)
        sys.__excepthook__(type(hook_error), hook_error, hook_error.__traceback__)
        print("\nOriginal exception was:", file=sys.stderr)
        sys.__excepthook__(type(error), error, tb)


def _require_session() -> Session:
    if _session is None:
        raise RuntimeError("start_session() first")
    return _session


def _flush_quietly(session: Session) -> None:
    with contextlib.suppress(Exception):
        session.recorder.flush()


# -- the exit paths --------------------------------------------------------------------------


def _at_exit() -> None:
    """Last resort, and the usual end: runs after the program's own atexit handlers."""
    session = _session
    if session is None or session.finished:
        return
    session.finish()
    outcome = session.outcome
    if outcome is not None and outcome.resignal is not None:
        _exit_by_signal(outcome.resignal, flush_stdio=True)


def _install_signal_handlers() -> None:
    """Handle SIGTERM/SIGHUP where nobody does; only the main thread may install handlers."""
    if threading.current_thread() is not threading.main_thread():
        return
    for signum in _TERMINATING_SIGNALS:
        with contextlib.suppress(OSError, ValueError):
            if signal.getsignal(signum) == signal.SIG_DFL:
                signal.signal(signum, _on_terminating_signal)


def _on_terminating_signal(signum: int, frame: FrameType | None) -> None:
    """Finish the recording as 'killed', then die of the same signal, as untraced."""
    session = _session
    if session is not None:
        session.finish(Outcome(128 + signum, "killed"))
    _exit_by_signal(signum, flush_stdio=False)  # python flushes nothing when killed


def _exit_by_signal(signum: int, *, flush_stdio: bool) -> NoReturn:
    if flush_stdio:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
    signal.signal(signum, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signum})
    os.kill(os.getpid(), signum)
    _original_os_exit(128 + signum)  # not reached: the default action ends the process


def _before_fork() -> None:
    session = _session
    if session is not None and not session.finished:
        try:
            session.recorder.before_fork()
        except Exception as error:  # never stop the program from forking
            _warn(f"could not pause the recording before fork: {error}")


def _after_fork_in_parent() -> None:
    session = _session
    if session is not None and not session.finished:
        try:
            session.recorder.after_fork_in_parent()
        except Exception as error:
            _warn(f"could not resume the recording after fork: {error}")


def _after_fork_in_child() -> None:
    session = _session
    if session is None or session.finished:
        return
    if _forked_to_exec():
        # subprocess with preexec_fn: this child execs at once (or exits with os._exit). It must
        # neither start a recording nor finish the parent's, which its Recorder still points at.
        session.finished = True
        return
    try:
        session.recorder.after_fork_in_child()
    except Exception as error:
        _warn(f"not recording forked process {os.getpid()}: {error}")
        session.finished = True
        return
    session.forked()
    os.environ[ENV_PARENT] = str(session.recorder.recording_id)


def _forked_to_exec() -> bool:
    """True in the child subprocess forks to run `preexec_fn` before exec."""
    frame = sys._getframe(1)
    while frame is not None:
        if frame.f_code.co_name == "_execute_child" and frame.f_globals.get("__name__") == (
            "subprocess"
        ):
            return True
        frame = frame.f_back
    return False


def _os_exit(status: int) -> NoReturn:
    """os._exit skips atexit: finish the recording first (forked workers end this way)."""
    session = _session
    if session is not None and not session.finished:
        code = status if isinstance(status, int) else 1
        session.finish(Outcome(code, "ok" if code == 0 else "failed"))
    _original_os_exit(status)


functools.update_wrapper(_os_exit, _original_os_exit)


def _wrap_exec(original: Callable[..., NoReturn]) -> Callable[..., NoReturn]:
    """os.execv/os.execve (every os.exec* goes through them): the recording ends here.

    The new program, if it is Python, records itself as a child of this recording.
    """

    @functools.wraps(original)
    def exec_(*args: Any, **kwargs: Any) -> NoReturn:
        session = _session
        if session is not None and not session.finished:
            session.finish(Outcome(None, "ok"))
        original(*args, **kwargs)

    return exec_


def _chain_excepthook(
    original: Callable[[type[BaseException], BaseException, TracebackType | None], Any],
) -> Callable[[type[BaseException], BaseException, TracebackType | None], Any]:
    """sys.excepthook in a child: note the uncaught exception, flush, then the original."""

    @functools.wraps(original)
    def excepthook(
        exc_type: type[BaseException], value: BaseException, tb: TracebackType | None
    ) -> Any:
        session = _session
        if session is not None and not session.finished:
            session.note(outcome_of_exception(value))
            _flush_quietly(session)
        return original(exc_type, value, tb)

    return excepthook


def _chain_threading_excepthook(
    original: Callable[[threading.ExceptHookArgs], Any],
) -> Callable[[threading.ExceptHookArgs], Any]:
    """threading.excepthook: a thread died of an exception; flush its events, then chain."""

    @functools.wraps(original)
    def excepthook(args: threading.ExceptHookArgs) -> Any:
        session = _session
        if session is not None and not session.finished:
            _flush_quietly(session)
        return original(args)

    return excepthook


def _wrap_sys_exit(original: Callable[..., NoReturn]) -> Callable[..., NoReturn]:
    """sys.exit in a child: remember the code (atexit cannot see it), then exit as asked."""

    @functools.wraps(original)
    def exit(*args: object) -> NoReturn:
        __tracebackhide__ = True  # pytest hides this frame
        session = _session
        if session is not None and threading.current_thread() is threading.main_thread():
            outcome = outcome_of_exit(SystemExit(*args))
            session.exit_request = outcome.exit_code
        original(*args)

    return exit


def _warn(message: str) -> None:
    with contextlib.suppress(Exception):
        print(f"replay: {message}", file=sys.stderr)


# -- bootstrap mode: a child process started with REPLAY_CONFIG ------------------------------


def bootstrap() -> None:
    """Start recording this process from the environment; never raises.

    Called by our sitecustomize. A failure prints one line and the program runs untraced.
    """
    text = os.environ.get(ENV_CONFIG)
    if not text or _session is not None or is_replay_cli(getattr(sys, "orig_argv", sys.argv)):
        return
    try:
        config = RecordConfig.from_env(text)
        parent = os.environ.get(ENV_PARENT)
        argv = getattr(sys, "orig_argv", sys.argv)
        _, script = _main_target(argv)
        config = config._replace(
            command=tuple(argv),
            parent_id=int(parent) if parent else None,
            # This process's own script (the parent's is not this program's).
            program_dir=program_dir_of(script) if script else None,
        )
        start_session(config, bootstrap=True)
    except Exception as error:
        _warn(f"not recording process {os.getpid()}: {error}")


def is_replay_cli(argv: list[str]) -> bool:
    """True when `argv` (sys.orig_argv) starts replay's own command line, never recorded."""
    module, script = _main_target(argv)
    if module is not None:
        return module in ("replay", "replay.cli", "replay.__main__")
    if script is None or os.path.splitext(os.path.basename(script))[0] != "replay":
        return False
    try:
        with open(script, "rb") as file:
            head = file.read(4096)
    except OSError:
        return False
    return b"replay.cli" in head


_OPTIONS_WITH_VALUE = frozenset({"-W", "-X", "--check-hash-based-pycs"})


def _main_target(argv: list[str]) -> tuple[str | None, str | None]:
    """(module, script) that an interpreter command line runs; (None, None) for -c or stdin."""
    index = 1
    while index < len(argv):
        arg = argv[index]
        if arg == "-m":
            return (argv[index + 1] if index + 1 < len(argv) else None), None
        if arg.startswith("-m"):
            return arg[2:], None
        if arg.startswith("-c") or arg == "-":
            return None, None
        if arg in _OPTIONS_WITH_VALUE:
            index += 2
            continue
        if not arg.startswith("-"):
            return None, arg
        index += 1
    return None, None
