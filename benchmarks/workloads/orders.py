"""Order processing with the types business code holds: slotted dataclasses, Decimal money,
datetimes, namedtuples, enums, dicts of customers.

Each round takes the open orders, prices their lines (Decimal arithmetic, a discount by
customer tier), stamps them with a datetime, moves them through an Enum status and keeps a
ledger. The values a recorder re-checks after every line are objects made of those types,
which is where a recorder that reads only plain classes and builtin containers falls back to
its slow path (2026-11-27: the C core walked none of them; each such value went to the Python
encoder at every re-check).

Usage: python orders.py [SIZE]; prints `checksum: ...` and, on stderr, `inner-seconds: ...`.
"""

from __future__ import annotations

import enum
import sys
import time
from collections import namedtuple
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

DEFAULT_SIZE = 40

Address = namedtuple("Address", "street city country")


class Status(enum.Enum):
    NEW = "new"
    PRICED = "priced"
    SHIPPED = "shipped"


@dataclass(slots=True)
class Line:
    sku: str
    quantity: int
    unit_price: Decimal
    discount: Decimal = Decimal("0")


@dataclass(slots=True)
class Order:
    number: int
    customer: str
    address: Address
    lines: list[Line]
    created: datetime
    status: Status = Status.NEW
    total: Decimal = Decimal("0")
    history: list[tuple[datetime, Status]] = field(default_factory=list)


TIERS = {"gold": Decimal("0.10"), "silver": Decimal("0.05"), "bronze": Decimal("0")}
CUSTOMERS = {f"c{n}": ("gold", "silver", "bronze")[n % 3] for n in range(20)}
START = datetime(2026, 11, 27, 9, 0)


def make_orders(count: int) -> list[Order]:
    orders = []
    for n in range(count):
        lines = [
            Line(f"sku-{(n * 7 + k) % 50:03d}", 1 + (n + k) % 4, Decimal(199 + 37 * k) / 100)
            for k in range(4)
        ]
        address = Address(f"{n} Main St", ("Lyon", "Oslo", "Lima")[n % 3], "XX")
        orders.append(Order(n, f"c{n % 20}", address, lines, START + timedelta(minutes=n)))
    return orders


def price(order: Order) -> Decimal:
    rate = TIERS[CUSTOMERS[order.customer]]
    total = Decimal("0")
    for line in order.lines:
        line.discount = (line.unit_price * rate).quantize(Decimal("0.01"))
        total += (line.unit_price - line.discount) * line.quantity
    order.total = total
    return total


def advance(order: Order, now: datetime) -> None:
    if order.status is Status.NEW:
        order.status = Status.PRICED
    elif order.status is Status.PRICED:
        order.status = Status.SHIPPED
    else:
        order.status = Status.NEW
    order.history.append((now, order.status))
    if len(order.history) > 4:
        del order.history[0]


def run(size: int) -> str:
    orders = make_orders(50)
    ledger: dict[str, Decimal] = {}
    now = START
    for _ in range(size):
        now += timedelta(seconds=30)
        for order in orders:
            total = price(order)
            advance(order, now)
            ledger[order.customer] = ledger.get(order.customer, Decimal("0")) + total
    return f"{sum(ledger.values())}/{len(ledger)}"


def main() -> None:
    """Run with the size from argv[1]; print the checksum (stdout) and in-process time (stderr)."""
    size = int(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_SIZE
    started = time.perf_counter()
    checksum = run(size)
    elapsed = time.perf_counter() - started
    print(f"checksum: {checksum}")
    print(f"inner-seconds: {elapsed:.6f}", file=sys.stderr)


if __name__ == "__main__":
    main()
