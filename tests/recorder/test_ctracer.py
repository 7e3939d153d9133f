"""The C core's building blocks, checked against CPython itself, and the core selection.

The C core reads frames through CPython's internal structures instead of `frame.f_locals` and
`frame.f_lineno`; these tests compare what it reads with what Python shows, at every event of
functions written to hit the awkward cases (cells, free variables, deleted names, comprehensions,
generators, exception variables). The core's events themselves are compared with the Python
core's in test_core_parity.py.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from replay.exceptions import ReplayError, UsageError
from replay.recorder import backends, csettrace, csysmon
from replay.recorder.core import choose_backend

C_EXPECTED = sys.implementation.name == "cpython" and (3, 11) <= sys.version_info[:2] <= (3, 13)
needs_c = pytest.mark.skipif(
    csettrace.available() is not None, reason=f"no C core here: {csettrace.available()}"
)
needs_c_sysmon = pytest.mark.skipif(
    csysmon.available() is not None, reason=f"no C sysmon core here: {csysmon.available()}"
)


@pytest.mark.skipif(os.environ.get("CI") != "true", reason="CI only")
def test_ci_builds_the_c_core() -> None:
    # CI must not silently test only the pure-Python fallback where the C core should exist.
    if not C_EXPECTED:
        pytest.skip("no C core for this Python")
    from replay.recorder import _ctracer  # noqa: PLC0415

    assert _ctracer.Tracer is not None
    assert csettrace.available() is None
    if sys.version_info >= (3, 12):
        assert csysmon.available() is None


@needs_c
def test_the_c_core_was_built_from_its_current_sources() -> None:
    # The extension is optional: when it fails to compile, `pip install -e .` succeeds and keeps
    # the module built before, so a tree whose C sources changed would test old code. In an
    # editable install the module sits next to its sources: none may be newer than it.
    from replay.recorder import _ctracer  # noqa: PLC0415

    module = Path(_ctracer.__file__)
    built = module.stat().st_mtime
    newer = [p.name for p in module.parent.glob("_*.[ch]") if p.stat().st_mtime > built]
    assert not newer, (
        f"{', '.join(newer)} changed after {module.name} was built: rebuild it (pip install -e ."
        " prints nothing when the optional C build fails; python setup.py build_ext --inplace"
        " shows the compiler's errors)"
    )


# -- core selection ------------------------------------------------------------------------


def test_replay_core_python_forces_the_python_core(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REPLAY_CORE", "python")
    backend, _why = choose_backend("auto")
    assert backend in ("sysmon", "settrace")
    assert choose_backend("settrace")[0] == "settrace"


@needs_c_sysmon
def test_the_c_core_is_the_default_for_sysmon(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("REPLAY_CORE", raising=False)
    assert choose_backend("auto")[0] == "c-sysmon"
    assert choose_backend("sysmon")[0] == "c-sysmon"
    monkeypatch.setenv("REPLAY_CORE", "c")
    assert choose_backend("sysmon")[0] == "c-sysmon"


@needs_c
def test_the_c_core_is_the_default_for_settrace(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("REPLAY_CORE", raising=False)
    assert choose_backend("settrace")[0] == "c-settrace"
    if sys.version_info < (3, 12):  # 3.11: settrace is the backend, so C settrace the core
        assert choose_backend("auto")[0] == "c-settrace"
    monkeypatch.setenv("REPLAY_CORE", "python")
    assert choose_backend("settrace")[0] == "settrace"


def test_the_names_of_the_c_cores_are_those_the_choice_gives() -> None:
    # backends.py names the C cores without importing them (the launcher of `-- COMMAND`)
    cores = {"sysmon": csysmon.CSysMonitoringCore.name, "settrace": csettrace.CSettraceCore.name}
    assert backends.C_CORES == cores


def test_replay_core_c_without_a_c_core_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REPLAY_CORE", "c")
    monkeypatch.setattr(backends, "_ctracer", None)
    monkeypatch.setattr(backends, "IMPORT_ERROR", "not compiled (this test)")
    with pytest.raises(ReplayError, match="REPLAY_CORE=c but the C core is not built"):
        choose_backend("settrace")


def test_replay_core_must_be_c_or_python(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REPLAY_CORE", "fast")
    with pytest.raises(UsageError, match="REPLAY_CORE"):
        choose_backend("auto")


# -- frame reading ---------------------------------------------------------------------------


def _cells(a: int, b: list[int]) -> int:
    total = a

    def inner(step: int) -> int:
        nonlocal total
        total += step + len(b)  # noqa: F821 (b is a cell, deleted below)
        return total

    inner(1)
    a = inner(2)
    del b
    return a + total


def _comprehensions(xs: list[int]) -> list[int]:
    x = "outer"
    squares = [x * x for x in xs]
    evens = {x for x in xs if x % 2 == 0}
    pairs = {x: [y for y in range(x)] for x in xs}
    lengths = [len(v) for v in pairs.values()]
    return [*squares, *evens, *lengths, len(x)]


def _exceptions() -> str:
    try:
        raise ValueError("boom")
    except ValueError as exc:
        message = str(exc)
    try:
        {}["k"]
    except KeyError:
        message += "!"
    return message


def _generator(n: int) -> Any:
    acc = []
    for i in range(n):
        got = yield i
        acc.append(got)
    return acc


def _drive() -> list[Any]:
    gen = _generator(3)
    out = [next(gen), gen.send("a"), gen.send("b")]
    try:
        gen.send("c")
    except StopIteration as stop:
        out.append(stop.value)
    return out


class _Base:
    def greet(self) -> str:
        return "base"


class _Child(_Base):
    def greet(self) -> str:
        word = super().greet()  # uses the __class__ cell
        return word.upper()


def _run_all() -> None:
    _cells(1, [1, 2])
    _comprehensions([1, 2, 3, 4])
    _exceptions()
    _drive()
    _Child().greet()


@needs_c
def test_fast_locals_and_lines_are_what_python_shows() -> None:
    from replay.recorder import _ctracer  # noqa: PLC0415

    ours = {
        f.__code__ for f in (_cells, _comprehensions, _exceptions, _generator, _drive, _Child.greet)
    }
    ours.update(c for c in _cells.__code__.co_consts if hasattr(c, "co_code"))  # inner
    checked: list[tuple[str, int]] = []
    mismatches: list[str] = []

    def check(code: Any, frame: Any) -> None:
        if code not in ours:
            return
        assert frame.f_code is code
        mine = _ctracer._fast_locals(frame)
        theirs = frame.f_locals
        # 3.12's f_locals is a dict in first-binding order (the core orders it itself); 3.13's
        # proxy iterates the slots in order, as the fast path does.
        if {name for name, _ in mine} != set(theirs) or any(
            theirs[name] is not value for name, value in mine
        ):
            mismatches.append(f"{code.co_name}:{frame.f_lineno} {mine} != {dict(theirs)}")
        if sys.version_info >= (3, 13) and [n for n, _ in mine] != list(theirs):
            mismatches.append(f"{code.co_name}:{frame.f_lineno} order {mine}")
        line = _ctracer._frame_line(frame)
        if line != frame.f_lineno:
            mismatches.append(f"{code.co_name}: line {line} != {frame.f_lineno}")
        checked.append((code.co_name, frame.f_lineno))

    if sys.version_info < (3, 12):  # no sys.monitoring: the same checks from a trace function

        def trace(frame: Any, event: str, arg: Any) -> Any:
            check(frame.f_code, frame)
            return trace

        sys.settrace(trace)
        try:
            _run_all()
        finally:
            sys.settrace(None)
        assert not mismatches, "\n".join(mismatches[:10])
        assert {name for name, _ in checked} >= {"_cells", "inner", "_comprehensions", "greet"}
        return

    def on_line(code: Any, line: int) -> Any:
        check(code, sys._getframe(1))

    def on_event(code: Any, offset: int, *rest: Any) -> Any:
        check(code, sys._getframe(1))

    mon = sys.monitoring
    ev = mon.events
    tool = next(t for t in (3, 4, 2, 0, 5) if mon.get_tool(t) is None)
    mon.use_tool_id(tool, "replay-test")
    try:
        mon.register_callback(tool, ev.LINE, on_line)
        for event in (ev.PY_START, ev.PY_RETURN, ev.PY_YIELD, ev.PY_RESUME, ev.RAISE):
            mon.register_callback(tool, event, on_event)
        mon.set_events(
            tool, ev.LINE | ev.PY_START | ev.PY_RETURN | ev.PY_YIELD | ev.PY_RESUME | ev.RAISE
        )
        _run_all()
    finally:
        mon.set_events(tool, 0)
        for event in (ev.LINE, ev.PY_START, ev.PY_RETURN, ev.PY_YIELD, ev.PY_RESUME, ev.RAISE):
            mon.register_callback(tool, event, None)
        mon.free_tool_id(tool)
    assert not mismatches, "\n".join(mismatches[:10])
    assert len(checked) > 50
    assert {name for name, _ in checked} >= {"_cells", "inner", "_comprehensions", "greet"}


# -- memory ------------------------------------------------------------------------------------

LEAK_PROGRAM = textwrap.dedent(
    """
    import gc, sys
    from replay.recorder.csettrace import CSettraceCore
    from replay.recorder.csysmon import CSysMonitoringCore
    from replay.recorder.snapshot import SnapshotEncoder
    from replay.recorder.scope import Scope
    from replay.recorder.state import RecordingState
    import work

    class StubEncoder(SnapshotEncoder):
        # The real encoder's identity map grows by design (it remembers objects that cannot be
        # weakly referenced): a stub keeps this test about the C core's own references.
        def encode_named(self, name, value):
            return (9, 0, "stub", name)

        def encode_exception(self, exc):
            return ("stub", "", None)

    encoder = StubEncoder()
    state = RecordingState(Scope(sys.argv[1]), encoder.encode_named)
    state.max_pending = 0
    state.on_backlog = state.handoff.clear  # no writer: every handed-off list is dropped
    core_class = CSysMonitoringCore if sys.argv[2] == "sysmon" else CSettraceCore
    core = core_class(state, encoder.encode_exception)
    core.start()
    blocks = []
    for _ in range(32):
        work.run(3000)
        state.handoff.clear()
        for ts in state.threads:
            del ts.events[:]
        gc.collect()
        blocks.append(sys.getallocatedblocks())
    core.stop()
    print(" ".join(map(str, blocks)))
    """
)

LEAK_WORK = textwrap.dedent(
    """
    class Node:
        def __init__(self, value):
            self.value = value
            self.children = []

    def gen(n):
        for i in range(n):
            yield {"i": i, "s": str(i) * 3}

    def step(i):
        node = Node(i)
        node.children.append(Node(i + 1))
        text = "x" * (i % 50)
        big = 10 ** 30 + i
        try:
            if i % 7 == 0:
                raise ValueError(i)
        except ValueError as exc:
            text = str(exc)
        total = sum(d["i"] for d in gen(3))
        return node, text, big, total

    def run(n):
        out = None
        for i in range(n):
            out = step(i)
        return out
    """
)


C_BACKENDS = [
    pytest.param("sysmon", marks=needs_c_sysmon),
    pytest.param("settrace", marks=needs_c),
]


@pytest.mark.parametrize("backend", C_BACKENDS)
def test_the_c_core_does_not_leak_with_steps(tmp_path: Path, backend: str) -> None:
    # Allocated blocks after each round, once the event lists are dropped: a reference leaked
    # per event or per call would grow them by thousands per round.
    (tmp_path / "work.py").write_text(LEAK_WORK)
    (tmp_path / "leak.py").write_text(LEAK_PROGRAM)
    done = subprocess.run(
        [sys.executable, str(tmp_path / "leak.py"), str(tmp_path), backend],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    blocks = [int(b) for b in done.stdout.split()]
    # The first rounds fill the core's bounded caches (the value cache of _fingerprint.c holds
    # up to 4,096 objects' last encodings, in slots chosen by address, so the last free ones
    # take many rounds to meet): only the last rounds are compared. How many rounds that takes
    # depends on where the allocator puts objects: with the event buffer (no tuple per event
    # between the values) the last 3 of 16 rounds still grew by 130 to 580 blocks on 3.11, the
    # last 3 of 32 by 20 to 92 (a leak per event would be thousands per round).
    growth = blocks[-1] - blocks[-4]
    assert growth < 500, blocks  # ~60,000 events per round


# -- an encoder the C core does not know ---------------------------------------------------------

GENERIC_WORK = textwrap.dedent(
    """
    class Box:
        def __init__(self, items):
            self.items = items

    def fill(n):
        box = Box([])
        secret_key = "k" * 3
        big = 10 ** 50
        for i in range(n):
            box.items.append(i)
            text = str(i) * 700
        return box, secret_key, big, text
    """
)


def _record_in_process(core_class: Any, tmp_path: Path, wrap: bool) -> list[tuple]:
    from replay.recorder.identity import IdentityMap  # noqa: PLC0415
    from replay.recorder.redaction import Redactor  # noqa: PLC0415
    from replay.recorder.scope import Scope  # noqa: PLC0415
    from replay.recorder.snapshot import CaptureLimits, SnapshotEncoder  # noqa: PLC0415
    from replay.recorder.state import RecordingState  # noqa: PLC0415

    namespace: dict[str, Any] = {}
    source = tmp_path / "generic_work.py"
    exec(compile(GENERIC_WORK, str(source), "exec"), namespace)
    encoder = SnapshotEncoder(CaptureLimits(max_string=1000), Redactor(), IdentityMap())
    state = RecordingState(Scope(str(tmp_path)), encoder.encode_named)
    state.is_secret = encoder.redactor.is_secret

    def unknown(exc: BaseException) -> Any:  # hides the encoder behind a plain function
        return encoder.encode_exception(exc)

    core = core_class(state, unknown if wrap else encoder.encode_exception)
    core.start()
    try:
        namespace["fill"](5)
    finally:
        core.stop()
    events = [event for _tid, batch in state.handoff for event in batch]
    events += [event for ts in state.threads for event in ts.events]
    return [(*event[:2], *event[3:]) for event in events]


@pytest.mark.parametrize("backend", C_BACKENDS)
@pytest.mark.parametrize("wrap", [False, True], ids=["snapshot-encoder", "unknown-encoder"])
def test_in_process_parity_with_any_encoder(tmp_path: Path, wrap: bool, backend: str) -> None:
    # With an encoder it cannot see through (wrap), the C core sends every value to
    # state.encode_named: slower, same events.
    from replay.recorder.settrace import SettraceCore  # noqa: PLC0415

    if backend == "sysmon":
        from replay.recorder.sysmon import SysMonitoringCore  # noqa: PLC0415

        python_core, c_core = SysMonitoringCore, csysmon.CSysMonitoringCore
    else:
        python_core, c_core = SettraceCore, csettrace.CSettraceCore
    (tmp_path / "generic_work.py").write_text(GENERIC_WORK)
    expected = _record_in_process(python_core, tmp_path, wrap)
    got = _record_in_process(c_core, tmp_path, wrap)
    assert len(expected) > 20
    assert repr(got) == repr(expected)
