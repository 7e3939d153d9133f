"""Which code is the user's: the scope decision, made once per file and cached.

By default the user's code is every file under the scope root (the current directory when
recording started) and under the program's own directory (the script's, when it lies
elsewhere), except virtual environments, site-packages, the standard library and replay
itself. `--include GLOB` adds files, `--exclude GLOB` removes them; a glob matches the absolute
path or the path relative to the scope root, and an exclude wins over an include.

The cores ask `Scope.wants(filename)` once per code object and cache the answer (on 3.12+ an
out-of-scope code object is told DISABLE and never calls back again).
"""

from __future__ import annotations

import fnmatch
import os
import re
import sys
import sysconfig

import replay
from replay.config import scope_directories

_REPLAY_DIR = os.path.dirname(os.path.abspath(replay.__file__))
# storage/ and tui/ live beside replay/ in a source checkout; installed, they are inside it.
_REPLAY_SOURCE_ROOT = os.path.dirname(_REPLAY_DIR)
_REPLAY_OWN_DIRS = tuple(
    os.path.join(_REPLAY_SOURCE_ROOT, name) + os.sep for name in ("replay", "storage", "tui")
)

_own_files: dict[str, bool] = {}


def is_replay_code(filename: str) -> bool:
    """True for code of replay itself (the recorder's callbacks, the identity map's weak reference
    callback...): the settrace cores never show it as a call of the program's, even when it runs
    on a program frame's behalf (a weak reference callback fires where an object dies)."""
    own = _own_files.get(filename)
    if own is None:
        own = _own_files[filename] = bool(filename) and os.path.realpath(filename).startswith(
            _REPLAY_OWN_DIRS
        )
    return own


_VENV_MARKERS = re.compile(r"[/\\](site-packages|dist-packages|\.?venvs?|\.tox|\.nox)[/\\]")


def _library_roots() -> tuple[str, ...]:
    """Directories that hold the interpreter's own library, never the user's code."""
    roots: set[str] = set()
    paths = sysconfig.get_paths()  # expands the scheme's templates at each call: once
    for key in ("stdlib", "platstdlib", "purelib", "platlib"):
        path = paths.get(key)
        if path:
            roots.add(os.path.realpath(path))
    for prefix in {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix}:
        roots.add(os.path.realpath(os.path.join(prefix, "lib")))
    return tuple(root + os.sep for root in roots)


class Scope:
    """Decides whether a file's code is recorded. Pure function of the path; cached."""

    def __init__(
        self,
        root: str,
        include: tuple[str, ...] = (),
        exclude: tuple[str, ...] = (),
        program_dir: str | None = None,
    ) -> None:
        directories = scope_directories(root, program_dir)
        self.root = directories[0]
        self.program_dir = directories[1] if len(directories) > 1 else None
        """The program's directory when it is not under `root` (else None): also in scope."""
        self._prefixes = tuple(directory.rstrip(os.sep) + os.sep for directory in directories)
        self.include = include
        self.exclude = exclude
        self._library = _library_roots()
        self._cache: dict[str, bool] = {}

    def wants(self, filename: str) -> bool:
        """True when code from `filename` is the user's code and should be recorded."""
        cached = self._cache.get(filename)
        if cached is None:
            cached = self._cache[filename] = self._decide(filename)
        return cached

    def _decide(self, filename: str) -> bool:
        if not filename or filename.startswith("<"):
            # <string>, <frozen ...>, <stdin>: no file to show, unless asked for by name.
            return self._matches(filename, self.include) and not self._matches(
                filename, self.exclude
            )
        path = os.path.realpath(filename)
        if path.startswith(_REPLAY_OWN_DIRS):
            return False
        if self._matches(path, self.exclude):
            return False
        if self._matches(path, self.include):
            return True
        prefix = next((p for p in self._prefixes if path.startswith(p)), None)
        if prefix is None or path.startswith(self._library):
            return False
        # Below the root only: a project that itself lives in a folder named `venvs` stays in.
        return not _VENV_MARKERS.search(os.sep + path[len(prefix) :])

    def _matches(self, path: str, globs: tuple[str, ...]) -> bool:
        if not globs:
            return False
        relative = os.path.relpath(path, self.root) if os.path.isabs(path) else path
        return any(fnmatch.fnmatch(path, g) or fnmatch.fnmatch(relative, g) for g in globs)
