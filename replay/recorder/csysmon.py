"""The C sys.monitoring core: sysmon.py's callbacks, implemented in `_ctracer.c`.

Same contract as `SysMonitoringCore` and the same events, step for step (only `ts` differs):
tests/recorder/test_core_parity.py records every fidelity program with both and compares. This
class only owns the tool id and the registration; every callback is a method of the C `Tracer`.

The C core skips the Python encoder for plain atoms (exact None/bool/int/float and str/bytes
within the capture limits, under a name that is not secret), whose venc is the value itself. It
reads that rule from the `SnapshotEncoder` that `encode_exception` belongs to (the Recorder hands
the core one encoder's methods); with any other encoder, every value goes through
`state.encode_named`, which is always exact, only slower.
"""

from __future__ import annotations

import os
import sys
from collections import deque
from collections.abc import Callable
from typing import Any

from replay.config import ENV_INJECT_FAULT
from replay.events import V_CUT, V_MAP, V_OBJ, V_OPAQUE, V_REDACTED, V_REF, V_SEQ
from replay.recorder.backends import IMPORT_ERROR, _ctracer, c_core_unavailable
from replay.recorder.budget import REVIEW_NS, OverheadBudget
from replay.recorder.callees import callee_name
from replay.recorder.identity import _Ref
from replay.recorder.snapshot import SnapshotEncoder
from replay.recorder.state import BATCH_EVENTS, RecordingState
from replay.recorder.sysmon import (
    acquire_tool,
    call_level_events,
    install,
    local_events,
    uninstall,
)


def available() -> str | None:
    """None if this core can run here, else the reason it cannot."""
    return c_core_unavailable("sysmon")


_VENC_TAGS = {
    "V_CUT": V_CUT,
    "V_REDACTED": V_REDACTED,
    "V_SEQ": V_SEQ,
    "V_MAP": V_MAP,
    "V_OBJ": V_OBJ,
    "V_REF": V_REF,
    "V_OPAQUE": V_OPAQUE,
}
"""The venc tags the C encoder (_encode.c) builds, by name."""


def _encoder_rule(encode_exception: Callable[[BaseException], Any]) -> dict[str, Any]:
    """The atom rule of the encoder behind `encode_exception`, as Tracer keyword arguments."""
    encoder = getattr(encode_exception, "__self__", None)
    if not isinstance(encoder, SnapshotEncoder):
        return {}
    limits = encoder.limits
    return {
        "max_string": limits.max_string,
        "max_int_digits": limits.max_int_digits,
        "is_secret": encoder.redactor.is_secret,
        # The content fingerprints (_fingerprint.c) mirror what the encoder reads of a value.
        "fingerprint": {
            "max_depth": limits.max_depth,
            "max_items": limits.max_items,
            "max_attrs": limits.max_attrs,
            "max_nodes": limits.max_nodes,
            "max_string": limits.max_string,
            "walk_kind": encoder.walk_kind,
            "walk_slots": encoder.walk_slots,
            "walk_fields": encoder.walk_fields,
            "deque": deque,  # the class whose __len__ and __iter__ _take_deque calls
            "secret_cache": encoder.redactor._cache,
            "is_secret": encoder.redactor.is_secret,
            "identity_rotations": encoder.identity.rotations,
            # Serials, read from the map's weak references, make fingerprints tell a new object
            # at a dead one's address apart.
            "identity_ref": _Ref,
            "identity_drop": encoder.identity._drop,
            "identity_entries": encoder.identity._entries,
            "identity_entry_changes": encoder.identity.entry_changes,
            # New young entries are made in C too (_encode.c, young_insert), under its lock.
            "identity_map": encoder.identity,
            **_c_encoder_rule(encoder),
        },
    }


def _c_encoder_rule(encoder: SnapshotEncoder) -> dict[str, Any]:
    """What the C encoder (_encode.c) needs to build the venc of what the walk can read, unless
    a subclass changes how values are encoded (then its own methods must run)."""
    own = type(encoder)
    if any(getattr(own, m) is not getattr(SnapshotEncoder, m) for m in ("encode_named", "_enc")):
        return {}
    return {
        "key": encoder.identity.key,
        "type_name": encoder.type_name,
        "class_name": encoder.class_name,
        "encode_opaque": encoder.encode_opaque,
        "max_int_digits": encoder.limits.max_int_digits,
        "tags": _VENC_TAGS,
    }


def new_tracer(state: RecordingState, encode_exception: Callable[[BaseException], Any]) -> Any:
    """The C `Tracer` of one recording (both C cores drive one: this one and csettrace's)."""
    if _ctracer is None:
        raise RuntimeError(f"the C core is not built: {IMPORT_ERROR}")
    state.take_idle_list = _ctracer.take_idle_list
    state.set_writer_thread = _ctracer.set_writer_thread
    return _ctracer.Tracer(
        state,
        encode_exception,
        callee_name,
        BATCH_EVENTS,
        inject=os.environ.get(ENV_INJECT_FAULT) or None,
        **_encoder_rule(encode_exception),
    )


class CSysMonitoringCore:
    """Records in-scope code through sys.monitoring callbacks written in C."""

    name = "c-sysmon"

    def __init__(
        self, state: RecordingState, encode_exception: Callable[[BaseException], Any]
    ) -> None:
        self.state = state
        self.encode_exception = encode_exception
        self.tool: int | None = None
        self._tracer = new_tracer(state, encode_exception)

    def steps_taken(self) -> int:
        """The last step number handed out (after stop())."""
        return int(self._tracer.counters()["steps"])

    def set_budget(self, budget: OverheadBudget) -> None:
        """Record hot code at call level only past `budget` (budget.py): the tracer times its
        callbacks per code object and asks `budget.review` once per REVIEW_NS."""
        self._tracer.set_budget(budget.review, call_level_events(), REVIEW_NS)

    def start(self) -> None:
        mon = sys.monitoring
        ev = mon.events
        self.tool = acquire_tool()
        tracer = self._tracer
        self.state.watch_gc()
        tracer.bind(self.tool, mon.DISABLE, mon.set_local_events, local_events(), ev.PY_RETURN)
        install(
            self.tool,
            {
                ev.PY_START: tracer.py_start,
                ev.PY_RESUME: tracer.py_resume,
                ev.PY_RETURN: tracer.py_return,
                ev.PY_YIELD: tracer.py_yield,
                ev.PY_UNWIND: tracer.py_unwind,
                ev.PY_THROW: tracer.py_throw,
                ev.RAISE: tracer.raise_,
                ev.EXCEPTION_HANDLED: tracer.exception_handled,
                ev.LINE: tracer.line,
                ev.JUMP: tracer.jump,
                ev.STOP_ITERATION: tracer.stop_iteration,
                ev.CALL: tracer.call,
                ev.C_RETURN: tracer.c_return,
                ev.C_RAISE: tracer.c_raise,
            },
        )

    def stop(self) -> None:
        if self.tool is None:
            return
        uninstall(self.tool, self._tracer.codes())
        self.state.unwatch_gc()
        self.tool = None
        self._tracer.close()
