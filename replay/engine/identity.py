"""One object held by several live frames is shown as the one that ran last recorded it.

A frame's locals are its own recorded changes (model.py): each value is as that frame last
recorded it. A caller stands at its call line while its callee runs, so when the callee changes
an object the caller also holds (a list passed down and appended to, `self` of a method that
sets an attribute), the caller's recording of it is older than the callee's: every event of a
callee comes after its caller's latest event. The same holds for a generator that ran (and
yielded) after a frame's latest event. So at a step, wherever the value of a frame of the stack
holds an object (an `obj_id` of a list, dict, set or object, at any depth) that a live frame
with a later latest event recorded too, the stack shows the object as the latest such frame
recorded it, cut to the depth the value has there (the recording's capture depth), and the
objects inside it the same way. This is how the recording's object identities
(docs/internals.md) make a change made through one reference visible through every other, at
the step it happened, without reading anything but the thread's live frames.

What it cannot show: a change that no live frame recorded. A callee that changes an object
reached through a global and has returned, or a thread that changes it, leaves the frames that
hold it as they last recorded it until they record it again (docs/internals.md, "In-place
changes"). Values of other threads are not consulted: a frame of another thread is not known to
have recorded an object after this one.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from replay.events import V_MAP, V_OBJ, V_REF, V_SEQ

_HELD = (V_SEQ, V_MAP, V_OBJ)
"""Tags of the values that carry an identity and a content: containers and objects."""

Seen = dict[int, tuple[int, tuple]]
"""obj_id -> (depth, node) of an object's shallowest recording in one frame (with content)."""


def current_objects(
    frames: Sequence[tuple[int, dict[str, Any]]],
    max_depth: int,
    others: Sequence[tuple[int, dict[str, Any]]] = (),
) -> list[dict[str, Any]]:
    """The locals of the stack's frames, each object as the live frame that recorded it last.

    `frames` and `others` are (step of the frame's latest event, its locals): the stack's frames,
    whose values are returned in the same order, and other live frames of the thread (suspended
    generators), which are only consulted. A frame's values are rebuilt only where they hold an
    object a frame with a later latest event recorded; otherwise they are the objects given (the
    innermost frame, which is running, is always given back as it is).
    """
    ranked = sorted(
        [(step, i, values) for i, (step, values) in enumerate(frames)]
        + [(step, -1, values) for step, values in others],
        key=lambda entry: entry[0],
        reverse=True,  # the latest first; sorted() is stable, so ties keep the stack's order
    )
    newer: Seen = {}
    done = _Memo(newer, max_depth)
    out: list[dict[str, Any]] = [{} for _ in frames]
    for _step, i, recorded in ranked:
        values = recorded
        if i >= 0:
            if newer:
                values = {name: done.current(v, 0, ()) for name, v in recorded.items()}
            out[i] = values
        own: Seen = {}
        for value in values.values():
            _observe(value, 0, own, newer)
        for obj_id, seen in own.items():
            newer.setdefault(obj_id, seen)  # a frame that ran later has it already: that wins
    return out


class _Memo:
    """`_current` for one stack, remembered per node, depth and path while `newer` is unchanged.

    Frames of one stack share most of their nodes (a recursion passes the same objects down,
    and a caller's node replaced by a frame's that ran later is that very node), and `newer`
    only grows: a node rendered at a depth, under the same objects, renders the same until a
    frame adds an object to `newer`. So a deep recursion costs one walk of its shared values,
    not one per frame.
    """

    def __init__(self, newer: Seen, max_depth: int) -> None:
        self.newer = newer
        self.max_depth = max_depth
        self.known: dict[tuple[int, int, tuple[int, ...]], tuple[int, Any, Any]] = {}
        """(id(node), depth, path) -> (len(newer) then, the node (kept alive, so that ids stay
        unique), the result)."""

    def current(self, value: Any, depth: int, path: tuple[int, ...]) -> Any:
        if type(value) is not tuple or not value or value[0] not in _HELD:
            return value
        key = (id(value), depth, path)
        hit = self.known.get(key)
        if hit is not None and hit[0] == len(self.newer):
            return hit[2]
        result = _current(value, depth, self, path)
        self.known[key] = (len(self.newer), value, result)
        return result


def _content(node: tuple) -> Any:
    """The items (SEQ, MAP) or attributes (OBJ) of a node; None when it was cut."""
    return node[3] if node[0] == V_OBJ else node[4]


def _children(node: tuple) -> list[Any]:
    content = _content(node)
    if content is None:
        return []
    if node[0] == V_OBJ:
        return list(content.values())
    if node[0] == V_MAP:
        return [part for pair in content for part in pair]
    return list(content)


def _observe(value: Any, depth: int, seen: Seen, newer: Seen) -> None:
    """Note every object inside `value` recorded with its content, at its shallowest depth."""
    if type(value) is not tuple or not value or value[0] not in _HELD:
        return
    obj_id = value[1]
    if _content(value) is not None and obj_id:
        known = seen.get(obj_id)
        if known is not None and known[0] <= depth:
            return  # seen as shallow already, with everything below it
        held = newer.get(obj_id)
        if held is not None and held[1] is value:
            return  # a frame further in recorded this very node: observed with it already
        seen[obj_id] = (depth, value)
    for child in _children(value):
        _observe(child, depth + 1, seen, newer)


def _current(value: tuple, depth: int, memo: _Memo, path: tuple[int, ...]) -> Any:
    """`value` at `depth` of an outer frame's value, its objects as frames further in saw them."""
    newer, max_depth = memo.newer, memo.max_depth
    tag, obj_id = value[0], value[1]
    if obj_id in path:  # an object inside itself: a back reference, as the recorder writes it
        return (V_REF, obj_id, value[2])
    seen = newer.get(obj_id)
    source = value if seen is None else seen[1]
    if depth >= max_depth:
        if _content(source) is None:
            return source
        # Cut here, as the recorder cuts at the capture depth: what shows is its size (a node
        # from a frame that held the object less deep has more below it).
        return (tag, obj_id, source[2], None, True) if tag == V_OBJ else (*source[:4], None)
    content = _content(source)
    if content is None:
        return value  # cut where it was recorded, and not seen since: as recorded here
    inner = (*path, obj_id)
    if tag == V_OBJ:
        attrs = {k: memo.current(v, depth + 1, inner) for k, v in content.items()}
        if source is value and all(attrs[k] is v for k, v in content.items()):
            return value
        return (tag, obj_id, source[2], attrs, source[4])
    if tag == V_MAP:
        pairs = [
            type(pair)(memo.current(part, depth + 1, inner) for part in pair) for pair in content
        ]
        if source is value and all(
            all(a is b for a, b in zip(new, old, strict=True))
            for new, old in zip(pairs, content, strict=True)
        ):
            return value
        return (tag, obj_id, source[2], source[3], pairs)
    items = [memo.current(item, depth + 1, inner) for item in content]
    if source is value and all(a is b for a, b in zip(items, content, strict=True)):
        return value
    return (tag, obj_id, source[2], source[3], items)
