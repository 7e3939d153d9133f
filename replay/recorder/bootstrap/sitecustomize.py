# ruff: noqa: UP031 - %-formatting: this file must parse on any Python 3
"""replay's bootstrap for child processes (this directory goes first on PYTHONPATH).

`replay record` puts this directory on the PYTHONPATH of the programs it runs, so that every
Python process they start imports this module at startup (site.py imports `sitecustomize`).
When REPLAY_CONFIG is set, it starts a recording of this process
(`replay.recorder.session.bootstrap`, which skips replay's own command line). Then it steps
aside: it removes its directory from sys.path and runs the `sitecustomize` it shadows, if any
(a distribution's or a virtualenv's), exactly as site.py would have.

It never stops the program: if replay cannot be imported (another interpreter, replay not
installed there), one line goes to stderr and the program runs untraced. Kept to syntax that
any Python 3 parses, since any interpreter a recorded program starts reads this file.
"""

import importlib.machinery
import importlib.util
import os
import sys

_HERE = os.path.realpath(os.path.dirname(os.path.abspath(__file__)))


def _replay_start() -> None:
    if not os.environ.get("REPLAY_CONFIG"):
        return
    try:
        from replay.recorder.session import bootstrap  # noqa: PLC0415 - only when recording
    except Exception as error:
        sys.stderr.write(
            "replay: not recording %s (pid %d): cannot import replay there: %s\n"
            % (sys.executable, os.getpid(), error)
        )
        return
    bootstrap()


def _replay_is_ours(entry: str) -> bool:
    return bool(entry) and os.path.realpath(entry) == _HERE


def _replay_run_shadowed_sitecustomize() -> None:
    """Find and run the next `sitecustomize` on sys.path, as `import sitecustomize` would."""
    spec = importlib.machinery.PathFinder.find_spec("sitecustomize", sys.path)
    if spec is None or spec.loader is None:
        return
    module = importlib.util.module_from_spec(spec)
    sys.modules["sitecustomize"] = module
    # Errors propagate to site.py, which reports them as it would without replay.
    spec.loader.exec_module(module)


_replay_start()
sys.path[:] = [entry for entry in sys.path if not _replay_is_ours(entry)]
_replay_run_shadowed_sitecustomize()
