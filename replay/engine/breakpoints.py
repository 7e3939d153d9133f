"""Breakpoints: where continue / reverse-continue stop, and how a chunk is checked for them.

This module owns the three kinds and what "hit" means for each:

- `FILE:LINE [if COND]`: a LINE event of that line in a function of that file (every recorded
  file whose path is FILE or ends with `/FILE`);
- `FUNCTION [if COND]`: the CALL event of a function whose qualified name or name is FUNCTION
  (or ends with `.FUNCTION`): the function's entry, its arguments bound;
- `exception [TYPE] [if COND]`: the RAISE event where an exception starts (not the RAISE
  events of the frames it then propagates through), optionally of a type whose qualified name
  is TYPE or ends with `.TYPE` (types are matched by name: the recording has no class tree).

A condition is an `Expression` evaluated in the hitting frame's recorded locals *at* the event
(an unbound name or a value error means "no hit", as in gdb). Each breakpoint first rejects whole
chunks from the index's summaries, then finds candidate events with a tight loop over the
decoded chunk; conditions are evaluated only at candidates.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from replay.engine.errors import EngineError
from replay.engine.expr import Expression
from replay.engine.index import LINE_BITS, ChunkSummary
from replay.events import CALL, LINE, RAISE, UNWIND


@dataclass(slots=True)
class Breakpoint:
    """One breakpoint; `codes` are the code ids it can hit in."""

    number: int
    kind: str
    """'line', 'function' or 'exception'."""
    spec: str
    """As the user wrote it (without the condition)."""
    codes: frozenset[int] = frozenset()
    line: int = 0
    exc_type: str | None = None
    condition: Expression | None = None
    enabled: bool = True
    where: list[str] = field(default_factory=list)
    """What it resolved to, for `info breakpoints`."""
    keys: frozenset[int] = frozenset()
    """A line breakpoint's (code, line) pairs, as in the index's chunk summaries."""

    def __post_init__(self) -> None:
        if self.kind == "line":
            self.keys = frozenset((code << LINE_BITS) | self.line for code in self.codes)

    def hitting_codes(self, summary: ChunkSummary) -> set[int]:
        """The codes that run this line in the chunk (line breakpoints)."""
        return {key >> LINE_BITS for key in self.keys & summary.pairs}

    def describe(self) -> str:
        text = f"{self.number}: {self.kind} {self.spec}"
        if self.condition is not None:
            text += f" if {self.condition.source}"
        if not self.enabled:
            text += " (disabled)"
        return text

    # -- matching ------------------------------------------------------------------------

    def may_match(self, summary: ChunkSummary) -> bool:
        if self.kind == "line":
            return not self.keys.isdisjoint(summary.pairs)
        if self.kind == "function":
            return not self.codes.isdisjoint(summary.called)
        return RAISE in summary.kinds

    def candidates(
        self,
        events: list[tuple],
        lo: int,
        hi: int,
        code_of: Any,
        previous: tuple | None = None,
    ) -> list[int]:
        """Indexes in [lo, hi) where this breakpoint hits, conditions not yet checked.

        `previous` is the thread's event just before `events[0]` (the end of the previous
        chunk), which tells a propagating exception from a new one at index 0."""
        if self.kind == "line":
            line = self.line
            codes = self.codes
            return [
                i
                for i in range(lo, hi)
                if events[i][4] == line and events[i][0] == LINE and code_of(events[i][3]) in codes
            ]
        if self.kind == "function":
            codes = self.codes
            return [i for i in range(lo, hi) if events[i][0] == CALL and events[i][5][0] in codes]
        return [
            i
            for i in range(lo, hi)
            if events[i][0] == RAISE
            and self.type_matches(events[i][5][0])
            and not _propagation(events[i - 1] if i else previous, events[i])
        ]

    def type_matches(self, type_name: str) -> bool:
        wanted = self.exc_type
        if wanted is None:
            return True
        return type_name == wanted or type_name.endswith("." + wanted)


def _propagation(before: tuple | None, event: tuple) -> bool:
    """A RAISE right after a callee's UNWIND of the same exception is its propagation."""
    return before is not None and before[0] == UNWIND and before[5][0] == event[5][0]


class Breakpoints:
    """The numbered breakpoints of one engine."""

    def __init__(
        self,
        files: Mapping[int, Mapping[str, Any]],
        functions: Mapping[int, Mapping[str, Any]],
    ) -> None:
        self.files = files
        self.functions = functions
        self._items: dict[int, Breakpoint] = {}
        self._next = 1

    def __iter__(self) -> Any:
        return iter(self._items.values())

    def __len__(self) -> int:
        return len(self._items)

    def active(self) -> list[Breakpoint]:
        return [bp for bp in self._items.values() if bp.enabled]

    def get(self, number: int) -> Breakpoint:
        try:
            return self._items[number]
        except KeyError:
            raise EngineError(f"no breakpoint number {number}") from None

    def delete(self, number: int) -> Breakpoint:
        bp = self.get(number)
        del self._items[number]
        return bp

    def clear(self) -> None:
        self._items.clear()

    def add(self, spec: str, condition: str | None = None) -> Breakpoint:
        """Parse `FILE:LINE`, `FUNCTION` or `exception [TYPE]` and add it."""
        spec = spec.strip()
        cond = Expression(condition) if condition else None
        if not spec:
            raise EngineError("a breakpoint needs FILE:LINE, FUNCTION or `exception [TYPE]`")
        words = spec.split()
        if words[0] == "exception" and len(words) <= 2:
            bp = Breakpoint(self._next, "exception", spec, condition=cond)
            bp.exc_type = words[1] if len(words) == 2 else None
            bp.where = [f"raise of {bp.exc_type or 'any exception'}"]
        elif ":" in spec and spec.rpartition(":")[2].strip().isdigit():
            path, _, line = spec.rpartition(":")
            bp = self._line(path.strip(), int(line), spec, cond)
        elif len(words) == 1:
            bp = self._function(spec, cond)
        else:
            raise EngineError(
                f"cannot read breakpoint {spec!r}: use FILE:LINE, FUNCTION or `exception [TYPE]`"
            )
        self._items[bp.number] = bp
        self._next += 1
        return bp

    def _line(self, path: str, line: int, spec: str, cond: Expression | None) -> Breakpoint:
        file_ids = self.match_files(path)
        codes = frozenset(
            function_id for function_id, row in self.functions.items() if row["file_id"] in file_ids
        )
        bp = Breakpoint(self._next, "line", spec, codes=codes, line=line, condition=cond)
        bp.where = [f"{self.files[f]['path']}:{line}" for f in sorted(file_ids)]
        return bp

    def _function(self, name: str, cond: Expression | None) -> Breakpoint:
        codes = frozenset(self.match_functions(name))
        if not codes:
            raise EngineError(f"no recorded function is named {name!r}")
        bp = Breakpoint(self._next, "function", name, codes=codes, condition=cond)
        bp.where = sorted({self.functions[c]["qualname"] or "?" for c in codes})
        return bp

    def match_files(self, path: str) -> set[int]:
        """Ids of recorded files whose path is `path` or ends with `/path`."""
        path = path.replace("\\", "/")
        found = {
            file_id
            for file_id, row in self.files.items()
            if row["path"] == path
            or row["path"].replace("\\", "/").endswith("/" + path.lstrip("./"))
        }
        if not found:
            known = ", ".join(sorted(row["path"].rpartition("/")[2] for row in self.files.values()))
            raise EngineError(f"no recorded file matches {path!r} (recorded: {known or 'none'})")
        return found

    def match_functions(self, name: str) -> Iterable[int]:
        for function_id, row in self.functions.items():
            qualname = row.get("qualname") or row["name"]
            if name in (qualname, row["name"]) or qualname.endswith("." + name):
                yield function_id
