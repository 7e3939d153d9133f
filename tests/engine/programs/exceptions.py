"""Exceptions that unwind several frames: caught at various depths, finally blocks, and one
uncaught at the end."""


class OrderError(Exception):
    pass


def validate(order_total):
    if order_total <= 0:
        raise OrderError(f"empty order: {order_total}")
    return order_total


def price(items):
    total = 0
    for item in items:
        total += item
    return validate(total)


def checkout(items):
    attempt = 1
    try:
        return price(items)
    finally:
        attempt = 2  # noqa: F841 - a finally block for the engine to step through


def safe(items):
    try:
        result = checkout(items)
    except OrderError as exc:
        result = str(exc)
    return result


def deep(n):
    if n == 0:
        missing = {}
        return missing["key"]
    return deep(n - 1)


def main():
    outcomes = []
    for items in ([1, 2], [], [3], [0, 0]):
        outcomes.append(safe(items))
    try:
        deep(4)
    except KeyError:
        outcomes.append("keyerror")
    for attempt in range(3):
        try:
            int("x" * attempt)
        except ValueError:
            outcomes.append(attempt)
    return outcomes


main()
deep(3)
