"""The cases the engine must get right, spelled out: recursion, generators and coroutines,
exceptions unwinding several frames, threads."""

from __future__ import annotations

import pytest
from test_engine_breakpoints import line_of

from replay.engine import UNBOUND, Engine, EngineError
from replay.values import plain


def functions(engine: Engine) -> list[str]:
    return [f.function for f in engine.stack()]


def test_recursion_stack_and_finish(recordings):
    with Engine.open(recordings[("recursion", "small")]) as engine:
        engine.breakpoints.add("fib", "n == 0")
        assert functions(engine) == ["<module>"]
        engine.continue_()  # fib(0), called by main
        assert functions(engine) == ["fib", "main", "<module>"]
        stop = engine.continue_()
        assert stop.reason == "breakpoint"
        stack = engine.stack()
        fibs = [f for f in stack if f.function == "fib"]
        # fib(2) -> fib(1) returns, then fib(0): the innermost fib frames count down to 0
        assert [plain(f.locals["n"]) for f in fibs] == [0, 2]
        assert [plain(f.args["n"]) for f in fibs] == [0, 2]
        assert functions(engine)[-2:] == ["main", "<module>"]
        stop = engine.finish()
        assert engine.cursor.kind == "return"
        assert plain(engine.cursor.outcome.value) == 0
        engine.finish()  # at a return: finish the caller, fib(2)
        assert engine.cursor.kind == "return"
        assert plain(engine.cursor.outcome.value) == 1
        assert plain(engine.locals()["a"]) == 1 and plain(engine.locals()["b"]) == 0
        engine.reverse_finish()  # to fib(2)'s CALL
        assert engine.cursor.kind == "call" and plain(engine.locals()["n"]) == 2


def test_mutual_recursion_history(recordings):
    with Engine.open(recordings[("recursion", "default")]) as engine:
        engine.breakpoints.add("recursion.py:" + str(line_of("recursion", "del paid")))
        engine.continue_()
        results = engine.history("results")
        assert plain(results[0].new) == []
        assert len(results) == 15  # bound once, then appended to 14 times (seen as changes)
        assert plain(results[-1].new) == [0, 1, 1, 2, 3, 5, 8, 13, 0, 1, 1, 2, 3, 5]
        origin = engine.origin("order")
        assert origin.line == line_of("recursion", "paid = checkout(order)")  # order.total set
        assert engine.evaluate("order.items[4].price") == 12
        assert engine.evaluate("len(order.items) == 5 and order.total == 30") is True
        assert engine.evaluate('"abc" in name') is True
        assert engine.evaluate("paid") == 30
        engine.next()
        with pytest.raises(EngineError, match="'paid' is not bound"):
            engine.evaluate("paid")
        assert engine.history("paid")[-1].new is UNBOUND


def test_generator_locals_persist_across_yield(recordings):
    with Engine.open(recordings[("generators", "small")]) as engine:
        engine.breakpoints.add("generators.py:" + str(line_of("generators", "if got:")))
        seen = []
        while engine.continue_().reason == "breakpoint":
            frame = engine.frame()
            if frame.function == "counter":
                seen.append((plain(frame.locals["i"]), plain(frame.locals["total"])))
                assert functions(engine)[1] in ("main", "relay")  # resumed by its consumer
        assert seen[:4] == [(0, 0), (1, 4), (2, 6), (0, 0)]  # counter(6), then relay(4)
        # a resumed generator: reverse-finish goes to its RESUME, then to the resumer's start
        engine.goto(engine.first_step)
        engine.continue_()
        engine.continue_()
        engine.reverse_finish()
        assert engine.cursor.kind == "resume"
        assert "total" in engine.locals()  # the locals from before the yield are still there
        engine.reverse_finish()
        assert (engine.cursor.kind, engine.cursor.function) == ("call", "main")


def test_generator_close_and_throw(recordings):
    with Engine.open(recordings[("generators", "default")]) as engine:
        engine.breakpoints.add("exception GeneratorExit")
        if engine.continue_().reason == "breakpoint":
            # gen.close(): sys.monitoring reports a THROW into the frame, settrace a resume.
            # (Python 3.13 closes a generator paused outside any try block without running
            # it, so there is nothing to stop at.)
            assert engine.cursor.function == "counter"
            engine.reverse_step()
            assert engine.cursor.kind in ("throw", "resume")
        engine.breakpoints.clear()
        engine.breakpoints.add("exception KeyError")
        engine.goto(engine.first_step)
        hits = 0
        while engine.continue_().reason == "breakpoint":
            hits += 1
            assert engine.cursor.function == "catcher"
        assert hits == 3


def test_coroutines(recordings):
    with Engine.open(recordings[("generators", "small")]) as engine:
        engine.breakpoints.add("generators.py:" + str(line_of("generators", "value = key * 2")))
        keys = []
        while engine.continue_().reason == "breakpoint":
            keys.append(plain(engine.locals()["key"]))
        assert sorted(keys) == [1, 2, 3, 10, 20]
        engine.breakpoints.clear()
        engine.breakpoints.add("fetch", "key == 2")
        engine.goto(engine.first_step)
        engine.continue_()
        assert functions(engine)[:3] == ["fetch", "gather_all", "main"]
        call = engine.cursor.call_id
        engine.finish()  # the first await suspends it: finish stops at that yield
        assert (engine.cursor.kind, engine.cursor.call_id) == ("yield", call)
        engine.finish()  # at a yield: finish the caller, which awaits, so yields too
        assert (engine.cursor.kind, engine.cursor.function) == ("yield", "gather_all")
        engine.goto_call(call, end=True)
        assert engine.cursor.kind == "return" and plain(engine.cursor.outcome.value) == 4
        engine.reverse_finish()  # back to the resume that started its last run
        assert (engine.cursor.kind, engine.cursor.call_id) == ("resume", call)


def test_exceptions_unwinding_several_frames(recordings):
    with Engine.open(recordings[("exceptions", "small")]) as engine:
        stop = engine.goto_exception()  # the uncaught one: deep(3) -> ... -> deep(0)
        assert stop.reason == "exception" and "KeyError" in stop.message
        assert functions(engine) == ["deep"] * 4 + ["<module>"]
        assert [plain(f.locals["n"]) for f in engine.stack()[:4]] == [0, 1, 2, 3]
        engine.finish()
        assert engine.cursor.kind == "unwind"
        assert engine.cursor.outcome.exc_type == "KeyError"
        first = engine.goto_exception(1)
        assert "OrderError" in first.message
        assert functions(engine)[:4] == ["validate", "price", "checkout", "safe"]
        assert [e["type"] for e in engine.exceptions()].count("__main__.OrderError") == 2
        # the caught one unwinds validate, price and checkout, and is handled in safe
        engine.breakpoints.add("exceptions.py:" + str(line_of("exceptions", "result = str(exc)")))
        engine.continue_()
        assert functions(engine)[0] == "safe"
        assert plain(engine.locals()["items"]) == []
        with pytest.raises(EngineError, match="no exception 99"):
            engine.goto_exception(99)


def test_threads(recordings):
    with Engine.open(recordings[("threads", "small")]) as engine:
        assert len(engine.thread_ids) == 4
        engine.breakpoints.add("work", "tag == 3")
        stop = engine.continue_()
        thread = stop.thread
        assert thread != 1 and plain(engine.locals()["tag"]) == 3
        # stepping stays in the thread, whatever the other threads do meanwhile
        for _ in range(200):
            engine.next()
            assert engine.thread_id == thread
        # another thread, as it was at this step
        now = engine.cursor.step
        engine.select_thread(1)
        assert engine.cursor.step <= now
        engine.select_thread(thread)
        assert engine.cursor.step <= now
        with pytest.raises(EngineError, match="no thread 99"):
            engine.select_thread(99)


def test_goto_limits_and_calls(recordings):
    with Engine.open(recordings[("recursion", "small")]) as engine:
        with pytest.raises(EngineError, match="outside the recording"):
            engine.goto(engine.last_step + 1)
        engine.breakpoints.add("checkout")
        engine.continue_()
        call = engine.cursor.call_id
        engine.goto_call(call, end=True)
        assert engine.cursor.kind == "return" and plain(engine.cursor.outcome.value) == 30
        engine.goto_call(call)
        assert engine.cursor.kind == "call" and engine.cursor.call_id == call
        with pytest.raises(EngineError, match="no call"):
            engine.goto_call(10**9)
        engine.goto(engine.first_step)  # the module's CALL: nothing called it
        with pytest.raises(EngineError, match="outermost"):
            engine.reverse_finish()
        engine.finish()  # to the module's return, where again there is no caller to finish
        assert (engine.cursor.kind, engine.cursor.step) == ("return", engine.last_step)
        with pytest.raises(EngineError, match="outermost"):
            engine.finish()


def test_call_outcome_ahead_of_the_cursor(recordings):
    with Engine.open(recordings[("exceptions", "small")]) as engine:
        engine.breakpoints.add("validate")
        engine.continue_()  # validate(3): returns 3
        assert plain(engine.call_outcome().value) == 3
        engine.continue_()  # validate(0): raises
        outcome = engine.call_outcome()
        assert (outcome.kind, outcome.exc_type) == ("unwind", "__main__.OrderError")
        assert engine.call_outcome(level=1).kind == "unwind"  # price() lets it through
        assert engine.call_outcome(level=3).kind == "return"  # safe() catches it
