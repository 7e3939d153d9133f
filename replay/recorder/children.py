"""The environment that makes a recorded program's Python children record themselves.

Every Python process a recorded program starts finds `REPLAY_CONFIG` (the recording's settings),
the bootstrap directory first on its `PYTHONPATH` (its `sitecustomize` starts the child's own
recording) and `REPLAY_PARENT` (the recording id of the process that started it). Apart from
session.py because `replay record -- COMMAND` sets it up too, in a process that records nothing
itself and loads nothing of the recorder.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from replay.config import ENV_CONFIG, RecordConfig

ENV_PARENT = "REPLAY_PARENT"
"""Set for child processes: the recording id of the process that started them."""

BOOTSTRAP_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "bootstrap")
"""The directory put first on children's PYTHONPATH; it holds only our sitecustomize.py."""


def child_environment(
    config: RecordConfig, parent_id: int | None, base: Mapping[str, str]
) -> dict[str, str]:
    """The variables that make every Python child of this process record itself."""
    env = {ENV_CONFIG: config.to_env(), "PYTHONPATH": _prepend_path(BOOTSTRAP_DIR, base)}
    if parent_id is not None:
        env[ENV_PARENT] = str(parent_id)
    return env


def _prepend_path(directory: str, base: Mapping[str, str]) -> str:
    existing = [p for p in base.get("PYTHONPATH", "").split(os.pathsep) if p and p != directory]
    return os.pathsep.join([directory, *existing])
