"""The shop's catalog: what it sells, at what price, and the coupons it honours."""

PRICES = {
    "notebook": 4.50,
    "pen": 1.20,
    "backpack": 32.00,
    "stapler": 9.90,
    "mug": 7.25,
}

# Fraction of the subtotal each coupon takes off.
COUPONS = {
    "WELCOME10": 0.10,
    "SPRING25": 0.25,
    "STAFF": 1.00,  # the bug's accomplice: staff orders come out free
}


def price_of(item: str) -> float:
    return PRICES[item]


def discount_for(code: str | None) -> float:
    if code is None:
        return 0.0
    return COUPONS.get(code, 0.0)
