"""The JSON export of a recording: the one owner of the document's shape.

The document is written as a stream (steps are not held in memory), in this key order:
`format`, `version`, `recording`, `threads`, `files`, `functions`, `steps`, `calls`,
`exceptions`. `calls` comes after `steps` because a call's return value is known only at its
end. The shape is documented in README.md ("The JSON export") and tested against gold files.

Values are rendered by replay.values.to_json; every other field is plain JSON.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import IO, Any

from replay.events import EXCEPTION_KINDS, EXTERNAL, GAP, KINDS_BY_NAME, RETURN, YIELD
from replay.gaps import payload_parts
from replay.reader import RecordingReader, Step
from replay.values import to_json

EXPORT_FORMAT = "replay-export"
EXPORT_VERSION = 1

_RECORDING_FIELDS = (
    "id",
    "name",
    "command",
    "argv",
    "cwd",
    "python",
    "implementation",
    "pid",
    "ppid",
    "host",
    "started_at",
    "ended_at",
    "exit_code",
    "status",
    "exception_type",
    "exception_message",
    "exception_step",
    "steps",
    "events_dropped",
    "tracer_faults",
    "fault_message",
    "backend",
    "parent_id",
    "config",
)


def exception_json(exc: Any) -> dict[str, Any] | None:
    """An `exc` triple (type_name, message, venc) as JSON."""
    if exc is None:
        return None
    type_name, message, venc = exc
    return {"type": type_name, "message": message, "value": to_json(venc)}


def step_json(step: Step) -> dict[str, Any]:
    """One step as the export shows it."""
    doc: dict[str, Any] = {
        "step": step.step,
        "thread": step.thread,
        "call": step.call,
        "kind": step.kind,
        "file": step.file,
        "line": step.line,
        "function": step.function,
        "time_ns": step.time_ns,
        "changes": {name: to_json(venc) for name, venc in step.changes.items()},
        "deleted": list(step.deleted),
    }
    kind = KINDS_BY_NAME.get(step.kind)
    payload = step.payload
    if kind in (RETURN, YIELD):
        doc["value"] = to_json(payload)
    elif kind in EXCEPTION_KINDS:
        doc["exception"] = exception_json(payload)
    elif kind == EXTERNAL:
        callee, observed, value, exc = payload
        doc["callee"] = callee
        # `value` only when it was seen: sys.monitoring does not report C functions' results.
        if observed and exc is None:
            doc["value"] = to_json(value)
        doc["exception"] = exception_json(exc)
    elif kind == GAP:  # any reason, as it is (replay.gaps): `backlog`, `budget`, ...
        reason, detail = payload_parts(payload)
        doc["gap"] = {"reason": reason, "detail": detail}
    return doc


def export_json(reader: RecordingReader, out: IO[str], *, indent: int | None = None) -> None:
    """Write the whole recording as one JSON document to `out`."""
    write = out.write
    dumps = json.dumps
    write("{")
    write(f'"format": {dumps(EXPORT_FORMAT)}, "version": {EXPORT_VERSION},\n')
    write(f'"recording": {dumps(_recording(reader), indent=indent)},\n')
    write(f'"threads": {dumps(_threads(reader), indent=indent)},\n')
    write(f'"files": {dumps(_files(reader), indent=indent)},\n')
    write(f'"functions": {dumps(_functions(reader), indent=indent)},\n')
    write('"steps": [')
    _write_items(out, (step_json(step) for step in reader.steps()), indent)
    write("],\n")
    write('"calls": [')
    _write_items(out, _calls(reader), indent)
    write("],\n")
    write(f'"exceptions": {dumps(_exceptions(reader), indent=indent)}')
    write("}\n")


def _write_items(out: IO[str], items: Iterator[dict[str, Any]], indent: int | None) -> None:
    first = True
    for item in items:
        out.write("\n" if first else ",\n")
        out.write(json.dumps(item, indent=indent))
        first = False
    if not first:
        out.write("\n")


def _recording(reader: RecordingReader) -> dict[str, Any]:
    meta = reader.meta
    return {name: meta.get(name) for name in _RECORDING_FIELDS}


def _threads(reader: RecordingReader) -> list[dict[str, Any]]:
    return [
        {
            "thread": row["thread_id"],
            "ident": row["ident"],
            "name": row["name"],
            "first_step": row["first_step"],
            "last_step": row["last_step"],
        }
        for row in reader.store.threads(reader.recording_id)
    ]


def _files(reader: RecordingReader) -> list[dict[str, Any]]:
    return [
        {"id": file_id, "path": row["path"], "sha256": row["sha256"], "size": row["size"]}
        for file_id, row in sorted(reader.files.items())
    ]


def _functions(reader: RecordingReader) -> list[dict[str, Any]]:
    return [
        {
            "id": function_id,
            "name": row["name"],
            "qualname": row["qualname"],
            "file": reader.files.get(row["file_id"], {}).get("path"),
            "line": row["firstlineno"],
        }
        for function_id, row in sorted(reader.functions.items())
    ]


def _calls(reader: RecordingReader) -> Iterator[dict[str, Any]]:
    values = {call_id: (args, ret, exc) for call_id, args, ret, exc in reader.call_values()}
    for row in reader.store.calls(reader.recording_id):
        args, ret, exc = values.get(row["call_id"], ({}, None, None))
        yield {
            "id": row["call_id"],
            "parent": row["parent_id"],
            "function": reader.function_name(row["function_id"]),
            "function_id": row["function_id"],
            "thread": row["thread_id"],
            "depth": row["depth"],
            "first_step": row["first_step"],
            "last_step": row["last_step"],
            "args": {name: to_json(venc) for name, venc in args.items()},
            "return": to_json(ret) if row["last_step"] is not None and exc is None else None,
            "exception": exception_json(exc),
            "generator": bool(row["generator"]),
        }


def _exceptions(reader: RecordingReader) -> list[dict[str, Any]]:
    return [
        {
            "step": row["step"],
            "thread": row["thread_id"],
            "call": row["call_id"],
            "kind": row["kind"],
            "type": row["type"],
            "message": row["message"],
            "line": row["line"],
        }
        for row in reader.store.exceptions(reader.recording_id)
    ]
