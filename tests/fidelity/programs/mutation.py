"""Values changed in place where the line that changes them does not name them: through aliases,
by builtins and library code, by callees, and objects met again after they changed (what the C
core's fingerprints and value cache must never hide)."""

import copy
import operator
import random


class Node:
    def __init__(self, value, nxt=None):
        self.value = value
        self.next = nxt


class Registry:
    kind = "plain"

    def __init__(self):
        self.items = {}
        self.order = []


def set_value(obj, n):
    obj.value = n


def main():
    head = Node(1, Node(2, Node(3)))
    alias = head.next.next
    ring = [head, alias]
    setattr(alias, "value", 30)  # noqa: B010 - a builtin changes it, not a line naming it
    same = head
    operator.setitem(ring, 0, alias)
    set_value(head.next, 20)
    again = head
    registry = Registry()
    registry.items[("k", 1)] = [1.5, 2.5]
    registry.order.append(registry.items[("k", 1)])
    registry.items[("k", 1)].append(3.5)
    Registry.kind = "changed"
    registry.items.update(a=1)
    box = [0.0] * 3
    box[1] += 0.5
    box[1] -= 0.5
    cycle = []
    cycle.append(cycle)
    cycle.append(head)
    d = {}
    d["self"] = d
    d["n"] = 1
    d["n"] = 2
    rng = random.Random(3)
    deck = list(range(6))
    rng.shuffle(deck)
    nested = {"a": {"b": {"c": {"d": [1, 2]}}}}
    nested["a"]["b"]["c"]["d"].append(3)
    nested["a"]["b"]["c"]["e"] = 1
    clone = copy.deepcopy(head)
    clone.next.value = -1
    for node in (head, head.next, alias, head):
        node.value += 1
    return same, again, ring, box, cycle, d, deck, registry, nested, clone


main()
