"""The engine's rule for objects held by several frames (replay/engine/identity.py), on
hand-made values: the cases a recorded program rarely produces (cycles through newer
recordings, cut observations). The rule itself is checked against real programs' frames by
tests/fidelity (test_every_frame_of_the_engine_stack_matches_oracle)."""

from __future__ import annotations

from typing import Any

from replay.engine.identity import current_objects
from replay.events import V_MAP, V_OBJ, V_REF, V_SEQ


def lst(obj_id: int, items: list[Any] | None, length: int | None = None) -> tuple:
    return (V_SEQ, obj_id, "list", len(items) if length is None else length, items)


def obj(obj_id: int, attrs: dict[str, Any] | None) -> tuple:
    return (V_OBJ, obj_id, "m.Box", attrs, attrs is None)


def test_an_outer_frame_shows_the_inner_frames_record_at_any_depth() -> None:
    # GIVEN a callee that recorded list 7 after appending to it, and its caller that holds the
    # same list directly and inside a dict
    inner = {"xs": lst(7, [1])}
    outer = {"items": lst(7, []), "order": (V_MAP, 8, "dict", 1, [("items", lst(7, []))])}
    # WHEN the stack's values are resolved THEN the caller sees the list as the callee left it
    _, resolved = current_objects([(2, inner), (1, outer)], 4)
    assert resolved["items"] == lst(7, [1])
    assert resolved["order"] == (V_MAP, 8, "dict", 1, [("items", lst(7, [1]))])
    # AND the innermost frame is given back as it is
    assert current_objects([(2, inner), (1, outer)], 4)[0] is inner


def test_a_newer_record_is_cut_at_the_capture_depth_where_it_sits() -> None:
    # GIVEN a callee holding list 5 at depth 0 (content two levels down) and a caller holding
    # it at depth 1 of a capture depth of 2
    inner = {"xs": lst(5, [lst(6, ["deep"]), "new"])}
    outer = {"wrap": lst(4, [lst(5, [lst(6, None, 1)])])}
    # THEN in the caller list 5 shows its new items and list 6 only its size, as recorded there
    _, resolved = current_objects([(2, inner), (1, outer)], 2)
    assert resolved["wrap"] == lst(4, [lst(5, [lst(6, None, 1), "new"])])


def test_objects_inside_themselves_through_newer_records_end() -> None:
    # GIVEN a callee that recorded box 1 holding box 2, and box 2 holding box 1 back, each as
    # its own value (no back reference inside one value)
    inner = {"a": obj(1, {"peer": obj(2, None)}), "b": obj(2, {"peer": obj(1, None)})}
    outer = {"a": obj(1, {"peer": obj(2, {"peer": obj(1, None)})})}
    # WHEN the caller's box 1 is resolved THEN where box 1 meets itself again it is a back
    # reference, as the recorder writes one inside a value
    _, resolved = current_objects([(2, inner), (1, outer)], 8)
    assert resolved["a"] == obj(1, {"peer": obj(2, {"peer": (V_REF, 1, "m.Box")})})


def test_a_cut_record_does_not_replace_content() -> None:
    # GIVEN a callee that saw list 3 only as a header (at its depth limit)
    inner = {"deep": lst(1, [lst(2, [lst(3, None, 2)])])}
    outer = {"xs": lst(3, ["a", "b"])}
    # THEN the caller keeps what it recorded of it
    _, resolved = current_objects([(2, inner), (1, outer)], 2)
    assert resolved["xs"] == lst(3, ["a", "b"])


def test_values_no_frame_further_in_holds_are_the_same_objects() -> None:
    # GIVEN frames that share nothing
    inner = {"x": lst(1, [1])}
    outer = {"y": lst(2, [lst(3, [2])]), "z": 5}
    # THEN the outer values are given back as they are, not copied
    _, resolved = current_objects([(2, inner), (1, outer)], 4)
    assert resolved["y"] is outer["y"] and resolved["z"] == 5


def test_the_innermost_holder_wins_over_frames_between() -> None:
    # GIVEN three frames that each recorded box 9 at a different time (innermost newest)
    frames = [
        (3, {"b": obj(9, {"n": 3})}),
        (2, {"b": obj(9, {"n": 2})}),
        (1, {"b": obj(9, {"n": 1})}),
    ]
    # THEN every frame shows the innermost record
    resolved = current_objects(frames, 4)
    assert [values["b"] for values in resolved] == [obj(9, {"n": 3})] * 3


def test_a_generator_that_ran_after_a_frame_counts_a_frame_that_ran_before_does_not() -> None:
    # GIVEN a caller (latest event at step 10) holding dict 4, and two suspended generators
    # holding it: one that yielded at step 15 (after the caller's latest event) with a newer
    # record, one that yielded at step 5 with an older one
    caller = {"tally": (V_MAP, 4, "dict", 1, [("a", 1)])}
    later = {"tally": (V_MAP, 4, "dict", 2, [("a", 1), ("b", 1)])}
    earlier = {"tally": (V_MAP, 4, "dict", 0, [])}
    running = {"n": 1}
    # WHEN the stack (the running frame at step 20, the caller) is resolved with the generators
    _, resolved = current_objects([(20, running), (10, caller)], 4, [(15, later), (5, earlier)])
    # THEN the caller shows the later generator's record
    assert resolved["tally"] == later["tally"]
