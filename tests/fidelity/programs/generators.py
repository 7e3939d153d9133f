"""Generators (yield, send, close, yield from) and async coroutines."""

import asyncio


def countdown(n):
    while n > 0:
        received = yield n
        if received:
            n -= received
        n -= 1
    return "done"


def delegating():
    result = yield from countdown(3)
    yield result


def closer():
    try:
        yield 1
        yield 2
    finally:
        cleaned = True  # noqa: F841


async def fetch(key, delay):
    await asyncio.sleep(delay)
    value = key.upper()
    return value


async def gather_all():
    results = await asyncio.gather(fetch("a", 0), fetch("b", 0))
    joined = "".join(results)
    return joined


def main():
    seen = list(countdown(3))
    gen = countdown(5)
    first = next(gen)
    second = gen.send(1)
    delegated = list(delegating())
    c = closer()
    head = next(c)
    c.close()
    joined = asyncio.run(gather_all())
    return seen, first, second, delegated, head, joined


main()
