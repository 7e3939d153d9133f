"""An independent reference tracer for the fidelity tests: plain sys.settrace, no replay code.

Usage: python oracle.py OUT.json PROGRAM.py [ARGS...]

Runs PROGRAM as __main__ and writes, per thread, the sequence of settrace events of the code
in PROGRAM's directory, with each line event's locals in a plain comparable form. With
ORACLE_STACKS=1 in the environment, each line event also has `stack`: the function, line and
locals of every frame of that code below it, innermost first. It shares no code with replay: the
tests compare replay's export, and its engine's stacks, against what this file saw.
"""

import json
import os
import runpy
import sys
import threading
import types

# Standard library value types replay shows as one text, whatever their slots hold.
VALUE_TYPES = {
    "uuid.UUID",
    "fractions.Fraction",
    "pathlib.PosixPath",  # pathlib._local on 3.13
    "pathlib._local.PosixPath",
}
MAX_DEPTH = 4
MAX_ITEMS = 64
MAX_STRING = 1024
ATOMS = (type(None), bool, int, float, str, bytes)
OPAQUE = (
    types.FunctionType,
    types.BuiltinFunctionType,
    types.MethodType,
    types.ModuleType,
    type,
    types.GeneratorType,
    types.CoroutineType,
    types.CodeType,
    types.FrameType,
)

out_path, program = sys.argv[1], os.path.abspath(sys.argv[2])
STACKS = os.environ.get("ORACLE_STACKS") == "1"
root = os.path.dirname(program) + os.sep
events = {}


def type_name(t):
    return t.__qualname__ if t.__module__ == "builtins" else f"{t.__module__}.{t.__qualname__}"


def plain(value, depth=0, path=()):
    """The comparable form of a live value (the test converts replay's JSON to the same form)."""
    t = type(value)
    if t in ATOMS:
        if t in (str, bytes) and len(value) > MAX_STRING:
            return ["atom", type_name(t), repr(value[:MAX_STRING])]
        return ["atom", type_name(t), repr(value)]
    if id(value) in path:
        return ["ref", type_name(t)]
    if isinstance(value, OPAQUE) or type_name(t) in VALUE_TYPES:
        return ["opaque", type_name(t)]
    fields = getattr(t, "_fields", None) if issubclass(t, tuple) else None
    if isinstance(fields, tuple):  # a namedtuple: an object whose attributes are its fields
        if depth >= MAX_DEPTH:
            return ["obj", type_name(t), None]
        pairs = list(zip(fields, value, strict=False))[:MAX_ITEMS]
        return ["obj", type_name(t), {k: plain(v, depth + 1, (*path, id(value))) for k, v in pairs}]
    # Subclasses of the builtin containers show as the containers they are (their own instance
    # attributes are not shown), under their own type name.
    if issubclass(t, (list, tuple, set, frozenset)) or type_name(t) == "collections.deque":
        if depth >= MAX_DEPTH:
            return ["seq", type_name(t), len(value), None]
        items = [plain(v, depth + 1, (*path, id(value))) for v in list(value)[:MAX_ITEMS]]
        return ["seq", type_name(t), len(value), items]
    if issubclass(t, dict):
        if depth >= MAX_DEPTH:
            return ["map", type_name(t), len(value), None]
        pairs = [
            [plain(k, depth + 1, (*path, id(value))), plain(v, depth + 1, (*path, id(value)))]
            for k, v in list(value.items())[:MAX_ITEMS]
        ]
        return ["map", type_name(t), len(value), pairs]
    attrs = attributes(value)
    if attrs is not None:
        if depth >= MAX_DEPTH:
            return ["obj", type_name(t), None]
        return [
            "obj",
            type_name(t),
            {
                k: plain(v, depth + 1, (*path, id(value)))
                for k, v in list(attrs.items())[:MAX_ITEMS]
            },
        ]
    return ["opaque", type_name(t)]


def attributes(value):
    """What replay's spec says an object shows: exception args, instance dict, then slots.

    Slots are member descriptors of the classes in the MRO (user __slots__ and C struct
    members), base classes first, dunder names left out; unset ones are skipped. None when the
    object has neither a dict nor slots (it is then opaque).
    """
    out = {}
    has_any = False
    if isinstance(value, BaseException):
        out["args"] = value.args
        has_any = True
    d = getattr(value, "__dict__", None)
    if isinstance(d, dict):
        has_any = True
        out.update((k, v) for k, v in d.items() if type(k) is str)
    seen, groups = set(), []
    for klass in type(value).__mro__:
        if klass is object:
            continue
        group = []
        for name, descr in vars(klass).items():
            if type(descr) is not types.MemberDescriptorType or name in seen:
                continue
            if name.startswith("__") and name.endswith("__"):
                continue
            seen.add(name)
            group.append((name, descr))
        groups.append(group)
    for group in reversed(groups):
        for name, descr in group:
            has_any = True
            try:
                out[name] = descr.__get__(value)
            except AttributeError:
                pass
    return out if has_any else None


def frame_locals(frame):
    code = frame.f_code
    if code.co_flags & 1:  # CO_OPTIMIZED: a function
        return frame.f_locals
    if code.co_name == "<module>":
        # Never f_locals at module level: on 3.12 that corrupts inlined comprehensions.
        return {k: v for k, v in frame.f_globals.items() if not (k[:2] == "__" == k[-2:])}
    return None


def outer_frames(frame):
    """The frames of PROGRAM's directory below `frame`, innermost first, as they are now."""
    out = []
    caller = frame.f_back
    while caller is not None:
        if caller.f_code.co_filename.startswith(root):
            loc = frame_locals(caller)
            out.append(
                {
                    "function": caller.f_code.co_qualname,
                    "line": caller.f_lineno,
                    "locals": None if loc is None else {k: plain(v) for k, v in loc.items()},
                }
            )
        caller = caller.f_back
    return out


def tracer(frame, event, arg):
    code = frame.f_code
    if not code.co_filename.startswith(root):
        return None
    name = threading.current_thread().name
    record = {
        "kind": event,
        "function": code.co_qualname,
        "file": code.co_filename,
        "line": frame.f_lineno,
    }
    if event == "line":
        loc = frame_locals(frame)
        record["locals"] = None if loc is None else {k: plain(v) for k, v in loc.items()}
        if STACKS:
            record["stack"] = outer_frames(frame)
    if event == "exception":
        record["type"] = type_name(arg[0])
        record["value"] = plain(arg[1])  # the exception as replay shows it: args, dict, slots
    events.setdefault(name, []).append(record)
    return tracer


sys.argv = sys.argv[2:]
sys.path[0] = os.path.dirname(program)
threading.settrace(tracer)
sys.settrace(tracer)
status = 0
try:
    runpy.run_path(program, run_name="__main__")
except SystemExit as exc:
    status = exc.code if isinstance(exc.code, int) else 1
except BaseException as exc:  # the uncaught case: record and exit like python would
    sys.settrace(None)
    print(f"{type(exc).__name__}: {exc}", file=sys.stderr)
    status = 1
sys.settrace(None)
threading.settrace(None)
with open(out_path, "w") as handle:
    json.dump(events, handle)
sys.exit(status)
