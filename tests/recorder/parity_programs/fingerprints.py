"""Corner cases of the C core's content fingerprints (replay/recorder/_fingerprint.c), each
changed in place: hidden values under secret names (attributes, dict keys, (name, value)
pairs), the per-value node budget, big ints, long strings, and values the walk does not mirror
(sets, slots, subclasses of builtins), which are encoded every time; Decimals equal in value
but not in text (their content is remembered per object)."""

from decimal import Decimal


class Conf:
    def __init__(self):
        self.password = "hunter2"
        self.user = "ann"


class Slotted:
    __slots__ = ("a",)


class MyList(list):
    pass


def main():
    conf = Conf()
    conf.password = 12345
    conf.user = "bob"
    headers = [("Authorization", "Bearer x"), ("Accept", "*/*")]
    headers[0] = ("Authorization", 7)
    headers.append(["Token", "t"])
    settings = {"api_key": "k1", "debug": False}
    settings["api_key"] = b"k2"
    settings["debug"] = True
    wide = [list(range(40)) for _ in range(40)]
    wide[39][39] = -1
    wide[0][0] = -1
    wide.append(1)
    big = [10**40]
    big[0] += 1
    text = ["x" * 2000]
    text[0] += "y"
    tags = {1, 2}
    tags.add(3)
    slotted = Slotted()
    slotted.a = [1]
    slotted.a.append(2)
    subclassed = MyList([1])
    subclassed.append(2)
    cookies = [(b"Cookie", "c=1")]
    cookies[0] = (b"Cookie", "c=2")
    prices = [Decimal("1.0"), Decimal("2.5")]
    prices[0] = Decimal("1.00")  # equal to the one before, shown otherwise
    for _ in range(3):
        prices.append(prices[0] + 0)  # new objects, equal in value and text
        prices[1] = prices[1] * 1  # the same value, another object
    prices[0] = prices[0].normalize()
    return conf, headers, settings, wide, big, text, tags, slotted, subclassed, cookies, prices


main()
