"""The per-event cost of one recording core alone: no store, no writer thread, events dropped.

    python benchmarks/core_only.py CORE [--stub] SCRIPT [ARGS...]
    python benchmarks/core_only.py CORE [--stub] -m MODULE [ARGS...]

CORE is `none` (untraced), `sysmon` (pure-Python core) or `c-sysmon` (C core); the script's
directory is the recording scope (with -m, the current directory: `-m pytest` from a project's
root records its tests). With
`--stub`, values that are not atoms are "encoded" as a constant, which leaves only the core's
own work (callbacks, locals diff, event tuples): the difference with a run without it is the
value encoder's share. Prints CPU seconds (the machine may be busy) and the event count.
"""

from __future__ import annotations

import os
import runpy
import sys
import time
from typing import Any

from replay.recorder.core import make_core
from replay.recorder.identity import IdentityMap
from replay.recorder.redaction import Redactor
from replay.recorder.scope import Scope
from replay.recorder.snapshot import CaptureLimits, SnapshotEncoder
from replay.recorder.state import RecordingState

_ATOMS = (int, float, str, bool, type(None), bytes)


class StubEncoder(SnapshotEncoder):
    """The real encoder for atoms, a constant for everything else."""

    def encode_named(self, name: str, value: Any) -> Any:
        if type(value) in _ATOMS:
            return super().encode_named(name, value)
        return (9, 0, "stub", "")

    def encode_exception(self, exc: BaseException) -> tuple[str, str, Any]:
        return ("stub", "", None)


def main() -> None:
    args = sys.argv[1:]
    core_name = args.pop(0)
    stub = bool(args) and args[0] == "--stub"
    if stub:
        args.pop(0)
    module = bool(args) and args[0] == "-m"
    if module:
        args.pop(0)
    script, *script_args = args
    encoder = (StubEncoder if stub else SnapshotEncoder)(CaptureLimits(), Redactor(), IdentityMap())
    root = os.getcwd() if module else os.path.dirname(os.path.abspath(script))
    state = RecordingState(Scope(root), encoder.encode_named)
    state.is_secret = encoder.redactor.is_secret
    state.max_pending = 0
    dropped = [0]

    def drop() -> None:
        while state.handoff:
            dropped[0] += len(state.handoff.popleft()[1])

    state.on_backlog = drop
    sys.argv = [script, *script_args]
    started = time.process_time()
    core = None if core_name == "none" else make_core(core_name, state, encoder.encode_exception)
    if core is not None:
        core.start()
    try:
        if module:
            runpy.run_module(script, run_name="__main__", alter_sys=True)
        else:
            runpy.run_path(script, run_name="__main__")
    except SystemExit:  # pytest and other tools end so: the measurement goes on
        pass
    finally:
        if core is not None:
            core.stop()
    cpu = time.process_time() - started
    drop()
    events = dropped[0] + sum(len(ts.events) for ts in state.threads)
    label = f"{core_name}{' --stub' if stub else ''}"
    print(f"{label}: cpu={cpu:.3f}s events={events} faults={state.faults}", file=sys.stderr)
    tracer = getattr(core, "_tracer", None)
    if tracer is not None:  # the C core's own counts (part copies, calls into Python)
        print(f"counters: {tracer.counters()}", file=sys.stderr)


if __name__ == "__main__":
    main()
