"""The kinds of values the C core reads itself: slotted dataclasses, namedtuples, dates, Decimal,
UUIDs, paths, deques, iterators and views, each changed in place or replaced while a frame
holds it."""

import collections
import dataclasses
import datetime
import decimal
import itertools
import pathlib
import uuid

Line = collections.namedtuple("Line", "sku qty tags")


@dataclasses.dataclass(slots=True)
class Item:
    sku: str
    price: decimal.Decimal
    tags: list


class Both:
    __slots__ = ("__dict__", "slot")

    def __init__(self):
        self.slot = [1]
        self.extra = {"k": 1}


def restock(item, amount):
    item.price += amount
    item.tags.append("restocked")
    return item.price


def main():
    item = Item("a", decimal.Decimal("1.50"), [])
    same = item
    restock(same, decimal.Decimal("0.25"))
    item.sku = "b"
    del item.tags[:]
    line = Line("a", 2, [])
    line.tags.append("x")
    line = line._replace(qty=3)
    when = datetime.datetime(2026, 11, 27, 9, 0)
    later = when + datetime.timedelta(minutes=5)
    when = later.replace(second=1)
    day = when.date()
    total = decimal.Decimal("0")
    for step in range(3):
        total += item.price * step
    numbers = iter([1, 2, 3])
    first = next(numbers)
    counter = itertools.count(5)
    second = next(counter)
    data = {"a": 1}
    keys = data.keys()
    data["b"] = 2
    both = Both()
    both.slot.append(2)
    both.extra["j"] = 2
    both.slot = (3,)
    ident = uuid.UUID(int=12345)
    ident = uuid.UUID(int=ident.int + 1)
    where = pathlib.Path("/srv/app")
    where = where / "logs"
    shown = str(where)  # pathlib caches the text: the path is the same value
    where = where.with_suffix(".d")
    recent = collections.deque([1, 2], maxlen=3)
    recent.append(item)
    recent.appendleft("x")  # full: the right end drops out
    recent.rotate(1)
    recent[0].tags.append("queued")
    holder = [item, line, day, total, numbers, keys, both, ident, where, shown, recent]
    holder[0].tags.append("held")
    return first + second + len(keys) + len(holder)


main()
