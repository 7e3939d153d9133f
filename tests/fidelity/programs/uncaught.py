"""An exception that escapes the program: the recording must be kept and marked failed."""


class Cart:
    def __init__(self, items):
        self.items = items
        self.discount = 1.0

    def average(self):
        total = sum(price for _, price in self.items)
        return total / (len(self.items) * (1 - self.discount))


def checkout(cart):
    average = cart.average()
    return round(average, 2)


cart = Cart([("apple", 1.5), ("pear", 2.0)])
checkout(cart)
