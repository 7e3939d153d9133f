"""The pure pieces of the command line: where replay's options end, what a process runs."""

from __future__ import annotations

from pathlib import Path

import pytest

from replay.cli.record import split_record_args
from replay.recorder.session import Outcome, is_replay_cli, outcome_of_exit

VALUE_OPTIONS = frozenset({"--store", "--name", "--include"})


@pytest.mark.parametrize(
    ("args", "expected", "command_mode"),
    [
        (["app.py", "--store", "x"], ["app.py", "--store", "x"], False),
        (["--store", "s.db", "app.py", "-q"], ["--store", "s.db", "app.py", "-q"], False),
        (["-q", "--", "python", "-m", "x"], ["-q", "--", "python", "-m", "x"], True),
        (["-m", "pkg", "--", "x"], ["-m", "pkg", "--", "x"], False),
        (["-mpkg.tool", "a"], ["-m", "pkg.tool", "a"], False),
        (["--name", "--", "app.py"], ["--name", "--", "app.py"], False),
        (["--store=x.db", "--", "cmd"], ["--store=x.db", "--", "cmd"], True),
    ],
)
def test_where_options_end(args: list[str], expected: list[str], command_mode: bool) -> None:
    assert split_record_args(args, VALUE_OPTIONS) == (expected, command_mode)


def test_replays_own_command_line_is_recognised(tmp_path: Path) -> None:
    script = tmp_path / "replay"
    script.write_text("import sys\nfrom replay.cli import main\nsys.exit(main())\n")
    other = tmp_path / "app.py"
    other.write_text("print('hi')\n")
    assert is_replay_cli(["python", "-m", "replay", "ls"])
    assert is_replay_cli(["python", "-X", "dev", "-mreplay.cli"])
    assert is_replay_cli(["python", str(script), "record", "x.py"])
    assert not is_replay_cli(["python", str(other)])
    assert not is_replay_cli(["python", "-c", "import replay"])
    assert not is_replay_cli(["python", "-m", "pytest"])


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        (None, Outcome(0, "ok")),
        (0, Outcome(0, "ok")),
        (3, Outcome(3, "failed")),
        (True, Outcome(1, "failed")),
        ("message", Outcome(1, "failed")),
    ],
)
def test_exit_codes_as_python_gives_them(code: object, expected: Outcome) -> None:
    assert outcome_of_exit(SystemExit(code)) == expected
