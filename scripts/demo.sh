#!/usr/bin/env bash
# The demo: record the bundled shop (demo/shop.py fails on order 4, on purpose), then show
# the failure. Uses .venvs/py3.X of the newest Python found (3.13, 3.12, 3.11), made if needed.
set -euo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$REPO_ROOT"

venv="$(newest_venv)"
rm -f demo.db demo.db-wal demo.db-shm

echo "\$ replay record --store demo.db demo/shop.py"
status=0
"$venv/bin/replay" record --store demo.db demo/shop.py || status=$?
if [[ "$status" -ne 1 ]]; then
    echo "demo: expected the shop to fail with exit status 1, got $status" >&2
    exit 1
fi
echo
echo "(exit status 1: the shop crashed, as it should in this demo; the recording was kept)"
echo
echo "\$ replay show --store demo.db"
"$venv/bin/replay" show --store demo.db
echo
echo "Next: replay ls --store demo.db, replay export --store demo.db -o demo.json"
