#!/usr/bin/env bash
# Lint: ruff check and ruff format --check over the repository, with the ruff of the newest venv.
set -euo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$REPO_ROOT"

venv="$(newest_venv)"
"$venv/bin/ruff" check .
"$venv/bin/ruff" format --check .
