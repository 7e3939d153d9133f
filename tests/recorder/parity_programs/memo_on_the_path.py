"""A part the C core's part memo remembers from one value of a line's check, met again in
another value below one of its own parts: there that part is on the path, so the encoder shows
it as a back reference, and the memo's copy (which walked it as a part) must not stand for it
(replay/recorder/_fingerprint.c, part_memo_find). `p` and `q` hold each other; `x` holds `p` at
depth 2, where its walk points back only at itself and is remembered; `y` holds `q`, below which
`p` is met at the same depth with `q` on the path."""


def main():
    p = []
    q = [p]
    p.append(q)
    x = [[p]]
    y = [q]
    for i in range(4):
        p.append(i)
    return x, y


main()
