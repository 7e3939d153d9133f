"""The per-event cost of one recording core alone: no store, no writer thread, events dropped.

    python benchmarks/core_only.py CORE [--stub] SCRIPT [ARGS...]

CORE is `none` (untraced), `sysmon` (pure-Python core) or `c-sysmon` (C core); the script's
directory is the recording scope. With
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
    script, *script_args = args
    encoder = (StubEncoder if stub else SnapshotEncoder)(CaptureLimits(), Redactor(), IdentityMap())
    state = RecordingState(Scope(os.path.dirname(os.path.abspath(script))), encoder.encode_named)
    state.is_secret = encoder.redactor.is_secret
    state.max_pending = 0
    dropped = [0]

    def drop() -> None:
        while state.handoff:
            dropped[0] += len(state.handoff.popleft()[1])

    state.on_backlog = drop
    sys.argv = [script, *script_args]
    started = time.process_time()
    if core_name == "none":
        runpy.run_path(script, run_name="__main__")
    else:
        core = make_core(core_name, state, encoder.encode_exception)
        core.start()
        try:
            runpy.run_path(script, run_name="__main__")
        finally:
            core.stop()
    cpu = time.process_time() - started
    drop()
    events = dropped[0] + sum(len(ts.events) for ts in state.threads)
    label = f"{core_name}{' --stub' if stub else ''}"
    print(f"{label}: cpu={cpu:.3f}s events={events} faults={state.faults}", file=sys.stderr)


if __name__ == "__main__":
    main()
