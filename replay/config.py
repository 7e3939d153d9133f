"""What a recording is asked to capture: one frozen settings object, and its trip to children.

The CLI builds a RecordConfig from its options; `replay record -- COMMAND` hands it to every child
Python process through one environment variable (REPLAY_CONFIG, JSON), where the bootstrap rebuilds
it. Environment knobs read anywhere in replay are listed here so they can be found in one place:

- REPLAY_STORE: default store path when --store is not given.
- REPLAY_CONFIG: set by `replay record` for child processes; its presence starts a recorder.
- REPLAY_CORE: force the per-event core (`python` or `c`), see replay/recorder/core.py.
- REPLAY_VALUE_MODEL: `trees` (the default) or `records`: how changed values are written (object
  records, the version model's stages (b) and (c) in docs/internals.md, "The plan"), see
  replay/recorder/versions.py.
- REPLAY_PARENT: set by a recording process for its children: the parent's recording id.
- REPLAY_ON_BACKLOG: default of `replay record --on-backlog` (`block` or `drop`): what a traced
  thread does when the writer is behind by more than the memory bound (see writer.py).
- REPLAY_INJECT_FAULT: tests only; makes the recorder fail on a variable of that name.
- REPLAY_INJECT_WRITER_DELAY: tests only; seconds the writer sleeps per chunk it writes, so that
  it falls behind on purpose (the backlog policies are tested with it).
"""

from __future__ import annotations

import json
import os
from typing import NamedTuple

DEFAULT_STORE_NAME = "replay.db"
ENV_STORE = "REPLAY_STORE"
ENV_CONFIG = "REPLAY_CONFIG"
ENV_CORE = "REPLAY_CORE"
ENV_INJECT_FAULT = "REPLAY_INJECT_FAULT"
ENV_VALUE_MODEL = "REPLAY_VALUE_MODEL"
VALUE_MODELS = ("trees", "records")
ENV_ON_BACKLOG = "REPLAY_ON_BACKLOG"
ENV_INJECT_WRITER_DELAY = "REPLAY_INJECT_WRITER_DELAY"

BACKENDS = ("auto", "sysmon", "settrace")
BACKLOG_POLICIES = ("block", "drop")
"""`--on-backlog`: `block` waits for the writer, `drop` drops events and records a GAP."""

DEFAULT_MAX_DEPTH = 4
DEFAULT_MAX_ITEMS = 64
DEFAULT_MAX_STRING = 1024


class RecordConfig(NamedTuple):
    """Everything a recorder needs to know, fixed before the program starts.

    A NamedTuple, not a dataclass: `dataclasses` imports `inspect` (and with it `ast` and
    `tokenize`), about 10 ms of every recorded process's start for nothing it needs.
    """

    store: str
    """Absolute path of the store file."""
    scope_root: str
    """Files under this directory are the user's code (the default scope): the current
    directory when `replay record` ran."""
    command: tuple[str, ...] = ()
    """The command as the user gave it (for `replay ls`)."""
    name: str | None = None
    program_dir: str | None = None
    """The directory of the program's script (None: no script, as with -m or -c). When it lies
    outside `scope_root`, its files are the user's code too, as `python script.py` puts it
    first on sys.path: `replay record /opt/app/main.py` run from anywhere records the app."""
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    backend: str = "auto"
    max_depth: int = DEFAULT_MAX_DEPTH
    max_items: int = DEFAULT_MAX_ITEMS
    max_string: int = DEFAULT_MAX_STRING
    redact: tuple[str, ...] = ()
    """Extra regular expressions for names whose values are never stored."""
    redact_defaults: bool = True
    on_backlog: str = "block"
    """What a traced thread does when the writer is behind by more than the memory bound:
    `block` (wait for it) or `drop` (drop the events, counted, and mark the place with a GAP)."""
    max_overhead: float | None = None
    """`--max-overhead`: the recorder's time allowed, as a fraction of the program's own time,
    before hot code is recorded at call level only, then not at all (replay/recorder/budget.py);
    None: no budget."""
    parent_id: int | None = None
    """The recording of the process that started this one, if any."""

    def to_env(self) -> str:
        """Serialise for REPLAY_CONFIG."""
        return json.dumps(self._asdict())

    @classmethod
    def from_env(cls, text: str) -> RecordConfig:
        """Rebuild from REPLAY_CONFIG; unknown keys (a newer replay) are ignored."""
        data = json.loads(text)
        known = set(cls._fields)
        kwargs = {k: v for k, v in data.items() if k in known}
        for name in ("command", "include", "exclude", "redact"):
            if name in kwargs:
                kwargs[name] = tuple(kwargs[name])
        return cls(**kwargs)


def program_dir_of(script: str) -> str:
    """The directory `python script` puts first on sys.path: the script's own, or the
    directory itself when `script` is one (a directory holding a __main__.py). A zip
    application gives the zip's directory, which holds the paths of the code inside it."""
    path = os.path.abspath(script)
    return path if os.path.isdir(path) else os.path.dirname(path)


def scope_directories(root: str, program_dir: str | None) -> tuple[str, ...]:
    """The directories whose files are the user's code by default, resolved: the scope root,
    then the program's directory unless it is the root or below it (the root covers it)."""
    resolved_root = os.path.realpath(root)
    if program_dir is None:
        return (resolved_root,)
    resolved = os.path.realpath(program_dir)
    if (resolved.rstrip(os.sep) + os.sep).startswith(resolved_root.rstrip(os.sep) + os.sep):
        return (resolved_root,)
    return (resolved_root, resolved)


def default_store_path() -> str:
    """REPLAY_STORE if set, else replay.db in the current directory (absolute)."""
    return os.path.abspath(os.environ.get(ENV_STORE) or DEFAULT_STORE_NAME)


def default_on_backlog() -> str:
    """REPLAY_ON_BACKLOG if set, else `block` (checked by the caller, like an option value)."""
    return os.environ.get(ENV_ON_BACKLOG, "").strip() or "block"


def injected_writer_delay() -> float:
    """Test hook: REPLAY_INJECT_WRITER_DELAY seconds per chunk written (0 when unset or bad)."""
    try:
        delay = float(os.environ.get(ENV_INJECT_WRITER_DELAY) or 0)
    except ValueError:
        return 0.0
    return delay if delay > 0 else 0.0
