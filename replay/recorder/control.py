"""The recorder: one recording of one process, from start() to stop().

A Recorder owns the pieces of a recording and their order of assembly: the store (opened and
checked before anything is traced), the recording row, the shared per-event state, the per-event
core (sys.monitoring or settrace) and the writer thread. Process-level concerns (exit paths,
signals, children) are in session.py; the per-event work in state.py and the cores.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import sys
import threading
import time
from typing import Any

from replay.config import RecordConfig
from replay.events import FORMAT_RECORDS, FORMAT_VERSION
from replay.recorder.budget import OverheadBudget
from replay.recorder.core import Core, choose_backend, make_core, value_model
from replay.recorder.identity import IdentityMap
from replay.recorder.redaction import Redactor
from replay.recorder.scope import Scope
from replay.recorder.snapshot import CaptureLimits, SnapshotEncoder
from replay.recorder.state import RecordingState
from replay.recorder.writer import Writer
from replay.storage import RecordingWriter

__all__ = ["Recorder"]


def redact_argv(argv: list[str], redactor: Redactor) -> list[str]:
    """The command line with secret-looking option values hidden (`--token=x`, `--token x`)."""
    redacted: list[str] = []
    hide_next = False
    for arg in argv:
        if hide_next:
            redacted.append(REDACTED_TEXT)
            hide_next = False
            continue
        name, eq, _value = arg.partition("=")
        if arg.startswith("-") and redactor.is_secret(name.lstrip("-")):
            if eq:
                redacted.append(f"{name}={REDACTED_TEXT}")
            else:
                redacted.append(arg)
                hide_next = True
            continue
        if eq and not arg.startswith("-") and redactor.is_secret(name):
            redacted.append(f"{name}={REDACTED_TEXT}")  # KEY=value style (env-like arguments)
            continue
        redacted.append(arg)
    return redacted


REDACTED_TEXT = "<redacted>"


class Recorder:
    """Records the current process into a store. Not reentrant: one per process at a time."""

    def __init__(self, config: RecordConfig) -> None:
        self.config = config
        self.recording_id: int | None = None
        self.backend, self.backend_reason = choose_backend(config.backend)
        self.records = value_model() == "records"
        """Whether changed values are written as object records (versions.py), not trees."""
        self.redactor = Redactor(config.redact, defaults=config.redact_defaults)
        self.limits = CaptureLimits(
            max_depth=config.max_depth,
            max_items=config.max_items,
            max_string=config.max_string,
        )
        self._store: RecordingWriter | None = None
        self._state: RecordingState | None = None
        self._core: Core | None = None
        self._writer: Writer | None = None
        self._encoder: SnapshotEncoder | None = None
        self._stopped = False
        self._fault_reported = False

    # -- lifecycle -----------------------------------------------------------------------

    def start(self, parent_id: int | None = None) -> None:
        """Open the store, create the recording and begin tracing this process."""
        self._store = RecordingWriter.open(self.config.store)
        self.recording_id = self._store.create_recording(
            self._metadata(parent_id if parent_id is not None else self.config.parent_id)
        )
        self._begin_tracing()

    def flush(self) -> None:
        """Write everything buffered so far (safe from a signal handler: no tracing stops)."""
        if self._writer is not None and not self._stopped:
            self._writer.flush()

    def stop(
        self,
        *,
        exit_code: int | None,
        status: str,
        exception: BaseException | None = None,
    ) -> None:
        """Stop tracing, write the rest, and close the recording. Idempotent; never raises."""
        if self._stopped or self._store is None:
            return
        self._stopped = True
        try:
            if self._core is not None:
                self._core.stop()
            if self._writer is not None:
                self._writer.stop()
            self._finish_row(exit_code, status, exception)
        except Exception as exc:  # the program's exit must not be changed by us
            self._report(f"could not finish the recording: {type(exc).__name__}: {exc}")
        finally:
            self._report_faults()
            self._store.close()

    def after_fork_in_child(self) -> None:
        """In a forked child: a new recording, fresh state and writer; the parent's buffers go."""
        if self._stopped or self._store is None:
            return
        parent_id = self.recording_id
        if self._core is not None:
            with contextlib.suppress(Exception):  # the child must go on, recorded or not
                self._core.stop()
        self._store.after_fork()
        self._store = RecordingWriter.open(self.config.store)
        self.recording_id = self._store.create_recording(self._metadata(parent_id))
        self._fault_reported = False
        self._begin_tracing()

    def before_fork(self) -> None:
        """Just before os.fork(): no writer thread may exist at the fork (see Writer.pause)."""
        if not self._stopped and self._writer is not None:
            self._writer.pause()

    def after_fork_in_parent(self) -> None:
        if not self._stopped and self._writer is not None:
            self._writer.resume()

    @property
    def stats(self) -> dict[str, Any]:
        state, writer = self._state, self._writer
        return {
            "steps": writer.index.last_step if writer else 0,
            "events": writer.events_written if writer else 0,
            "bytes": writer.bytes_written if writer else 0,
            "dropped": writer.events_dropped if writer else 0,
            "faults": state.faults if state else 0,
            "backend": self.backend,
        }

    # -- pieces --------------------------------------------------------------------------

    def _begin_tracing(self) -> None:
        assert self._store is not None and self.recording_id is not None
        config = self.config
        self._encoder = SnapshotEncoder(self.limits, self.redactor, IdentityMap())
        state = RecordingState(
            Scope(config.scope_root, config.include, config.exclude, config.program_dir),
            self._encoder.encode_named,
        )
        state.is_secret = self.redactor.is_secret
        if self.records:
            # Imported only for a recording of object records (REPLAY_VALUE_MODEL=records): the
            # versions, the records and their expansion are a start-up cost of no other.
            from replay.recorder.versions import ObjectVersions  # noqa: PLC0415

            state.use_versions(ObjectVersions(state, self._encoder))
        self._state = state
        # The writer installs state.on_backlog: --on-backlog block or drop (see writer.py).
        self._writer = Writer(self._store, self.recording_id, state, on_backlog=config.on_backlog)
        self._core = make_core(self.backend, state, self._encoder.encode_exception)
        if config.max_overhead is not None:
            writer = self._writer
            self._core.set_budget(OverheadBudget(config.max_overhead, lambda: writer.cpu_ns))
        self._writer.start()
        self._core.start()

    def _metadata(self, parent_id: int | None) -> dict[str, Any]:
        config = self.config
        command = redact_argv(list(config.command) or list(sys.argv), self.redactor)
        return {
            "name": config.name,
            "command": " ".join(command),
            "argv": redact_argv(list(sys.argv), self.redactor),
            "cwd": os.getcwd(),
            "python": platform.python_version(),
            "implementation": platform.python_implementation(),
            "pid": os.getpid(),
            "ppid": os.getppid(),
            "host": platform.node(),  # gethostname(); socket's import took 4.7 ms of a start
            "started_at": time.time(),
            "status": "running",
            "backend": self.backend,
            "config": {
                **json.loads(config.to_env()),
                "command": command,
                **({"limits": self.limits._asdict()} if self.records else {}),
            },
            "parent_id": parent_id,
            "format_version": FORMAT_RECORDS if self.records else FORMAT_VERSION,
        }

    def _finish_row(
        self, exit_code: int | None, status: str, exception: BaseException | None
    ) -> None:
        assert self._store is not None and self.recording_id is not None
        fields: dict[str, Any] = {
            "ended_at": time.time(),
            "exit_code": exit_code,
            "status": status,
        }
        writer, state = self._writer, self._state
        if writer is not None and state is not None:
            # The core's counter: a tail dropped by --on-backlog drop has no event written.
            taken = self._core.steps_taken() if self._core is not None else 0
            fields["steps"] = max(writer.index.last_step, taken)
            fields["tracer_faults"] = state.faults
            fields["fault_message"] = state.last_fault or writer.error
        if exception is not None and self._encoder is not None:
            type_name, message, _venc = self._encoder.encode_exception(exception)
            fields["exception_type"] = type_name
            fields["exception_message"] = message
            unwinds = writer.index.last_unwind if writer is not None else {}
            thread_id = self._thread_id_of(threading.main_thread().ident)
            last = unwinds.get(thread_id) if thread_id is not None else None
            fields["exception_step"] = last[0] if last else None
            if last is not None:
                step, call_id, line = last
                self._store.add_batch(
                    self.recording_id,
                    exceptions=[
                        {
                            "step": step,
                            "thread_id": thread_id,
                            "call_id": call_id,
                            "kind": "uncaught",
                            "type": type_name,
                            "message": message,
                            "line": line,
                        }
                    ],
                )
        self._store.update_recording(self.recording_id, **fields)

    def _thread_id_of(self, ident: int | None) -> int | None:
        if self._state is None or ident is None:
            return None
        for ts in reversed(self._state.threads):
            if ts.ident == ident:
                return ts.thread_id
        return None

    def _report_faults(self) -> None:
        state = self._state
        if state is not None and state.faults and not self._fault_reported:
            self._fault_reported = True
            self._report(
                f"{state.faults} internal fault(s) while recording; the program was not "
                f"affected but the recording may miss events. First: {state.last_fault}"
            )

    @staticmethod
    def _report(message: str) -> None:
        try:
            sys.stderr.write(f"replay: {message}\n")
            sys.stderr.flush()
        except Exception:
            pass
