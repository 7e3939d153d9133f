"""Generators (send, throw, close, yield from) and coroutines under asyncio."""

import asyncio


def counter(limit):
    total = 0
    for i in range(limit):
        total += i
        got = yield total
        if got:
            total += got
    return total


def relay(limit):
    result = yield from counter(limit)
    yield -result


def catcher():
    caught = 0
    while True:
        try:
            value = yield caught
        except KeyError:
            caught += 1
            value = None
        if value == "stop":
            return caught


async def fetch(key, delay):
    await asyncio.sleep(delay)
    value = key * 2
    return value


async def gather_all(keys):
    results = []
    for key in keys:
        got = await fetch(key, 0)
        results.append(got)
    both = await asyncio.gather(fetch(10, 0.001), fetch(20, 0))
    return results, both


def main():
    gen = counter(6)
    seen = [next(gen)]
    for v in (3, None, 5):
        seen.append(gen.send(v))
    gen.close()
    out = list(relay(4))
    c = catcher()
    next(c)
    for _ in range(3):
        c.throw(KeyError("k"))
    try:
        c.send("stop")
    except StopIteration as stop:
        caught = stop.value
    squares = list(x * x for x in range(5))
    coro = asyncio.run(gather_all([1, 2, 3]))
    return seen, out, caught, squares, coro


main()
