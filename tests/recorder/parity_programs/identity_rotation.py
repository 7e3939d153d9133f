"""More dicts than the identity map keeps entries for (two generations of 32,768), then a
long-lived list nobody looked at meanwhile, touched without a change, bound to a new name and
changed: its `id` must be what the Python core, which encodes it every time, gives it (the C
core's fingerprints include the map's rotation count, so its cached encodings never outlive the
ids they name). The dicts are kept alive so that no address is reused: serials then do not
depend on the allocator."""

STORE = []


def churn(n):
    for i in range(n):
        d = {"i": i}
        STORE.append(d)
    return d


def main():
    keep = [1, 2]
    alias = keep
    last = churn(70_000)
    keep.sort()
    again = keep
    keep.append(3)
    alias.append(last)
    return keep, again


main()
