"""Recursion, mutual recursion, objects and containers for paths in expressions."""


class Item:
    def __init__(self, name, price):
        self.name = name
        self.price = price


class Order:
    def __init__(self):
        self.items = []
        self.total = 0


def fib(n):
    if n < 2:
        return n
    a = fib(n - 1)
    b = fib(n - 2)
    return a + b


def is_even(n):
    return True if n == 0 else is_odd(n - 1)


def is_odd(n):
    return False if n == 0 else is_even(n - 1)


def checkout(order):
    total = 0
    for item in order.items:
        total += item.price
    order.total = total
    return total


def main():
    results = []
    for i in range(14):
        results.append(fib(i % 8))
    order = Order()
    for k in range(5):
        order.items.append(Item(f"item{k}", k * 3))
    paid = checkout(order)
    parity = [is_even(k) for k in range(12)]
    name = "xxabcxx"
    del paid
    return results, parity, name


main()
