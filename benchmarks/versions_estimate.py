"""What storing objects once, with versions, would keep of a recording made today (an estimate).

    python -m benchmarks.versions_estimate STORE

docs/internals.md ("The plan") proposes recording each object at its own level, its parts as
references, a new version only when that level changes, and a name's change only when it is
bound to another object. This reads a store's events thread by thread, chunk by chunk, and keeps
what such a writer would: a name's entry when its object is another one (or its value is not a
container or object), and an object's own level (the containers and objects it holds as
references) when it differs from its last version or is met for the first time in the chunk (a
chunk holds the versions it refers to, so that it can be read alone). It prints, per step, the
bytes of the values as stored today and as a versioned writer would store them (marshal, then
zstd level 1, per chunk, as the writer does), and the store's size with the one replaced by the
other. An estimate: the objects are the ones today's values show (to their capture depth and
budget), and the reader's work to expand references again is not counted.
"""

from __future__ import annotations

import marshal
import sys
from pathlib import Path
from typing import Any

import zstandard
from replay.storage import Store

from benchmarks.measure import read_store
from replay.events import F_CALL, F_CHANGES, V_MAP, V_OBJ, V_REF, V_SEQ

V_VERSION_REF = -1
"""The tag of a reference to an object's version in this estimate (not a venc tag)."""

_HELD = (V_SEQ, V_MAP, V_OBJ)


def _content(node: tuple) -> Any:
    return node[3] if node[0] == V_OBJ else node[4]


def _has_content(value: Any) -> bool:
    return (
        type(value) is tuple and bool(value) and value[0] in _HELD and _content(value) is not None
    )


def own_level(node: tuple, below: list[tuple]) -> tuple:
    """`node` with the containers and objects it holds as references; those are added to below."""

    def ref(child: Any) -> Any:
        if _has_content(child):
            below.append(child)
            return (V_VERSION_REF, child[1])
        if type(child) is tuple and child and child[0] == V_REF:
            return (V_VERSION_REF, child[1])
        return child  # an atom, or a container cut at the capture depth (its type and size)

    content = _content(node)
    if node[0] == V_OBJ:
        return (*node[:3], {name: ref(v) for name, v in content.items()}, node[4])
    if node[0] == V_MAP:
        return (*node[:4], [(ref(k), ref(v)) for k, v in content])
    return (*node[:4], [ref(item) for item in content])


class Estimate:
    """The counts and sizes of one store, today's and versioned."""

    def __init__(self) -> None:
        self.events = 0
        self.stored = 0
        self.values_today = 0
        self.values_versioned = 0
        self.changes = 0
        self.entries = 0
        self.records = 0
        self.nodes_today = 0
        self._zstd = zstandard.ZstdCompressor(level=1)

    def add_thread(self, chunks: list[list[tuple]]) -> None:
        last_version: dict[int, tuple] = {}
        bound: dict[tuple[int, str], int | None] = {}
        for events in chunks:
            self._add_chunk(events, last_version, bound)

    def _add_chunk(
        self,
        events: list[tuple],
        last_version: dict[int, tuple],
        bound: dict[tuple[int, str], int | None],
    ) -> None:
        written: set[int] = set()
        today: list[Any] = []
        versioned: list[Any] = []
        for event in events:
            changes = event[F_CHANGES]
            if not changes:
                continue
            today.append(changes)
            entries: list[tuple] = []
            records: list[tuple] = []
            for name, venc in changes:
                self.changes += 1
                key = (event[F_CALL], name)
                if not _has_content(venc):
                    entries.append((name, venc))
                    bound[key] = None
                    continue
                if bound.get(key) != venc[1]:
                    entries.append((name, (V_VERSION_REF, venc[1])))
                    bound[key] = venc[1]
                stack = [venc]
                while stack:
                    node = stack.pop()
                    self.nodes_today += 1
                    version = own_level(node, stack)
                    if node[1] not in written or last_version.get(node[1]) != version:
                        records.append(version)
                        written.add(node[1])
                        last_version[node[1]] = version
            self.entries += len(entries)
            self.records += len(records)
            versioned.append((entries, records))
        self.events += len(events)
        self.values_today += len(self._zstd.compress(marshal.dumps(today)))
        self.values_versioned += len(self._zstd.compress(marshal.dumps(versioned)))

    def report(self, name: str) -> str:
        n = max(self.events, 1)
        estimate = self.stored - self.values_today + self.values_versioned
        return (
            f"{name}: {self.events} steps, stored {self.stored / n:.2f} B/step; values today "
            f"{self.values_today / n:.2f} B/step, versioned {self.values_versioned / n:.2f} "
            f"B/step; store estimate {estimate / n:.2f} B/step; {self.changes} changed values "
            f"({self.nodes_today} containers and objects) -> {self.entries} entries + "
            f"{self.records} versions"
        )


def estimate(path: Path) -> Estimate:
    """The estimate for every recording of the store at `path`."""
    out = Estimate()
    out.stored = read_store(path).bytes  # the file's size, as the suite's bytes per step
    with Store.open(path, mode="r") as store:
        for recording in store.recordings():
            per_thread: dict[int, list[Any]] = {}
            for info in store.chunk_index(recording["id"]):
                per_thread.setdefault(info.thread_id, []).append(info)
            for infos in per_thread.values():
                infos.sort(key=lambda info: info.first_step)
                out.add_thread([store.read_chunk(info.id) for info in infos])
    return out


def main() -> None:
    path = Path(sys.argv[1])
    print(estimate(path).report(path.name))


if __name__ == "__main__":
    main()
