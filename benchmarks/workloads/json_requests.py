"""A JSON request handler in a loop: parse a body, route, validate, compute, dump a response.

No server and no sockets: requests are (method, path, body) triples made deterministically, and a
small framework (a router, validators, handlers, an error boundary that turns exceptions into 4xx
and 5xx responses) serves them one after another. About 6% of requests are invalid (400) and
about 1% hit a bug in a handler (500), so a recorder that keeps only failed requests has
something to keep. The json module's C accelerator does the parsing and dumping; everything
around it is the user's Python.

Usage: python json_requests.py [SIZE]; prints `checksum: ...` and, on stderr, `inner-seconds: ...`.
"""

from __future__ import annotations

import json
import sys
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

DEFAULT_SIZE = 6000

PRODUCTS = {
    f"sku-{n:03d}": {"price_cents": 199 + 37 * n, "tax_rate": (5, 10, 20)[n % 3]} for n in range(50)
}
COUPONS = {"SAVE10": 10, "SAVE25": 25, "HALF": 50}


class ValidationError(Exception):
    """The request body is not acceptable (400)."""


class NotFound(Exception):
    """No such route or resource (404)."""


@dataclass
class Request:
    """One incoming request."""

    method: str
    path: str
    body: str


@dataclass
class Response:
    """One outgoing response."""

    status: int
    body: str
    headers: dict[str, str] = field(default_factory=dict)


def require(data: dict[str, Any], name: str, kind: type, minimum: float | None = None) -> Any:
    """Fetch a required field, check its type and lower bound."""
    if name not in data:
        raise ValidationError(f"missing field {name!r}")
    value = data[name]
    if not isinstance(value, kind) or isinstance(value, bool):
        raise ValidationError(f"field {name!r} must be {kind.__name__}")
    if minimum is not None and value < minimum:
        raise ValidationError(f"field {name!r} must be >= {minimum}")
    return value


def validate_order(data: dict[str, Any]) -> dict[str, Any]:
    """Validate an order body and normalise it."""
    customer = require(data, "customer", str)
    items = require(data, "items", list)
    if not items:
        raise ValidationError("an order needs items")
    lines = []
    for item in items:
        sku = require(item, "sku", str)
        if sku not in PRODUCTS:
            raise ValidationError(f"unknown sku {sku!r}")
        quantity = require(item, "quantity", int, minimum=1)
        lines.append((sku, quantity))
    coupon = data.get("coupon")
    if coupon is not None and coupon not in COUPONS:
        raise ValidationError(f"unknown coupon {coupon!r}")
    return {"customer": customer.strip().lower(), "lines": lines, "coupon": coupon}


def price_order(order: dict[str, Any]) -> dict[str, Any]:
    """Compute line totals, discount and tax, in cents."""
    subtotal = 0
    tax = 0
    lines = []
    for sku, quantity in order["lines"]:
        product = PRODUCTS[sku]
        amount = product["price_cents"] * quantity
        subtotal += amount
        tax += amount * product["tax_rate"] // 100
        lines.append({"sku": sku, "quantity": quantity, "amount": amount})
    discount = subtotal * COUPONS.get(order["coupon"] or "", 0) // 100
    if order["customer"].endswith("7") and discount > 0:
        # The bug the 500s come from: a "loyalty" rule that divides by the wrong count.
        discount += subtotal // (len(lines) - len(order["lines"]))
    total = subtotal - discount + tax
    return {"lines": lines, "subtotal": subtotal, "discount": discount, "tax": tax, "total": total}


def create_order(request: Request, _params: dict[str, str]) -> Response:
    """POST /orders."""
    order = validate_order(json.loads(request.body))
    priced = price_order(order)
    priced["customer"] = order["customer"]
    return Response(201, json.dumps(priced, sort_keys=True), {"Content-Type": "application/json"})


def get_product(_request: Request, params: dict[str, str]) -> Response:
    """GET /products/<sku>."""
    sku = params["sku"]
    if sku not in PRODUCTS:
        raise NotFound(sku)
    return Response(200, json.dumps({"sku": sku, **PRODUCTS[sku]}, sort_keys=True))


ROUTES: list[tuple[str, tuple[str, ...], Callable[[Request, dict[str, str]], Response]]] = [
    ("POST", ("orders",), create_order),
    ("GET", ("products", "<sku>"), get_product),
]


def route(request: Request) -> tuple[Callable[[Request, dict[str, str]], Response], dict[str, str]]:
    """Match the method and path against ROUTES, binding <params>."""
    parts = tuple(part for part in request.path.split("/") if part)
    for method, pattern, handler in ROUTES:
        if method != request.method or len(pattern) != len(parts):
            continue
        params = {}
        for want, got in zip(pattern, parts, strict=True):
            if want.startswith("<"):
                params[want[1:-1]] = got
            elif want != got:
                break
        else:
            return handler, params
    raise NotFound(request.path)


def handle(request: Request) -> Response:
    """The error boundary: every exception becomes a response."""
    try:
        handler, params = route(request)
        return handler(request, params)
    except ValidationError as exc:
        return Response(400, json.dumps({"error": str(exc)}))
    except (NotFound, json.JSONDecodeError) as exc:
        return Response(404 if isinstance(exc, NotFound) else 400, json.dumps({"error": str(exc)}))
    except Exception as exc:  # a server's last line of defence
        return Response(500, json.dumps({"error": type(exc).__name__}))


def make_requests(count: int) -> list[Request]:
    """A deterministic mix of orders (some invalid, some hitting the bug) and product look-ups."""
    state = 12345
    requests = []
    for n in range(count):
        state = (state * 1103515245 + 12345) & 0x7FFFFFFF
        if n % 5 == 4:
            requests.append(Request("GET", f"/products/sku-{state % 55:03d}", ""))
            continue
        items = [
            {"sku": f"sku-{(state >> shift) % 50:03d}", "quantity": 1 + (state >> shift) % 4}
            for shift in range(0, 3 + state % 4)
        ]
        body: dict[str, Any] = {"customer": f" Customer{state % 1000} ", "items": items}
        if state % 3 == 0:
            body["coupon"] = ("SAVE10", "SAVE25", "HALF")[state % 9 // 3]
        if state % 17 == 0:
            body["items"][0]["quantity"] = 0
        requests.append(Request("POST", "/orders", json.dumps(body)))
    return requests


def run(size: int) -> str:
    """Serve `size` requests; the checksum counts statuses and CRCs the response bodies."""
    statuses: dict[int, int] = {}
    crc = 0
    for request in make_requests(size):
        response = handle(request)
        statuses[response.status] = statuses.get(response.status, 0) + 1
        crc = zlib.crc32(response.body.encode(), crc)
    counts = ",".join(f"{status}:{n}" for status, n in sorted(statuses.items()))
    return f"{counts}/{crc}"


def main() -> None:
    """Run with the size from argv[1]; print the checksum (stdout) and in-process time (stderr)."""
    size = int(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_SIZE
    start = time.perf_counter()
    checksum = run(size)
    elapsed = time.perf_counter() - start
    print(f"checksum: {checksum}")
    print(f"inner-seconds: {elapsed:.6f}", file=sys.stderr)


if __name__ == "__main__":
    main()
