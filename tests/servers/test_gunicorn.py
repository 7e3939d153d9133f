"""`replay record -- gunicorn app:app`: a real pre-fork server on loopback, real HTTP requests.

The master and each forked worker are their own recordings in one store; the request handlers'
steps are in the workers' recordings; SIGTERM to replay reaches gunicorn, which stops cleanly.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
import urllib.request
from pathlib import Path

import pytest

pytest.importorskip("gunicorn")
pytestmark = pytest.mark.slow

APP = """
import json

def app(environ, start_response):
    path = environ["PATH_INFO"]
    order = {"id": int(path.strip("/") or 0), "items": [1, 2, 3]}
    total = sum(order["items"]) * order["id"]
    body = json.dumps({"total": total}).encode()
    start_response("200 OK", [("Content-Type", "application/json")])
    return [body]
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(port: int, deadline: float) -> None:
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise AssertionError(f"gunicorn did not listen on {port}")


def test_gunicorn_master_and_workers_are_recorded(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text(textwrap.dedent(APP))
    port = free_port()
    store = tmp_path / "web.db"
    gunicorn = str(Path(sys.executable).with_name("gunicorn"))
    server = subprocess.Popen(
        [sys.executable, "-m", "replay", "record", "--store", str(store), "--",
         gunicorn, "-w", "2", "-b", f"127.0.0.1:{port}", "app:app"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        wait_for(port, time.monotonic() + 60)
        totals = []
        for order_id in range(1, 7):
            url = f"http://127.0.0.1:{port}/{order_id}"
            with urllib.request.urlopen(url, timeout=30) as response:
                totals.append(json.loads(response.read())["total"])
        assert totals == [6 * n for n in range(1, 7)]
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=60)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
    listing = subprocess.run(
        [sys.executable, "-m", "replay", "ls", "--store", str(store), "--json"],
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    recordings = json.loads(listing.stdout)
    by_id = {row["id"]: row for row in recordings}
    masters = [row for row in recordings if row["parent_id"] is None]
    workers = [row for row in recordings if row["parent_id"] is not None]
    assert len(masters) == 1, recordings
    assert len(workers) >= 2, recordings
    assert all(by_id[w["parent_id"]] is masters[0] for w in workers)
    assert all(row["status"] != "running" for row in recordings), recordings
    # The handler ran in the workers: every request's total is in some worker's recording.
    seen_totals = set()
    for worker in workers:
        export = subprocess.run(
            [sys.executable, "-m", "replay", "export", str(worker["id"]), "--store", str(store),
             "--format", "json"],
            capture_output=True, text=True, timeout=60, check=True,
        )  # fmt: skip
        for step in json.loads(export.stdout)["steps"]:
            if step["function"] == "app" and "total" in step["changes"]:
                seen_totals.add(step["changes"]["total"]["repr"])
    assert seen_totals == {str(6 * n) for n in range(1, 7)}
    assert os.path.getsize(store) > 0
