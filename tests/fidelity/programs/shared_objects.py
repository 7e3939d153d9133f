"""Objects held by several frames at once and changed by the innermost: what each frame of the
stack shows at every line (the engine's stack test compares all of them with the oracle)."""


class Item:
    def __init__(self, name, qty):
        self.name = name
        self.qty = qty


class Order:
    def __init__(self):
        self.items = []
        self.total = 0

    def add(self, item):
        self.items.append(item)
        self.total += item.qty
        return len(self.items)


class Node:
    def __init__(self, parent=None):
        self.parent = parent
        self.children = []


def adopt(parent):
    child = Node(parent)
    parent.children.append(child)
    return child


def append_one(xs):
    xs.append(1)
    xs.append(2)
    return len(xs)


def rebind(xs):
    xs = [99]
    return xs


def bump_first(order):
    first = order.items[0]
    first.qty += 10
    return first.qty


def collect(n, acc):
    acc.append(n)
    if n > 0:
        collect(n - 1, acc)
    acc.append(-n)


def counting(tally):
    for word in ("a", "b", "a"):
        tally[word] = tally.get(word, 0) + 1
        yield word


def deep_push(inner):
    inner.append("deep")
    return inner


def main():
    items = []
    holder = {"items": items, "pair": [items, "x"]}
    n = append_one(items)
    kept = rebind(items)
    order = Order()
    basket = [order]
    order.add(Item("tea", 2))
    order.add(Item("cake", 1))
    qty = bump_first(order)
    acc = []
    collect(2, acc)
    tally = {}
    seen = []
    for word in counting(tally):
        seen.append(word)
    again = {}
    firsts = [first for first in counting(again)]
    root = Node()
    kid = adopt(root)
    nested = [[[[["bottom"]]]]]
    deep_push(nested[0][0])
    return n, kept, holder, basket, qty, seen, firsts, kid, nested


main()
