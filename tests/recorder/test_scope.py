"""The scope decision (replay/recorder/scope.py): which files are the user's code."""

from __future__ import annotations

import json
import sysconfig
from pathlib import Path

from replay.recorder.scope import Scope


def _file(path: Path) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("x = 1\n")
    return str(path)


def test_the_programs_directory_joins_the_scope_when_it_lies_elsewhere(tmp_path: Path) -> None:
    root, app = tmp_path / "cwd", tmp_path / "app"
    scope = Scope(str(root), program_dir=str(app))
    assert scope.wants(_file(root / "mine.py"))
    assert scope.wants(_file(app / "main.py"))
    assert scope.wants(_file(app / "pkg" / "helper.py"))
    # Below the program's directory as below the root: virtual environments are libraries.
    assert not scope.wants(_file(app / ".venv" / "lib" / "site-packages" / "lib.py"))
    assert not scope.wants(_file(tmp_path / "other" / "x.py"))
    assert not scope.wants(json.__file__)


def test_a_program_below_the_root_adds_nothing(tmp_path: Path) -> None:
    # The program's directory inside a virtual environment under the root (a console script
    # such as .venv/bin/pytest) must not bring the environment back into the scope.
    bin_dir = tmp_path / ".venv" / "bin"
    scope = Scope(str(tmp_path), program_dir=str(bin_dir))
    assert scope.program_dir is None
    assert not scope.wants(_file(bin_dir / "pytest"))
    assert scope.wants(_file(tmp_path / "tests" / "test_x.py"))


def test_exclude_wins_in_the_programs_directory(tmp_path: Path) -> None:
    app = tmp_path / "app"
    scope = Scope(str(tmp_path / "cwd"), exclude=("*/generated/*",), program_dir=str(app))
    assert not scope.wants(_file(app / "generated" / "models.py"))
    assert scope.wants(_file(app / "main.py"))


def test_a_program_in_the_standard_library_brings_nothing_in(tmp_path: Path) -> None:
    stdlib = sysconfig.get_paths()["stdlib"]
    scope = Scope(str(tmp_path), program_dir=stdlib)
    assert not scope.wants(json.__file__)
