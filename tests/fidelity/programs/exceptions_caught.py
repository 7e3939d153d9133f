"""Exceptions raised, propagated through frames, caught, re-raised and chained."""


class OrderError(Exception):
    def __init__(self, order_id, reason):
        super().__init__(f"order {order_id}: {reason}")
        self.order_id = order_id


def validate(order):
    if order["qty"] <= 0:
        raise OrderError(order["id"], "empty")
    return order["qty"] * order["price"]


def process(orders):
    totals = []
    failures = 0
    for order in orders:
        try:
            totals.append(validate(order))
        except OrderError as exc:
            failures += 1
            last = exc.order_id
    return totals, failures, last


def reraise():
    try:
        {}["missing"]
    except KeyError as exc:
        raise ValueError("wrapped") from exc


def main():
    orders = [
        {"id": 1, "qty": 2, "price": 3.5},
        {"id": 2, "qty": 0, "price": 1.0},
        {"id": 3, "qty": 1, "price": 10.0},
    ]
    summary = process(orders)
    try:
        reraise()
    except ValueError as exc:
        cause = type(exc.__cause__).__name__
    return summary, cause


main()
