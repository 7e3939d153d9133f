"""A small pure-Python "library" for the out-of-scope workload: make, parse and aggregate CSV.

Everything here is deliberately written as plain Python loops (a character-level CSV parser, a
group-by), so that the hot loop of `workloads/library_hot_loop.py` runs in this module, outside
the recorder's scope, and costs a tracer that does not switch off for it.
"""

from __future__ import annotations

REGIONS = ("north", "south", "east", "west", "centre")
PRODUCTS = ("anvil", "bolt", "cog", "drill", "easel", "file", "gear")


def make_csv(rows: int, seed: int = 7) -> str:
    """Deterministic CSV text: id, region, product, quantity, price, a quoted note."""
    state = seed
    out = ["id,region,product,quantity,price,note"]
    for n in range(rows):
        state = (state * 1103515245 + 12345) & 0x7FFFFFFF
        region = REGIONS[state % len(REGIONS)]
        product = PRODUCTS[(state >> 3) % len(PRODUCTS)]
        quantity = 1 + (state >> 5) % 20
        price = ((state >> 7) % 10000) / 100
        out.append(f'{n},{region},{product},{quantity},{price:.2f},"note, {n % 13}"')
    return "\n".join(out)


def parse_csv(text: str) -> list[list[str]]:
    """Parse CSV with quoted fields, one character at a time."""
    rows: list[list[str]] = []
    row: list[str] = []
    field: list[str] = []
    quoted = False
    for ch in text:
        if quoted:
            if ch == '"':
                quoted = False
            else:
                field.append(ch)
        elif ch == '"':
            quoted = True
        elif ch == ",":
            row.append("".join(field))
            field = []
        elif ch == "\n":
            row.append("".join(field))
            rows.append(row)
            row, field = [], []
        else:
            field.append(ch)
    row.append("".join(field))
    rows.append(row)
    return rows


def aggregate(rows: list[list[str]]) -> dict[str, dict[str, float]]:
    """Revenue per region and product, from parsed rows (the first row is the header)."""
    header = rows[0]
    index = {name: i for i, name in enumerate(header)}
    totals: dict[str, dict[str, float]] = {}
    for row in rows[1:]:
        region = row[index["region"]]
        product = row[index["product"]]
        revenue = int(row[index["quantity"]]) * float(row[index["price"]])
        by_product = totals.setdefault(region, {})
        by_product[product] = round(by_product.get(product, 0.0) + revenue, 2)
    return totals
