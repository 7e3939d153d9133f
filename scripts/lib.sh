# Shared by scripts/*.sh: find a Python by version, and make the project's venv for it.
# Venvs live in .venvs/py3.X and hold the project installed editable with its test extras.

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

# find_python 3.12 -> prints the path of a working python3.12, or nothing.
# pyenv's versions first ($HOME/.pyenv/versions/3.12.*), then python3.12 on PATH. Each candidate
# is run, because a pyenv shim on PATH can exist and still refuse to start.
find_python() {
    local version="$1" candidate
    local -a candidates=()
    for candidate in "$HOME"/.pyenv/versions/"$version".*/bin/python; do
        [[ -x "$candidate" ]] && candidates+=("$candidate")
    done
    candidate="$(command -v "python$version" 2>/dev/null || true)"
    [[ -n "$candidate" ]] && candidates+=("$candidate")
    # Newest patch release first: pyenv's glob sorts 3.12.10 before 3.12.9, so sort -V.
    while IFS= read -r candidate; do
        [[ -z "$candidate" ]] && continue
        if "$candidate" -c "import sys; sys.exit(sys.version_info[:2] != tuple(map(int, '$version'.split('.'))))" >/dev/null 2>&1; then
            echo "$candidate"
            return 0
        fi
    done < <(printf '%s\n' "${candidates[@]}" | sort -rV)
    return 1
}

# True when the build's inputs (pyproject.toml, setup.py, C sources) changed since `stamp`.
_build_inputs_newer_than() {
    local stamp="$1"
    [[ -n "$(find "$REPO_ROOT/pyproject.toml" "$REPO_ROOT/setup.py" "$REPO_ROOT/replay" \
        \( -name pyproject.toml -o -name setup.py -o -name '*.c' -o -name '*.h' \) \
        -newer "$stamp" -print -quit 2>/dev/null)" ]]
}

# ensure_venv 3.12 PYTHON -> .venvs/py3.12 exists, works, and has the project installed.
# Reinstalls (pip install -e) when the build's inputs changed since the last install, so the
# optional C core is rebuilt after its sources change.
ensure_venv() {
    local version="$1" python="$2" venv="$REPO_ROOT/.venvs/py$1"
    local stamp="$venv/.replay-installed"
    if ! "$venv/bin/python" -c "pass" >/dev/null 2>&1; then
        echo "creating $venv with $python"
        rm -rf "$venv"
        "$python" -m venv "$venv" || return 1
    fi
    if [[ ! -f "$stamp" ]] || _build_inputs_newer_than "$stamp"; then
        local log="$venv/install.log"
        echo "installing replay (editable, with test extras) into $venv"
        if ! "$venv/bin/python" -m pip install -e "$REPO_ROOT[test]" >"$log" 2>&1; then
            tail -n 30 "$log" >&2
            echo "pip install failed; the whole log is in $log" >&2
            return 1
        fi
        touch "$stamp"
    fi
}

# newest_venv -> makes (if needed) the venv of the newest Python found among 3.13, 3.12, 3.11
# and prints its directory.
newest_venv() {
    local version python
    for version in 3.13 3.12 3.11; do
        if python="$(find_python "$version")"; then
            ensure_venv "$version" "$python" >&2 || return 1
            echo "$REPO_ROOT/.venvs/py$version"
            return 0
        fi
    done
    echo "no Python 3.11, 3.12 or 3.13 found (looked in ~/.pyenv/versions and on PATH)" >&2
    return 1
}
