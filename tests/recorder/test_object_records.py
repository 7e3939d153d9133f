"""Object records (replay.recorder.records, replay.object_records) against the tree encoder.

The value model with versions holds each container and object once, as a record of its own
level that refers to the objects it holds, and a reader expands a name's reference into a tree.
That tree must be exactly what `SnapshotEncoder` gives for the live value, under every capture
limit: the depth cut from the name, the node budget spent in the encoder's order, back
references, redactions. The oracle is the encoder itself, run on the same identity map.
"""

from __future__ import annotations

import random
from collections import deque
from typing import Any

import pytest
from value_zoo import CASES, Other, Plain, random_value

from replay import events as venc_tags
from replay import object_records
from replay.object_records import (
    R_OBJ,
    V_OREF,
    ExpansionLimits,
    ExpansionMemo,
    expand,
    expand_events,
    references,
)
from replay.recorder.identity import IdentityMap
from replay.recorder.records import RecordEncoder
from replay.recorder.redaction import Redactor
from replay.recorder.snapshot import CaptureLimits, SnapshotEncoder

LIMITS = [
    CaptureLimits(),
    CaptureLimits(max_depth=0),
    CaptureLimits(max_depth=1),
    CaptureLimits(max_depth=3, max_nodes=40),
    CaptureLimits(max_items=0),
    CaptureLimits(max_items=2, max_attrs=2),
    CaptureLimits(max_attrs=0),
    CaptureLimits(max_nodes=0),
    CaptureLimits(max_nodes=1, max_attrs=1),
    CaptureLimits(max_nodes=5),
    CaptureLimits(max_string=3),
]


try:
    from replay import _expand
except ImportError:  # not built: the Python walk alone
    _expand = None  # type: ignore[assignment]

# Both walks of the reader: the Python one, and the C one (replay/_expand.c), which declines
# (NotImplemented) what it leaves to the Python one; where it does not, its tree is compared.
WALKS = ["python"] + (["c"] if _expand is not None else [])


def expand_by(
    walk: str, entry: Any, records: Any, limits: Any, memo: ExpansionMemo | None = None
) -> Any:
    """`expand` by the named walk (the C one falls back to Python where it declines)."""
    if walk == "c":
        table = dict(getattr(records, "made", records))
        got = _expand.expand(
            entry,
            table,
            limits.max_depth,
            limits.max_items,
            limits.max_attrs,
            limits.max_nodes,
            memo,
        )
        if got is not NotImplemented:
            return got
    return expand(entry, records, limits, memo)


def _encoders(limits: CaptureLimits) -> tuple[SnapshotEncoder, RecordEncoder]:
    encoder = SnapshotEncoder(limits, Redactor(), IdentityMap())
    return encoder, RecordEncoder(encoder)


def _expanded(records: RecordEncoder, name: str, value: Any, walk: str = "python") -> Any:
    entry, held = records.records_of(name, value)
    tree = expand(entry, held, records.encoder.limits)  # makes the records it asks for
    return tree if walk == "python" else expand_by(walk, entry, held, records.encoder.limits)


@pytest.mark.parametrize("walk", WALKS)
@pytest.mark.parametrize("limits", LIMITS, ids=repr)
def test_every_case_expands_to_the_encoders_tree(limits: CaptureLimits, walk: str) -> None:
    for case, value in CASES.items():
        encoder, records = _encoders(limits)
        tree = encoder.encode_named("value", value)
        assert _expanded(records, "value", value, walk) == tree, case


@pytest.mark.parametrize("walk", WALKS)
@pytest.mark.parametrize("seed", range(8))
def test_random_values_expand_to_the_encoders_tree(seed: int, walk: str) -> None:
    rng = random.Random(seed)
    for _ in range(60):
        value = random_value(rng, 0, [])
        name = rng.choice(["value", "password", "items"])
        for limits in LIMITS:
            encoder, records = _encoders(limits)
            assert _expanded(records, name, value, walk) == encoder.encode_named(name, value)


@pytest.mark.skipif(_expand is None, reason="replay._expand is not built")
def test_the_c_walk_declines_only_what_it_must() -> None:
    # Its tags are the Python ones, and it expands nearly every case itself: it declines a lost
    # record, a record of a shape it does not know, and the encoder's faults the Python walk
    # replays (an islice refusing a negative stop).
    assert _expand.TAGS == {
        name: getattr(venc_tags, name, None) or getattr(object_records, name)
        for name in _expand.TAGS
    }
    limits = CaptureLimits()
    declined = 0
    for value in CASES.values():
        _, records = _encoders(limits)
        entry, held = records.records_of("value", value)
        expand(entry, held, limits)
        table = dict(getattr(held, "made", held))
        bounds = (limits.max_depth, limits.max_items, limits.max_attrs, limits.max_nodes)
        declined += _expand.expand(entry, table, *bounds) is NotImplemented
    assert declined <= len(CASES) // 20
    lost = _expand.expand((V_OREF, 7), {}, 4, 64, 64, 1024)
    assert lost is NotImplemented  # the Python walk says it is lost, and how


def test_a_name_holding_a_container_refers_to_its_record() -> None:
    encoder, records = _encoders(CaptureLimits())
    inner = [1, 2]
    outer = Plain(inner=inner, again=inner, n=3)
    entry, held = records.records_of("outer", outer)
    assert entry == (V_OREF, encoder.identity.key(outer))
    record = held[entry[1]]
    assert record[0] == R_OBJ
    assert references(record) == [encoder.identity.key(inner)] * 2
    assert len(held) == 2  # the list once, however many times it is held


def test_a_record_is_the_same_wherever_its_object_is_met() -> None:
    # Met at depth 1 from one name and at depth 3 from another: one record serves both, and
    # each name's expansion is cut from its own top.
    encoder, records = _encoders(CaptureLimits(max_depth=3))
    shared = Plain(deep=[[["four"]]], n=1)
    near = [shared]
    far = [[[shared]]]
    _, from_near = records.records_of("near", near)
    _, from_far = records.records_of("far", far)
    key = encoder.identity.key(shared)
    assert from_near[key] == from_far[key]
    for name, value in (("near", near), ("far", far)):
        assert _expanded(records, name, value) == encoder.encode_named(name, value)


def _mutate(rng: random.Random, pool: list[Any], fresh: list[Any]) -> Any:
    """Change one object of `pool` in place (sometimes linking in a new value); return it."""
    target = rng.choice(pool)
    new = random_value(rng, 2, pool) if rng.random() < 0.5 else rng.randint(0, 9)
    fresh.append(new)
    if isinstance(target, list):
        if target and rng.random() < 0.4:
            target.pop(rng.randrange(len(target)))
        elif target and rng.random() < 0.5:
            target[rng.randrange(len(target))] = new
        else:
            target.append(new)
    elif isinstance(target, dict):
        keys = list(target)
        if keys and rng.random() < 0.3:
            del target[rng.choice(keys)]
        else:
            target[rng.choice(["k0", "k9", "token", 7])] = new
    elif isinstance(target, (set, deque)):
        if isinstance(target, set):
            target.add(rng.randint(0, 99))
        else:
            target.append(new)
    else:
        setattr(target, rng.choice(["a0", "a9", "secret", "data"]), new)
    return target


@pytest.mark.parametrize("walk", WALKS)
@pytest.mark.parametrize("seed", range(6))
def test_a_change_in_place_is_one_new_record_seen_through_every_name(seed: int, walk: str) -> None:
    # A frame's names share objects (aliases, containers holding each other). After each change
    # in place, only the changed object's record is made again (and those of new values it now
    # holds); every name's expansion must still be the encoder's tree of its value as it is now.
    rng = random.Random(seed)
    limits = rng.choice(LIMITS[:4])
    encoder, records = _encoders(limits)
    pool: list[Any] = []
    names = {f"v{i}": random_value(rng, 0, pool) for i in range(4)}
    names["alias"] = rng.choice(pool) if pool else names["v0"]
    entries: dict[str, Any] = {}
    held: dict[int, Any] = {}
    for name, value in names.items():
        entries[name], reach = records.records_of(name, value)
        held.update(reach)
    pool = [x for x in pool if isinstance(x, (list, dict, set, deque, Plain, Other))]
    if not pool:
        pytest.skip("this seed made no mutable containers")
    for _ in range(40):
        fresh: list[Any] = []
        changed = _mutate(rng, pool, fresh)
        changed_id = encoder.identity.key(changed)
        held[changed_id] = records.record(changed)
        for value in fresh:  # what the change linked in
            held.update(records.records_of(None, value)[1])
        for name, value in names.items():
            # The records a name's expansion shows now: only the changed object's differs
            # from a record made before (new ones appear where the change made more visible).
            _, reach = records.records_of(name, value)
            assert {o for o, r in reach.items() if o in held and held[o] != r} <= {changed_id}
            held.update(reach)
        for name, value in names.items():
            tree = encoder.encode_named(name, value)
            assert expand_by(walk, entries[name], held, limits) == tree, name


def test_a_name_that_reaches_many_objects_costs_the_records_its_value_shows() -> None:
    # 40 x 40 x 40 lists of one-item lists, all within the capture depth: the encoder shows at
    # most max_nodes of them, and records are made for those alone (each item it shows is one
    # node), not for the 65,000 objects within the depth.
    grid = [[[[k] for k in range(40)] for _ in range(40)] for _ in range(40)]
    limits = CaptureLimits()
    encoder, records = _encoders(limits)
    entry, made = records.records_of("grid", grid)
    assert len(made) <= limits.max_nodes + 1
    assert expand(entry, made, limits) == encoder.encode_named("grid", grid)


@pytest.mark.parametrize("walk", WALKS)
def test_a_subtree_is_not_reused_where_less_budget_would_cut_it(walk: str) -> None:
    # `inner` is expanded whole under `x`; under `y` a 30-item sibling comes first, and the
    # 40-node budget leaves it 8 items: the memo's tree of 20 must not stand in for that.
    limits = CaptureLimits(max_nodes=40)
    encoder, records = _encoders(limits)
    inner = list(range(20))
    x, y = [inner], [list(range(30)), inner]
    memo = ExpansionMemo()
    held: dict[int, Any] = {}
    for name, value in (("x", x), ("y", y), ("x", x)):
        entry, reach = records.records_of(name, value)
        held.update(reach)
        assert expand_by(walk, entry, held, limits, memo) == encoder.encode_named(name, value), name
    assert memo.hits


@pytest.mark.parametrize("walk", WALKS)
def test_a_subtree_that_holds_a_reused_one_needs_the_budget_that_one_needs(walk: str) -> None:
    # `q` is expanded under `c` with `inner` taken from the memo (kept under `a`'s `p`): what
    # `inner` needs must count in what `q` needs, or `q`'s tree, `inner` whole in it, would
    # stand in under `d`, where a 30-item sibling leaves `q` too little budget for `inner`.
    limits = CaptureLimits(max_nodes=40)
    encoder, records = _encoders(limits)
    inner = list(range(20))
    p, q = [inner], [inner]
    values = {"a": [p], "c": [q], "d": [list(range(30)), q]}
    memo = ExpansionMemo()
    held: dict[int, Any] = {}
    for name, value in values.items():
        entry, reach = records.records_of(name, value)
        held.update(reach)
        tree = encoder.encode_named(name, value)
        assert expand_by(walk, entry, held, limits, memo) == tree, name
    assert memo.hits


@pytest.mark.parametrize("walk", WALKS)
@pytest.mark.parametrize("limits", LIMITS, ids=repr)
@pytest.mark.parametrize("seed", range(4))
def test_subtrees_reused_from_earlier_expansions_are_the_encoders_trees(
    seed: int, limits: CaptureLimits, walk: str
) -> None:
    # The reader keeps the subtrees it expanded (ExpansionMemo) and reuses them for the next
    # name or event that meets the same object: right only while none of the records they show
    # changed, they are met from a path that holds none of their objects, and with a budget
    # that cuts them alike. Names sharing objects, changed in place 40 times, every name
    # expanded after each change through one memo: each must be the encoder's tree.
    rng = random.Random(seed)
    encoder, records = _encoders(limits)
    pool: list[Any] = []
    names = {f"v{i}": random_value(rng, 0, pool) for i in range(4)}
    names["alias"] = rng.choice(pool) if pool else names["v0"]
    names["pair"] = [names["v0"], names["alias"]]
    entries: dict[str, Any] = {}
    held: dict[int, Any] = {}
    memo = ExpansionMemo()
    for name, value in names.items():
        entries[name], reach = records.records_of(name, value)
        held.update(reach)
    pool = [x for x in pool if isinstance(x, (list, dict, set, deque, Plain, Other))]
    for _ in range(40 if pool else 1):
        if pool:
            fresh: list[Any] = []
            changed = _mutate(rng, pool, fresh)
            made = {encoder.identity.key(changed): records.record(changed)}
            for value in fresh:
                made.update(records.records_of(None, value)[1])
            for oid, record in made.items():
                held[oid] = record
                memo.forget(oid)
        for name in rng.sample(list(names), len(names)):
            tree = encoder.encode_named(name, names[name])
            assert expand_by(walk, entries[name], held, limits, memo) == tree, name
    assert memo.hits or limits.max_depth == 0 or limits.max_nodes < 40  # tiny budgets bind


class Loud:
    """Every hook a careless reader could call raises (and counts)."""

    calls = 0

    def __init__(self) -> None:
        self.x = [1]

    def _hook(self, *args: Any) -> Any:
        Loud.calls += 1
        raise AssertionError("user code ran")

    __repr__ = __eq__ = __hash__ = __len__ = __iter__ = __getattr__ = _hook  # type: ignore[assignment]

    @property
    def prop(self) -> int:
        Loud.calls += 1
        return 0


class LoudList(list):
    def _hook(self, *args: Any) -> Any:
        Loud.calls += 1
        raise AssertionError("user code ran")

    __len__ = __iter__ = __getitem__ = __repr__ = _hook  # type: ignore[assignment]


class LoudDict(dict):
    def _hook(self, *args: Any) -> Any:
        Loud.calls += 1
        raise AssertionError("user code ran")

    __len__ = __iter__ = __getitem__ = items = keys = _hook  # type: ignore[assignment]


def test_making_records_runs_no_user_code() -> None:
    encoder, records = _encoders(CaptureLimits())
    value = LoudList([Loud(), LoudDict(k=Loud()), (Loud(), "password")])
    Loud.calls = 0
    assert _expanded(records, "value", value) == encoder.encode_named("value", value)
    assert Loud.calls == 0


@pytest.mark.skipif(_expand is None, reason="replay._expand is not built")
@pytest.mark.parametrize("seed", range(4))
def test_a_chunk_reads_the_same_through_either_walk(
    seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A chunk as a recording of records holds it: events whose changes are records under
    # obj_ids (some as R_GROWN changes of the record before) and names' entries, one entry
    # lost (its record is not in the chunk). expand_events in C and in Python give the same
    # events, each name the encoder's tree of its value at that step.
    rng = random.Random(seed)
    limits = CaptureLimits(max_nodes=rng.choice([40, 1024]))
    encoder, records = _encoders(limits)
    pool: list[Any] = []
    names = {f"v{i}": random_value(rng, 0, pool) for i in range(3)}
    names["grows"] = [1, 2]
    pool = [x for x in pool if isinstance(x, (list, dict, set, deque, Plain, Other))]
    events: list[tuple] = []
    expected: list[list[tuple[str, Any]]] = []
    held: dict[int, Any] = {}
    for step in range(1, 30):
        changes: list[tuple[Any, Any]] = []
        if step > 1:
            names["grows"].append(step)
            if pool:
                _mutate(rng, pool, [])
        shown = []
        for name, value in names.items():
            entry, reach = records.records_of(name, value)
            expand(entry, reach, limits)  # makes the records it asks for
            for oid, record in dict(getattr(reach, "made", reach)).items():
                if held.get(oid) != record:
                    old = held.get(oid)
                    changes.append((oid, object_records.grown(old, record) if old else record))
                    held[oid] = record
            changes.append((name, entry))
            shown.append((name, encoder.encode_named(name, value)))
        if step == 15:
            changes.append(("lost", (V_OREF, 10**9)))
            shown.append(
                ("lost", (venc_tags.V_ERROR, "?", "replay lost the records of this value"))
            )
        events.append((1, step, 0, 1, 3, None, tuple(changes), None))
        expected.append(shown)
    events.append((2, 30, 0, 1, None, None, None, None))
    expansion = ExpansionLimits(
        limits.max_depth, limits.max_items, limits.max_attrs, limits.max_nodes
    )
    in_c = expand_events(events, expansion)
    monkeypatch.setattr(object_records, "_c_expand_events", None)
    in_python = expand_events(events, expansion)
    assert in_c == in_python
    assert [list(e[6]) for e in in_c[:-1]] == expected
    assert in_c[-1] is events[-1]
