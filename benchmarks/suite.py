"""The workloads: which programs the suite runs, at which sizes, and how each is started.

A workload is either a script in `workloads/` (run as `python SCRIPT SIZE`, with the current
directory set to `workloads/` so the script is in replay's default scope) or a module run with
`python -m` in a directory of its own (the real test suite). Sizes are chosen so that the full
mode runs about 0.5-1 s untraced on Python 3.12 on the reference machine and --quick about a
tenth of that; `tiny` is what the sanity tests use.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from benchmarks import CACHE_DIR, WORKLOADS_DIR

TEST_SUITE_LIBRARY = "more-itertools"
"""The pure-Python library whose own test suite is a workload; pinned in pyproject's `bench`."""


@dataclass(frozen=True)
class Target:
    """What a tracer wraps: a script with its arguments, or a module run with -m."""

    args: tuple[str, ...]
    """Arguments after the script or module name."""
    script: Path | None = None
    module: str | None = None

    def python_args(self) -> list[str]:
        """The arguments after `python`, as an untraced run gives them."""
        if self.script is not None:
            return [str(self.script), *self.args]
        return ["-m", str(self.module), *self.args]


@dataclass(frozen=True)
class Workload:
    """One program the suite measures."""

    name: str
    description: str
    full: tuple[str, ...]
    """Arguments in the full mode (for a script: its size)."""
    quick: tuple[str, ...] | None
    """Arguments in --quick, or None when --quick leaves the workload out."""
    tiny: tuple[str, ...]
    """Arguments for the sanity tests: seconds at most, whatever the tracer."""
    script: str | None = None
    """File name in workloads/; None for a module workload."""
    module: str | None = None
    cpu_bound: bool = True
    """Counted in the geometric-mean row."""
    snoop: bool = False
    """PySnooper runs on this one (it is too slow for the others)."""
    requests: bool = False
    """A request handler: `replay record --keep failed` applies."""
    notes: tuple[str, ...] = field(default=())
    """Shown under the results table."""

    def args(self, quick: bool) -> tuple[str, ...]:
        """The arguments for this mode."""
        if quick and self.quick is not None:
            return self.quick
        return self.full

    def target(self, args: tuple[str, ...]) -> Target:
        """The target for a tracer to wrap."""
        if self.script is not None:
            return Target(args=args, script=WORKLOADS_DIR / self.script)
        return Target(args=args, module=self.module)

    def cwd(self) -> Path:
        """The directory the workload runs in: its files are in replay's default scope."""
        if self.script is not None:
            return WORKLOADS_DIR
        return test_suite_dir()


def test_suite_dir() -> Path:
    """Where the library's tests are extracted (by environments.fetch_test_suite)."""
    return CACHE_DIR / f"{TEST_SUITE_LIBRARY}-tests"


PYTEST_ARGS = ("-x", "-q", "-p", "no:cacheprovider")

WORKLOADS: tuple[Workload, ...] = (
    Workload(
        name="startup",
        description="a program that does nothing: each tracer's fixed cost per process",
        script="startup.py",
        full=("10",),
        quick=("10",),
        tiny=("10",),
        cpu_bound=False,
        notes=(
            "startup: the wall ratio is the fixed cost (start-up, exit, output) over a bare "
            "interpreter's ~20 ms (absolute seconds in results.json); its in-process time is a "
            "few microseconds, so its in-process ratio means little.",
        ),
    ),
    Workload(
        name="richards",
        description="object-heavy task scheduler (pyperformance bm_richards)",
        script="richards.py",
        full=("20",),
        quick=("1",),
        tiny=("1",),
    ),
    Workload(
        name="deltablue",
        description="object-heavy constraint solver (pyperformance bm_deltablue)",
        script="deltablue.py",
        full=("300",),
        quick=None,
        tiny=("2",),
    ),
    Workload(
        name="nbody",
        description="float math, few objects (pyperformance bm_nbody)",
        script="nbody.py",
        full=("200000",),
        quick=("20000",),
        tiny=("200",),
    ),
    Workload(
        name="raytrace",
        description="float math on small objects (pyperformance bm_raytrace)",
        script="raytrace.py",
        full=("160",),
        quick=None,
        tiny=("8",),
    ),
    Workload(
        name="go",
        description="game-tree search, objects and lists (pyperformance bm_go)",
        script="go.py",
        full=("6",),
        quick=None,
        tiny=("1",),
        notes=("go's tiny size is one full move: about 0.1 s untraced.",),
    ),
    Workload(
        name="generators",
        description="generator pipeline + asyncio.gather of many small coroutines",
        script="generators.py",
        full=("500",),
        quick=("25",),
        tiny=("2",),
    ),
    Workload(
        name="recursion",
        description="naive fib, binary trees, recursive permutations",
        script="recursion.py",
        full=("300",),
        quick=None,
        tiny=("1",),
    ),
    Workload(
        name="strings",
        description="hand-written tokenizer, word counts, formatting",
        script="strings.py",
        full=("1500",),
        quick=None,
        tiny=("2",),
    ),
    Workload(
        name="json_requests",
        description="JSON request handler: parse, route, validate, compute, dump",
        script="json_requests.py",
        full=("40000",),
        quick=("3000",),
        tiny=("100",),
        requests=True,
    ),
    Workload(
        name="orders",
        description="business objects: slotted dataclasses, Decimal, datetime, namedtuple, Enum",
        script="orders.py",
        full=("4000",),
        quick=("400",),
        tiny=("5",),
    ),
    Workload(
        name="library_hot_loop",
        description="out of scope: the hot loop runs in a library (target <= 1.1x)",
        script="library_hot_loop.py",
        full=("60",),
        quick=("4",),
        tiny=("1",),
        cpu_bound=False,
        notes=(
            "library_hot_loop: the hot loop is in benchmarks/library/ (outside the current "
            "directory, so out of replay's scope) and the standard library; the user's code is "
            "a few lines.",
        ),
    ),
    Workload(
        name="snoop_small",
        description="recursion, small, so that PySnooper-style line tracing finishes",
        script="recursion.py",
        full=("4",),
        quick=("1",),
        tiny=("1",),
        cpu_bound=False,
        snoop=True,
        notes=(
            "snoop_small: the recursion workload at a small size, the one workload PySnooper "
            "runs on (it costs about 1000x); not in the geometric mean.",
        ),
    ),
    Workload(
        name="test_suite",
        description=f"{TEST_SUITE_LIBRARY}'s own tests under pytest",
        module="pytest",
        full=(*PYTEST_ARGS, "tests", "-k", "not Prime and not concurrent and not bounded_memory"),
        quick=(
            *PYTEST_ARGS,
            "tests/test_recipes.py",
            "-k",
            "not Prime and not Polynomial and not RunningMedian",
        ),
        tiny=(*PYTEST_ARGS, "tests/test_recipes.py", "-k", "Flatten or Pairwise"),
        cpu_bound=False,
        notes=(
            f"test_suite: {TEST_SUITE_LIBRARY} (pinned in pyproject's `bench` group) is installed "
            "in the benchmark venv's site-packages, so the library's code is out of replay's "
            "scope; its tests (extracted from the sdist into the current directory) are in scope. "
            "replay runs it as `replay record -- python -m pytest ...`. Deselected: the prime "
            "sieve stress tests (10+ s alone), the thread-timing tests, and "
            "SeekableTest.test_repeated_zero_cache_peek_has_bounded_memory, which asserts "
            "tracemalloc's count of retained memory and fails under replay (the recorder's "
            "buffered events are Python allocations too: 4.2 MB against a 256 KiB bound); "
            "--quick runs the "
            "quicker part of tests/test_recipes.py. The in-process time is pytest's own "
            "(`in X s`: collection and tests, no interpreter start-up).",
        ),
    ),
)


def select(names: list[str] | None, quick: bool) -> list[Workload]:
    """The workloads to run: the named ones (any mode), else all of this mode."""
    if names:
        known = {w.name: w for w in WORKLOADS}
        unknown = [n for n in names if n not in known]
        if unknown:
            raise ValueError(f"unknown workload(s) {', '.join(unknown)}; known: {', '.join(known)}")
        return [known[n] for n in names]
    return [w for w in WORKLOADS if not quick or w.quick is not None]
