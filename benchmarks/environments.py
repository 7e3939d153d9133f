"""Where the benchmarks run: the Pythons found, their venvs, and the test-suite workload's files.

Every dependency is installed by this module, from PyPI, into venvs of the suite's own
(benchmarks/.venvs/py3.X), never into the project's development venvs: the project itself
(editable, so the recorder measured is the working tree's) with its `bench` optional-dependency
group, which pins the peers (viztracer, coverage, PySnooper) and the test-suite library. A venv is
reinstalled when pyproject.toml or a C source of the project changes (a stamp file records a hash
of them), so a rebuilt accelerator is always the one measured.
"""

from __future__ import annotations

import glob
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks import CACHE_DIR, REPO_ROOT, VENVS_DIR
from benchmarks.suite import TEST_SUITE_LIBRARY, test_suite_dir
from benchmarks.tracers import Venv

SUPPORTED = ("3.11", "3.12", "3.13")
COMPILED = ("replay", "storage", "tui", "benchmarks/library")
"""Source trees byte-compiled for each Python before every run (`compile_sources`)."""
STAMP_NAME = ".bench-stamp"
PEERS = ("viztracer", "coverage", "pysnooper", "pytest", TEST_SUITE_LIBRARY, "replay-tracer")

Log = Callable[[str], None]


class SetupError(Exception):
    """A venv or download could not be made; the message says which command failed."""


@dataclass
class VenvSetup:
    """A ready venv and what it holds."""

    venv: Venv
    packages: dict[str, str] = field(default_factory=dict)
    """Distribution name -> installed version (missing ones left out)."""
    project_error: str | None = None
    """Why the project could not be installed (replay columns are then n/a)."""


def find_python(version: str) -> tuple[str, str] | None:
    """(executable, full version) of a working Python `version`: pyenv's first, then PATH's."""
    pattern = os.path.expanduser(f"~/.pyenv/versions/{version}.*/bin/python")
    found = sorted(glob.glob(pattern), key=_patch_level, reverse=True)
    on_path = shutil.which(f"python{version}")
    if on_path:
        found.append(on_path)
    for candidate in found:
        full = _python_version(candidate)
        if full is not None and full.startswith(f"{version}."):
            return candidate, full
    return None


def _patch_level(path: str) -> tuple[int, ...]:
    name = Path(path).parent.parent.name  # ~/.pyenv/versions/3.12.1/bin/python -> 3.12.1
    return tuple(int(p) if p.isdigit() else -1 for p in name.split("."))


def _python_version(executable: str) -> str | None:
    # A pyenv shim for a version that is not selected exits non-zero: that is "not found".
    code = "import sys; print('%d.%d.%d' % sys.version_info[:3])"
    try:
        done = subprocess.run(
            [executable, "-c", code], capture_output=True, text=True, timeout=30, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def bench_requirements() -> list[str]:
    """The `bench` optional-dependency group of pyproject.toml."""
    with open(REPO_ROOT / "pyproject.toml", "rb") as f:
        project = tomllib.load(f)["project"]
    return list(project["optional-dependencies"]["bench"])


def pinned(distribution: str) -> str:
    """The `name==version` pin of a distribution in the bench group."""
    for requirement in bench_requirements():
        name = requirement.split("==")[0].strip()
        if name.lower() == distribution.lower() and "==" in requirement:
            return requirement.strip()
    raise SetupError(f"pyproject.toml's bench group pins no {distribution}==VERSION")


def install_stamp(full_version: str) -> str:
    """A hash of what an install depends on: pyproject, setup files, C sources, the Python."""
    digest = hashlib.sha256(full_version.encode())
    paths = [REPO_ROOT / name for name in ("pyproject.toml", "setup.py", "setup.cfg")]
    for top in ("replay", "storage", "tui"):
        for suffix in ("*.c", "*.h", "*.pyx", "*.pxd"):
            paths.extend(sorted((REPO_ROOT / top).rglob(suffix)))
    for path in paths:
        if path.is_file():
            digest.update(str(path.relative_to(REPO_ROOT)).encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


def ensure_venv(
    version: str, base_python: str, full_version: str, log: Log, *, reinstall: bool = False
) -> VenvSetup:
    """Create or refresh benchmarks/.venvs/py<version> and return what it holds."""
    venv = Venv(version=version, root=VENVS_DIR / f"py{version}", full_version=full_version)
    if reinstall and venv.root.exists():
        shutil.rmtree(venv.root)
    if not Path(venv.python).exists():
        log(f"creating {venv.root}")
        _run([base_python, "-m", "venv", str(venv.root)], log)
    stamp_file = venv.root / STAMP_NAME
    stamp = install_stamp(full_version)
    project_error = None
    if not stamp_file.exists() or stamp_file.read_text() != stamp:
        log(f"installing the project and the bench group into {venv.root} (pip, from PyPI)")
        try:
            _pip(venv, ["install", "-e", f"{REPO_ROOT}[bench]"], log)
            stamp_file.write_text(stamp)
        except SetupError as exc:
            # The peers can still be measured: install the pins alone, mark replay n/a, and
            # leave no stamp so that the next run tries the project again.
            project_error = f"pip install -e . failed: {exc}"
            log(project_error)
            _pip(venv, ["install", *bench_requirements()], log)
    compile_sources(venv, log)
    return VenvSetup(venv=venv, packages=installed_versions(venv), project_error=project_error)


def compile_sources(venv: Venv, log: Log) -> None:
    """Byte-compile the project's sources, and the library a workload imports, for this Python,
    as pip does on a regular install (an editable one compiles nothing).

    Why: where PYTHONDONTWRITEBYTECODE is set (or the tree is read-only), a module changed since
    its last .pyc is compiled again in every measured process, and that counted as replay's
    start-up: a few of its 60 ms on the `startup` workload. Only stale files are written.
    """
    _run(
        [venv.python, "-m", "compileall", "-q", *(str(REPO_ROOT / tree) for tree in COMPILED)], log
    )


def installed_versions(venv: Venv) -> dict[str, str]:
    """Versions of the peers, the test-suite library and the project in the venv."""
    code = (
        "import importlib.metadata as m, json, sys\n"
        "out = {}\n"
        "for name in sys.argv[1:]:\n"
        "    try: out[name] = m.version(name)\n"
        "    except m.PackageNotFoundError: pass\n"
        "print(json.dumps(out))\n"
    )
    done = subprocess.run(
        [venv.python, "-c", code, *PEERS], capture_output=True, text=True, check=False
    )
    return json.loads(done.stdout) if done.returncode == 0 else {}


def fetch_test_suite(venv: Venv, log: Log) -> Path:
    """Download the pinned library's sdist (once) and extract its tests/ into the cache.

    Only tests/ is extracted, into a directory that holds no copy of the library: pytest's
    `python -m` puts the current directory on sys.path, and the tests must import the installed
    (out-of-scope) library, not a source copy beside them.
    """
    requirement = pinned(TEST_SUITE_LIBRARY)
    dest = test_suite_dir()
    marker = dest / ".source"
    if marker.exists() and marker.read_text() == requirement and (dest / "tests").is_dir():
        _write_pytest_ini(dest)
        return dest
    sdist_dir = CACHE_DIR / "sdist"
    sdist_dir.mkdir(parents=True, exist_ok=True)
    log(f"downloading the {requirement} sdist for its tests")
    _pip(
        venv,
        ["download", "--no-deps", "--no-binary", ":all:", requirement, "-d", str(sdist_dir)],
        log,
    )
    version = requirement.split("==")[1]
    stem = TEST_SUITE_LIBRARY.replace("-", "_")
    archives = sorted(sdist_dir.glob(f"{stem}-{version}.tar.gz")) or sorted(
        sdist_dir.glob(f"{TEST_SUITE_LIBRARY}-{version}.tar.gz")
    )
    if not archives:
        raise SetupError(f"pip download left no {stem}-{version}.tar.gz in {sdist_dir}")
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    _extract_tests(archives[0], dest)
    if not (dest / "tests").is_dir():
        raise SetupError(f"{archives[0].name} has no tests/ directory")
    _write_pytest_ini(dest)
    marker.write_text(requirement)
    return dest


def _write_pytest_ini(dest: Path) -> None:
    # Without an ini file here, pytest would walk up to the repository's pyproject.toml and
    # take the project's own settings (rootdir, addopts) for this workload.
    ini = dest / "pytest.ini"
    if not ini.exists():
        ini.write_text(
            "# Written by benchmarks/environments.py: makes this directory pytest's rootdir,\n"
            "# so the settings in the repository's pyproject.toml do not apply here.\n"
            "[pytest]\n"
        )


def _extract_tests(archive: Path, dest: Path) -> None:
    with tarfile.open(archive) as tar:
        members = []
        for member in tar.getmembers():
            parts = Path(member.name).parts
            if len(parts) > 2 and parts[1] == "tests" and (member.isfile() or member.isdir()):
                member.name = str(Path(*parts[1:]))
                members.append(member)
        if hasattr(tarfile, "data_filter"):
            tar.extractall(dest, members=members, filter="data")
        else:  # pragma: no cover - Python < 3.11.4
            tar.extractall(dest, members=members)  # regular files and dirs only


def _pip(venv: Venv, args: list[str], log: Log) -> None:
    _run([venv.python, "-m", "pip", "--disable-pip-version-check", "-q", *args], log)


def _run(argv: list[str], log: Log) -> None:
    """Run a setup command; on failure raise SetupError with the end of its output."""
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        output = (done.stdout + done.stderr).strip().splitlines()
        useful = [line for line in output if "is ignored: it is neither a file" not in line]
        tail = "\n".join(useful[-15:])
        raise SetupError(f"`{' '.join(argv)}` exited {done.returncode}:\n{tail}")


def describe_machine() -> dict[str, object]:
    """CPU model, cores, memory, kernel and load: the header of results.md."""
    cpu = "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    memory_gib = None
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    memory_gib = round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": memory_gib,
        "kernel": os.uname().release,
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
        "harness_python": sys.version.split()[0],
    }
