"""The C core's log of parts carried from one event to the next across quiet lines
(state.quiet_lines, _fingerprint.h fp_carry_into). Between two events such a line only rebinds
locals, calls and computes, so what the last walk learnt of an object still holds, unless the
object is not the same one: a container that died on a quiet line may be replaced at its address
by a new one that a later quiet line makes (`p + r` after `p + q` died), which the memo must not
take for the old one (part_tag: a list's size and items, a dict's version). Calls and returns of
in-scope functions carry the log too, so the callees change what the callers hold in between.
"""


def grow(xs, x):
    xs.append(x)
    return xs


def touch(box, key):
    box[key] = box.get(key, 0) + 1
    return box


def pairs(p, q, r):
    x = p + q
    y = x
    x = None
    y = None  # noqa: F841 (the list dies here)
    z = p + r
    w = z
    z = None
    w = None  # noqa: F841
    v = q + r
    u = v
    return u


def merges(a, b, c):
    d = a | b
    e = d
    d = None
    e = None  # noqa: F841
    f = a | c
    g = f
    return g


def main():
    p = [1]
    q = [2]
    r = [3]
    for _ in range(3):
        u = pairs(p, q, r)
        t = u
        grown = grow(t, 4)
        same = grown is t
    a = {"k": 1}
    b = {"b": 2}
    c = {"c": 3}
    for _ in range(3):
        g = merges(a, b, c)
        h = touch(g, "c")
        k = h
    box = {}
    for i in range(4):
        box = touch(box, i % 2)
    return same, k, box


main()
