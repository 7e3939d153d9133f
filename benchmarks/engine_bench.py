"""The engine's speed and memory on a recording of 10 million steps (issue 3's figures).

    python benchmarks/engine_bench.py            # 10M steps (recorded once, ~1.5 min)
    python benchmarks/engine_bench.py --quick    # 1M steps
    python benchmarks/engine_bench.py --json out.json

How the recording is made: WORKLOAD below (a deterministic loop over a small function, no
randomness, no I/O) is written to benchmarks/.cache/engine/ and recorded there by the real
recorder, `python -m replay record --store ... workload.py ROUNDS`, with that directory as the
working directory (so the workload is the recorded scope). Its step count is linear in ROUNDS:
a 1000-round calibration recording gives the steps per round on this Python, ROUNDS is chosen
for the target, and the store is kept in the cache (named after the Python version, the target
and the workload's hash), so it is made once.

What is measured (medians over random positions, seeded; wall time, and this process's CPU
time, which is what counts on a machine shared with other work): opening and standing at the first
step; a step and a reverse-step (with and without reading the stack's locals); goto to a random
step (with the stack's locals); continue / reverse-continue to a breakpoint half the recording
away (a line reached once, and a conditional breakpoint on a hot line); the value history of a
variable of the frame that lives through the whole recording; the peak resident memory. The
engine's index (checkpoints, summaries) is built on first need and saved in the store: its
one-time cost is reported separately ("index build"), the other figures use the saved index.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from replay.storage import Store

from replay.engine import Engine

HERE = Path(__file__).resolve().parent
CACHE = HERE / ".cache" / "engine"
SEED = 3

WORKLOAD = '''\
"""The engine benchmark's workload: deterministic, loop-heavy, steps linear in ROUNDS."""
import sys


class Order:
    def __init__(self, n):
        self.n = n
        self.total = 0


def work(order, k):
    acc = 0
    for j in range(k):
        acc += j * order.n
    order.total += acc
    return acc


def main(rounds):
    grand = 0
    marker = 0
    order = Order(3)
    for i in range(rounds):
        grand += work(order, 8)
        if i == rounds // 2:
            marker = i
    return grand, marker


main(int(sys.argv[1]))
'''
HOT_LINE = "grand += work(order, 8)"
ONCE_LINE = "marker = i"


def line_of(text: str) -> int:
    return next(n for n, line in enumerate(WORKLOAD.splitlines(), 1) if text in line)


# -- making the recording ------------------------------------------------------------------


def record(store: Path, rounds: int) -> None:
    workload = CACHE / "workload.py"
    workload.write_text(WORKLOAD)
    for suffix in ("", "-wal", "-shm"):
        Path(f"{store}{suffix}").unlink(missing_ok=True)
    subprocess.run(
        [sys.executable, "-m", "replay", "record", "--store", str(store), "workload.py",
         str(rounds)],
        cwd=CACHE,
        check=True,
    )  # fmt: skip


def steps_of(store: Path) -> int:
    with Store.open(store) as s:
        rec = s.latest_recording_id()
        assert rec is not None
        return s.step_count(rec)


def recording_for(target: int) -> tuple[Path, int]:
    """The cached store holding a recording of about `target` steps, made if missing."""
    CACHE.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256(WORKLOAD.encode()).hexdigest()[:10]
    version = f"py{sys.version_info.major}{sys.version_info.minor}"
    store = CACHE / f"engine-{version}-{target}-{digest}.db"
    if store.exists():
        with Store.open(store) as s:
            rec = s.latest_recording_id()
            if rec is not None and s.recording(rec)["status"] == "ok":
                return store, s.recording(rec)["steps"]
    calibration = CACHE / f"calibration-{version}-{digest}.db"
    record(calibration, 1000)
    per_round = (steps_of(calibration) - 28) / 1000
    rounds = max(1, round((target - 28) / per_round))
    print(f"recording {target:,} steps ({rounds:,} rounds) into {store} ...", flush=True)
    started = time.perf_counter()
    record(store, rounds)
    print(f"  recorded in {time.perf_counter() - started:.1f} s", flush=True)
    return store, steps_of(store)


# -- measuring -----------------------------------------------------------------------------


Sample = tuple[float, float]
"""(wall seconds, CPU seconds of this process): on a shared machine the second shows the
engine's own cost when other processes compete for the CPUs."""


def timed(fn: Callable[[], Any]) -> Sample:
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - wall, time.process_time() - cpu


def put(results: dict[str, Any], key: str, samples: list[Sample] | Sample, unit: float) -> None:
    """results[key] (wall) and results[key + '_cpu'], medians when there are many samples."""
    many = samples if isinstance(samples, list) else [samples]
    digits = 3 if unit == 1000 else 4
    results[key] = round(statistics.median(w for w, _ in many) * unit, digits)
    results[key + "_cpu"] = round(statistics.median(c for _, c in many) * unit, digits)


def measure(store: Path, steps: int, samples: int) -> dict[str, Any]:
    rng = random.Random(SEED)
    results: dict[str, Any] = {"steps": steps, "store_mb": round(store.stat().st_size / 2**20, 1)}

    # The index, once: built from the chunks, then saved in the store for every later opening.
    with Engine.open(store, stored_index=False) as engine:
        results["chunks"] = sum(len(engine.stream(t)) for t in engine.thread_ids)
        put(results, "index_build_s", timed(engine.build_index), 1)
    with Engine.open(store) as engine:
        if not all(engine.index(t).from_store for t in engine.thread_ids):
            engine.build_index()  # saves it

    def open_and_stand() -> None:
        with Engine.open(store) as engine:
            engine.stack()

    put(results, "open_first_step_ms", [timed(open_and_stand) for _ in range(5)], 1000)
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "replay", "debug", "--store", str(store), "-c", "bt"],
        check=True,
        capture_output=True,
    )
    results["debug_cli_open_bt_quit_s"] = round(time.perf_counter() - started, 3)

    with Engine.open(store) as engine:
        first, last = engine.first_step, engine.last_step
        positions = [rng.randint(first + 1, last - 1) for _ in range(samples)]

        step, rstep, step_locals, rstep_locals, goto, goto_locals = [], [], [], [], [], []
        for pos in positions:
            engine.goto(pos)
            step.append(timed(lambda: (engine.step(), engine.cursor.function)))
            rstep.append(timed(lambda: (engine.reverse_step(), engine.cursor.function)))
            step_locals.append(timed(lambda: (engine.step(), engine.stack())))
            rstep_locals.append(timed(lambda: (engine.reverse_step(), engine.stack())))
        # gotos to positions not visited before (the chunk cache does not hold them)
        for _ in range(samples):
            pos = rng.randint(first, last)
            goto.append(timed(lambda pos=pos: (engine.goto(pos), engine.cursor.function)))
        for _ in range(samples):
            pos = rng.randint(first, last)
            goto_locals.append(timed(lambda pos=pos: (engine.goto(pos), engine.stack())))
        put(results, "step_ms", step, 1000)
        put(results, "reverse_step_ms", rstep, 1000)
        put(results, "step_with_locals_ms", step_locals, 1000)
        put(results, "reverse_step_with_locals_ms", rstep_locals, 1000)
        put(results, "goto_ms", goto, 1000)
        put(results, "goto_with_locals_ms", goto_locals, 1000)
        put(results, "goto_max_ms", max(goto_locals), 1000)

        # Breakpoints half the recording away, from either end.
        engine.breakpoints.add(f"workload.py:{line_of(ONCE_LINE)}")
        engine.goto(first)
        put(results, "continue_line_s", timed(engine.continue_), 1)
        middle = engine.cursor.step
        engine.goto(last)
        put(results, "reverse_continue_line_s", timed(engine.reverse_continue), 1)
        assert engine.cursor.step == middle
        results["breakpoint_distance_steps"] = middle - first
        engine.breakpoints.clear()
        engine.goto(middle)
        total = int(engine.evaluate("order.total"))
        engine.breakpoints.add("work", f"order.total == {total}")  # the call after `middle`
        engine.goto(first)
        put(results, "continue_conditional_function_s", timed(engine.continue_), 1)
        assert engine.cursor.step > middle
        engine.goto(last)
        put(results, "reverse_continue_conditional_function_s", timed(engine.reverse_continue), 1)
        engine.breakpoints.clear()
        engine.goto(middle)
        target_i = int(engine.evaluate("i"))
        engine.breakpoints.add(f"workload.py:{line_of(HOT_LINE)}", f"i == {target_i}")
        engine.goto(first)
        put(results, "continue_conditional_hot_line_s", timed(engine.continue_), 1)
        engine.goto(last)
        put(results, "reverse_continue_conditional_hot_line_s", timed(engine.reverse_continue), 1)
        engine.breakpoints.clear()

        # Value history of main()'s variables (main lives through the whole recording).
        engine.goto(middle)
        if engine.cursor.function != "main":
            engine.finish()
        # Streamed (iter_history), as `replay debug` reads it: memory stays bounded.
        counts: dict[str, int] = {}

        def count(name: str) -> None:
            counts[name] = sum(1 for _ in engine.iter_history(name))

        put(results, "history_hot_var_s", timed(lambda: count("grand")), 1)
        results["history_hot_var_changes"] = counts["grand"]
        put(results, "history_rare_var_s", timed(lambda: count("marker")), 1)
        results["history_rare_var_changes"] = counts["marker"]
        put(results, "history_as_list_s", timed(lambda: engine.history("grand")), 1)
        put(results, "origin_s", timed(lambda: engine.origin("grand")), 1)
    results["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    return results


TARGETS = [
    ("open_first_step_ms", "open + stand at the first step (ms)", 1000),
    ("step_ms", "step, median (ms)", 5),
    ("reverse_step_ms", "reverse-step, median (ms)", 5),
    ("step_with_locals_ms", "step + stack with locals, median (ms)", None),
    ("reverse_step_with_locals_ms", "reverse-step + stack with locals, median (ms)", None),
    ("goto_ms", "goto random step, median (ms)", 50),
    ("goto_with_locals_ms", "goto random step + stack with locals, median (ms)", 50),
    ("goto_max_ms", "goto random step + stack, worst (ms)", None),
    ("continue_line_s", "continue to a line hit once, half-way (s)", 3),
    ("reverse_continue_line_s", "reverse-continue to it from the end (s)", 3),
    ("continue_conditional_hot_line_s", "continue, `if i == N` on the hottest line (s)", 3),
    ("reverse_continue_conditional_hot_line_s", "reverse-continue, same (s)", 3),
    ("continue_conditional_function_s", "continue, `work if order.total == N` (s)", 3),
    ("reverse_continue_conditional_function_s", "reverse-continue, same (s)", 3),
    ("history_hot_var_s", "history of main's `grand` (changes every round) (s)", 2),
    ("history_rare_var_s", "history of main's `marker` (s)", 2),
    ("history_as_list_s", "history of `grand` as a list (s)", None),
    ("origin_s", "origin of `grand` (s)", None),
    ("index_build_s", "index build, once per recording (s)", None),
    ("debug_cli_open_bt_quit_s", "`replay debug -c bt` wall time, new process (s)", None),
    ("peak_rss_mb", "peak RSS of this process (MB)", 300),
]


def report(results: dict[str, Any]) -> None:
    print(
        f"\nrecording: {results['steps']:,} steps, {results['chunks']:,} chunks, "
        f"{results['store_mb']} MB; breakpoint {results['breakpoint_distance_steps']:,} steps "
        f"away; history: {results['history_hot_var_changes']:,} changes; load average "
        f"{results['load_before']} before, {results['load_after']} after ({results['cpus']} CPUs)\n"
    )
    print(f"{'measure':<56}{'wall':>10}{'cpu':>10}  {'target':>8}")
    for key, label, target in TARGETS:
        value = results[key]
        cpu = results.get(key + "_cpu", "")
        verdict = "" if target is None else ("ok" if value < target else "OVER")
        shown = "" if target is None else f"< {target}"
        print(f"{label:<56}{value:>10}{cpu:>10}  {shown:>8}  {verdict}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1M steps instead of 10M")
    parser.add_argument("--steps", type=int, help="target step count")
    parser.add_argument("--samples", type=int, default=200, help="random positions")
    parser.add_argument("--json", metavar="FILE", help="also write the results here")
    args = parser.parse_args()
    target = args.steps or (1_000_000 if args.quick else 10_000_000)
    store, steps = recording_for(target)
    load_before = round(os.getloadavg()[0], 2)
    results = measure(store, steps, args.samples)
    results["load_before"] = load_before
    results["load_after"] = round(os.getloadavg()[0], 2)
    results["python"] = sys.version.split()[0]
    results["cpus"] = os.cpu_count()
    report(results)
    print("\n" + json.dumps(results, indent=1))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
