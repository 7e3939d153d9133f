"""Orders, and the day's orders as they arrive (fixed, so every run is the same)."""


class Order:
    def __init__(
        self, number: int, customer: str, lines: dict[str, int], coupon: str | None = None
    ) -> None:
        self.number = number
        self.customer = customer
        self.lines = lines  # item -> quantity
        self.coupon = coupon

    def quantity(self) -> int:
        return sum(self.lines.values())


def todays_orders() -> list[Order]:
    return [
        Order(1, "ada", {"notebook": 3, "pen": 10}),
        Order(2, "grace", {"backpack": 1}, coupon="WELCOME10"),
        Order(3, "linus", {"mug": 2, "pen": 2}, coupon="SPRING25"),
        Order(4, "margaret", {"stapler": 1, "notebook": 2}, coupon="STAFF"),
        Order(5, "guido", {"pen": 4}),
    ]
