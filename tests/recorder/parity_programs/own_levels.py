"""Plain objects whose attributes change in every way an instance dict can, re-checked line after
line: on 3.11 and 3.12 the C core keeps each instance dict's attributes while the dict's version
tag stands (replay/recorder/_fingerprint.c, walk_own_level), and must see every one of these
changes as the Python core, which encodes every value again, does. Also an object met with less
budget than when its attributes were kept (a long list of them), a secret-looking attribute, and
a dict replaced or emptied under the same object."""


class Box:
    def __init__(self, n):
        self.n = n
        self.label = "box"
        self.inner = None
        self.values = [n]


class Other:
    pass


def bump(box):
    box.n += 1


def main():
    a, b = Box(1), Box(2)
    a.inner = b
    holder = [a, b]
    for i in range(6):
        bump(b)
        a.n = i
        setattr(a, "label", f"l{i % 2}")  # noqa: B010 - the generic path, not STORE_ATTR
        a.__dict__["extra"] = i
        vars(b).update(n=i * 10, label="b")
        if i % 2:
            del a.extra
        else:
            a.__dict__.pop("extra")
        b.n = b.n
        b.values.append(i)
        a.password = "hunter" + str(i)
        b.__dict__.clear()
        b.__dict__.update(n=i, label="again", inner=None, values=[i])
        a.__dict__ = dict(a.__dict__)
        a.__class__ = Other if i % 2 else Box
    return holder


def many():
    rows = [Box(k) for k in range(120)]
    last = rows[-1]
    first = rows[0]
    for k in range(4):
        last.n = k
        first.label = "first" if k % 2 else "row"
        rows[60].values.append(k)
        last.label = rows[1].label
    return rows


main()
many()
