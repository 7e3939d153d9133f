"""The replay engine: random-access time travel over a recording (docs/engine.md).

Open a recording, stand at any step of any thread, move forwards and backwards with the
meanings gdb and rr give their commands, and read the full recorded state there, without
running anything:

    from replay.engine import Engine

    with Engine.open("replay.db") as engine:
        engine.breakpoints.add("shop.py:42", "order.total == 0")
        engine.continue_()
        print(engine.cursor.step, [f.function for f in engine.stack()])

Modules: `engine` (Engine: opening, movements, jumps, the index's life), `cursor` (a thread's
position and the state there), `model` (replaying events into a thread's state), `stream`
(positions and the chunk cache), `index` (checkpoints, digests, summaries), `scan` (the long
loops), `breakpoints`, `expr` (expressions over recorded values), `history` (value history,
origin, search), `views` (the records returned), `errors`.
"""

from __future__ import annotations

from replay.engine.breakpoints import Breakpoint, Breakpoints
from replay.engine.cursor import CallRow, Cursor
from replay.engine.engine import Engine
from replay.engine.errors import EngineError, ExpressionError
from replay.engine.expr import Expression
from replay.engine.views import UNBOUND, Change, Frame, Match, Outcome, Stop
from replay.gaps import Gap

__all__ = [
    "UNBOUND",
    "Breakpoint",
    "Breakpoints",
    "CallRow",
    "Change",
    "Cursor",
    "Engine",
    "EngineError",
    "Expression",
    "ExpressionError",
    "Frame",
    "Gap",
    "Match",
    "Outcome",
    "Stop",
]
