"""A tiny shop that prices the day's orders: the program `make demo` records.

It has a bug. Order 4 uses the STAFF coupon, which takes 100% off, so its total is 0.0, and
`savings_rate` then divides by that total: ZeroDivisionError, uncaught. `replay show` points at
the failing frame with its locals (total = 0.0, coupon = 'STAFF'), and the API key and the
password below appear in the recording only as <redacted>.
"""

import os

from catalog import discount_for, price_of
from orders import Order, todays_orders

API_KEY = "sk-demo-1234-not-a-real-key"


class PaymentGateway:
    def __init__(self, api_key: str, password: str) -> None:
        self.api_key = api_key
        self.password = password
        self.charged: list[tuple[str, float]] = []

    def charge(self, customer: str, amount: float) -> None:
        self.charged.append((customer, round(amount, 2)))


def subtotal(order: Order) -> float:
    total = 0.0
    for item, quantity in order.lines.items():
        total += price_of(item) * quantity
    return total


def savings_rate(subtotal_amount: float, total: float) -> float:
    saved = subtotal_amount - total
    return saved / total  # the bug: a 100% coupon makes total == 0


def process(order: Order, gateway: PaymentGateway) -> tuple[float, float]:
    before = subtotal(order)
    discount = discount_for(order.coupon)
    total = before * (1 - discount)
    rate = savings_rate(before, total)
    gateway.charge(order.customer, total)
    return total, rate


def main() -> None:
    password = os.environ.get("SHOP_GATEWAY_PASSWORD", "hunter2")
    gateway = PaymentGateway(API_KEY, password)
    revenue = 0.0
    for order in todays_orders():
        total, rate = process(order, gateway)
        revenue += total
        print(f"order {order.number}: {order.customer:<9} {total:7.2f}  (saved {rate:.0%})")
    print(f"revenue: {revenue:.2f}")


if __name__ == "__main__":
    main()
