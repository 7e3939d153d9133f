#!/usr/bin/env bash
# Run the test suite on every supported Python: 3.11, 3.12 and 3.13.
#
# For each version found (pyenv's ~/.pyenv/versions/3.X.*, or python3.X on PATH) it makes
# .venvs/py3.X if missing, installs the project editable with its test extras, and runs
# `python -m pytest -q` from the repository root. A version that is not installed is skipped,
# except when CI=true: there it counts as a failure. Ends with one line per version; exits
# non-zero if any version failed.
#
#   scripts/test.sh                      every version
#   PYTHONS="3.12" scripts/test.sh       one version
#   scripts/test.sh -k cli -x            extra arguments go to pytest
set -uo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$REPO_ROOT"

versions=(${PYTHONS:-3.11 3.12 3.13})
declare -A results=()
failed=0

for version in "${versions[@]}"; do
    echo "=== Python $version"
    if ! python="$(find_python "$version")"; then
        if [[ "${CI:-}" == "true" ]]; then
            results[$version]="FAILED (Python $version not found)"
            failed=1
        else
            results[$version]="skipped (Python $version not found)"
        fi
        echo "${results[$version]}"
        continue
    fi
    if ! ensure_venv "$version" "$python"; then
        results[$version]="FAILED (could not set up .venvs/py$version)"
        failed=1
        continue
    fi
    if ".venvs/py$version/bin/python" -m pytest -q "$@"; then
        results[$version]="passed"
    else
        results[$version]="FAILED"
        failed=1
    fi
done

echo
echo "=== Summary"
for version in "${versions[@]}"; do
    echo "Python $version: ${results[$version]}"
done
exit "$failed"
