"""Objects changed by lines that only read them, and containers of builtin subclasses.

A line made of attribute loads, comparisons and iteration can still change an object when it
runs Python code: a property, `__eq__`, `__getattr__`, a generator. Each case below does, in
code of this program (in scope), and the oracle checks that the change shows at the next line.
A subscript read can change a defaultdict in C (`__missing__`), and `xs += ys` extends a list
in C: those lines are checked like any other.

The values also hold subclasses of list, tuple and dict, a defaultdict, a Counter, a set and a
namedtuple, which the recorder reads as the containers they are.
"""

from collections import Counter, defaultdict, namedtuple

Pair = namedtuple("Pair", "left right")


class Bag(list):
    pass


class Registry(dict):
    pass


class Row(tuple):
    pass


class Meter:
    def __init__(self):
        self.reads = 0
        self.log = Bag()

    @property
    def peek(self):
        self.reads += 1
        self.log.append(self.reads)
        return self.reads


class Loud:
    def __init__(self, name):
        self.name = name
        self.compared = []

    def __eq__(self, other):
        self.compared.append(other.name)
        return self.name == other.name

    __hash__ = object.__hash__


class Lazy:
    def __init__(self):
        self.filled = Registry()

    def __getattr__(self, name):
        self.filled[name] = len(name)
        return self.filled[name]


def fill(target, n):
    for i in range(n):
        target.append(i)
        yield i


def main():
    meter = Meter()
    seen = meter.peek
    if meter.peek > 1:
        seen = -seen
    a = Loud("a")
    b = Loud("b")
    same = a == b
    lazy = Lazy()
    width = lazy.height + lazy.depth
    groups = defaultdict(Bag)
    bucket = groups["new"]
    bucket.append(Pair(1, Row((2, 3))))
    xs = Bag([1])
    alias = xs
    xs += [2, 3]
    out = []
    total = 0
    for item in fill(out, 3):
        total += item
    words = Counter("abca")
    names = {"a", ("b", 1)}
    meter.names = names
    names.add("c")
    names.discard("a")
    meter.handlers = {"fill": fill, "len": len, "cls": Meter, "gen": fill([], 1), "m": a.__eq__}
    registry = Registry(meter=meter, words=words, pairs=[Pair(left=xs, right=groups)])
    nested = Bag([Registry(inner=Bag([Row((1,))]))])
    nested[0]["inner"].append(registry)
    return seen, same, width, bucket, alias, total, registry, nested


main()
