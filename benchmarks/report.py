"""results.json -> results.md: the ratio tables, the geometric means and replay's store figures.

A pure function of the results document (render_markdown), so it is unit-tested against a fixed
JSON (tests/benchmarks/test_workloads.py) and can re-render an old results.json:
`python -m benchmarks.report results.json > results.md`.

In the tables, "n/a" is a column that failed or could not run on that workload (the reason is in
the notes), and "-" a column that does not apply to it (PySnooper outside its one workload,
`--keep failed` outside the request workload).
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Iterable
from typing import Any

Cell = dict[str, Any]

NOT_APPLICABLE = "-"
FAILED = "n/a"


def add_ratios(results: dict[str, Any]) -> None:
    """Set each cell's `ratio` (wall) and `inner_ratio` against the untraced cell beside it."""
    base = {(c["python"], c["workload"]): c for c in results["cells"] if c["tracer"] == "untraced"}
    for cell in results["cells"]:
        untraced = base.get((cell["python"], cell["workload"]))
        cell["ratio"] = _ratio(cell.get("wall"), untraced and untraced.get("wall"))
        cell["inner_ratio"] = _ratio(cell.get("inner"), untraced and untraced.get("inner"))
        # A run stopped at --max-ratio gives a lower bound on the wall ratio.
        cell["ratio_above"] = _ratio(cell.get("stopped_after"), untraced and untraced.get("wall"))


def _ratio(value: float | None, baseline: float | None) -> float | None:
    if value is None or not baseline or (value is not None and value <= 0):
        return None
    return value / baseline


def geometric_mean(values: Iterable[float]) -> float | None:
    """The geometric mean, or None for no values."""
    values = list(values)
    if not values:
        return None
    return math.exp(sum(math.log(v) for v in values) / len(values))


def render_markdown(results: dict[str, Any]) -> str:
    """The whole results.md."""
    lines = ["# replay benchmark results", ""]
    lines += _header(results)
    for version, info in results["pythons"].items():
        lines += ["", f"## Python {info.get('version', version)}", ""]
        if info.get("error") and not _cells(results, version):
            lines.append(f"Not measured: {info['error']}")
            continue
        lines += _python_section(results, version, info)
    lines += ["", "## Columns", "", *_column_help(results)]
    return "\n".join(lines).rstrip() + "\n"


def _header(results: dict[str, Any]) -> list[str]:
    machine = results["machine"]
    memory = f", {machine['memory_gib']} GiB" if machine.get("memory_gib") else ""
    load = " ".join(str(x) for x in machine.get("load_average_at_start", []))
    pythons = ", ".join(
        info.get("version", version) for version, info in results["pythons"].items()
    )
    duration = results.get("duration_s")
    took = f"; took {duration:.0f} s" if duration is not None else ""
    return [
        f"- Machine: {machine['cpu']}, {machine['cores']} cores{memory}, Linux "
        f"{machine.get('kernel', '?')} (load average at start: {load})",
        f"- Date: {results['date']}; mode: {results['mode']}, median of {results['rounds']} "
        f"interleaved runs{took}",
        f"- Command: `{results['command']}`",
        f"- Pythons: {pythons}",
    ]


def _cells(results: dict[str, Any], version: str) -> list[Cell]:
    return [c for c in results["cells"] if c["python"] == version]


def _python_section(results: dict[str, Any], version: str, info: dict[str, Any]) -> list[str]:
    cells = _cells(results, version)
    workloads = [w for w in results["workloads"] if any(c["workload"] == w for c in cells)]
    by_key = {(c["workload"], c["tracer"]): c for c in cells}
    tracers = [
        t for t in results["tracers"] if t != "untraced" and any(c["tracer"] == t for c in cells)
    ]
    packages = info.get("packages", {})
    lines = []
    if packages:
        listed = ", ".join(f"{name} {v}" for name, v in sorted(packages.items()))
        lines += [f"Installed: {listed}; coverage.py core: {info.get('coverage_core', '?')}.", ""]
    lines += ["### Wall time, traced / untraced", ""]
    lines += _ratio_table(results, workloads, tracers, by_key, "wall", "ratio")
    lines += ["", "### In-process time (the workload's own timer), traced / untraced", ""]
    lines += _ratio_table(results, workloads, tracers, by_key, "inner", "inner_ratio")
    replay_lines = _replay_table(workloads, by_key)
    if replay_lines:
        lines += ["", "### replay's recordings (full recording, default core)", ""]
        lines += replay_lines
    notes = _notes(results, workloads, tracers, by_key)
    if notes:
        lines += ["", "### Notes", "", *notes]
    return lines


def _ratio_table(
    results: dict[str, Any],
    workloads: list[str],
    tracers: list[str],
    by_key: dict[tuple[str, str], Cell],
    time_key: str,
    ratio_key: str,
) -> list[str]:
    labels = [results["tracers"][t]["label"] for t in tracers]
    head = ["workload", "CPU-bound", "untraced (s)", *labels]
    lines = [_row(head), _row(["---", "---", "---:"] + ["---:"] * len(tracers))]
    for workload in workloads:
        untraced = by_key.get((workload, "untraced"), {})
        seconds = untraced.get(time_key)
        row = [
            workload,
            "yes" if results["workloads"][workload]["cpu_bound"] else "no",
            f"{seconds:.3f}" if seconds is not None else FAILED,
        ]
        row += [_ratio_text(by_key.get((workload, t)), ratio_key) for t in tracers]
        lines.append(_row(row))
    cpu = [w for w in workloads if results["workloads"][w]["cpu_bound"]]
    geo = ["**geometric mean, CPU-bound**", "", ""]
    for tracer in tracers:
        ratios = [
            by_key[(w, tracer)][ratio_key]
            for w in cpu
            if (w, tracer) in by_key and by_key[(w, tracer)].get(ratio_key) is not None
        ]
        mean = geometric_mean(ratios)
        applicable = sum(1 for w in cpu if (w, tracer) in by_key)
        if mean is None:
            geo.append(FAILED if applicable else NOT_APPLICABLE)
        elif len(ratios) < applicable:
            geo.append(f"**{mean:.2f}x** ({len(ratios)} of {applicable})")
        else:
            geo.append(f"**{mean:.2f}x**")
    lines.append(_row(geo))
    return lines


def _ratio_text(cell: Cell | None, ratio_key: str) -> str:
    if cell is None:
        return NOT_APPLICABLE
    ratio = cell.get(ratio_key)
    if ratio is None and cell.get("ratio_above"):
        return f">{cell['ratio_above']:.0f}x"
    return FAILED if ratio is None else f"{ratio:.2f}x"


def _replay_table(workloads: list[str], by_key: dict[tuple[str, str], Cell]) -> list[str]:
    head = [
        "workload",
        "steps",
        "steps/s",
        "bytes/step",
        "store",
        "peak RSS untraced",
        "peak RSS replay",
        "RSS delta",
    ]
    rows = []
    for workload in workloads:
        cell = by_key.get((workload, "replay"))
        if cell is None:
            continue
        untraced = by_key.get((workload, "untraced"), {})
        store = cell.get("store") or {}
        steps = store.get("steps")
        wall = cell.get("wall")
        base_rss, rss = untraced.get("maxrss_kib"), cell.get("maxrss_kib")
        ok = cell.get("error") is None and wall is not None
        rows.append(
            _row(
                [
                    workload,
                    f"{steps:,}" if ok and steps else FAILED,
                    f"{steps / wall:,.0f}" if ok and steps else FAILED,
                    f"{store['bytes'] / steps:.2f}" if ok and steps else FAILED,
                    _bytes(store.get("bytes")) if ok and store else FAILED,
                    _mib(base_rss),
                    _mib(rss) if ok else FAILED,
                    f"{(rss - base_rss) / 1024:+.1f} MiB" if ok and rss and base_rss else FAILED,
                ]
            )
        )
    if not rows:
        return []
    return [_row(head), _row(["---"] + ["---:"] * (len(head) - 1)), *rows]


def _notes(
    results: dict[str, Any],
    workloads: list[str],
    tracers: list[str],
    by_key: dict[tuple[str, str], Cell],
) -> list[str]:
    notes: list[str] = []
    # (tracer, how the table shows it, error) -> workloads
    errors: dict[tuple[str, str, str], list[str]] = {}
    for workload in workloads:
        for tracer in ["untraced", *tracers]:
            cell = by_key.get((workload, tracer))
            if cell is None:
                continue
            if cell.get("error"):
                shown = "on" if cell.get("stopped_after") else "n/a on"
                errors.setdefault((tracer, shown, cell["error"]), []).append(workload)
            store = cell.get("store") or {}
            if tracer == "replay" and store.get("error") and not cell.get("error"):
                errors.setdefault(("replay store", "n/a on", store["error"]), []).append(workload)
    for (tracer, shown, error), names in errors.items():
        label = results["tracers"].get(tracer, {}).get("label", tracer)
        notes.append(f"- {label} {shown} {', '.join(names)}: {error}")
    grouped: dict[tuple[str, str], list[str]] = {}
    for workload in workloads:
        for tracer in tracers:
            for note in (by_key.get((workload, tracer)) or {}).get("notes", []):
                grouped.setdefault((tracer, note), []).append(workload)
    for (tracer, note), names in grouped.items():
        notes.append(f"- {results['tracers'][tracer]['label']} on {', '.join(names)}: {note}")
    for workload in workloads:
        notes.extend(f"- {note}" for note in results["workloads"][workload].get("notes", []))
    return notes


def _column_help(results: dict[str, Any]) -> list[str]:
    lines = [
        "- untraced (s): median wall time of `python w.py` (spawn to exit, measured by the "
        "parent), or of the workload's own timer in the in-process table.",
        "- Ratios: median traced time / median untraced time, same workload, same Python, runs "
        "interleaved. The geometric mean covers the CPU-bound workloads.",
        "- >Nx: the run was stopped at --max-ratio times the untraced wall time; N is the lower "
        "bound on the ratio (shown in both tables; not in the geometric mean).",
        "- steps/s: recorded steps (`SELECT steps FROM recordings`) / replay's median wall time; "
        "bytes/step: store size on disk / steps; peak RSS: the recorded process (or its largest "
        "child), median over runs.",
    ]
    lines += [
        f"- {info['label']}: {info['description']}"
        for name, info in results["tracers"].items()
        if name != "untraced"
    ]
    return lines


def _row(cells: list[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def _bytes(size: int | None) -> str:
    if size is None:
        return FAILED
    if size < 1024 * 1024:
        return f"{size / 1024:.1f} KiB"
    return f"{size / 1024 / 1024:.1f} MiB"


def _mib(kib: int | None) -> str:
    return FAILED if kib is None else f"{kib / 1024:.1f} MiB"


def main(argv: list[str] | None = None) -> int:
    """`python -m benchmarks.report results.json`: print the Markdown for a results file."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m benchmarks.report RESULTS.json", file=sys.stderr)
        return 2
    with open(args[0]) as f:
        results = json.load(f)
    add_ratios(results)
    sys.stdout.write(render_markdown(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
