"""Run a workload script under PySnooper: `python snoop_runner.py SCRIPT SIZE`.

PySnooper traces a function (and, with `depth`, what it calls), not a whole program, so this
wrapper imports the workload as a module (its imports run untraced, which also keeps PySnooper
away from module-level comprehensions: see /work/shared/notes/traps.md item 1) and snoops one
call of its `run(size)`, every line of it and of its callees to DEPTH levels, with PySnooper's
output going to /dev/null (the formatting cost is paid, the terminal cost is not). It then prints
the same `checksum:` and `inner-seconds:` lines as the workload's own main().
"""

from __future__ import annotations

import importlib.util
import os
import sys
import time

DEPTH = 40
"""Deep enough for every call in the recursion workload at the sizes the suite uses."""


def main() -> None:
    """Import the script given in argv[1], snoop run(argv[2]), print checksum and time."""
    import pysnooper  # noqa: PLC0415 - only in the benchmark venv

    path, size = sys.argv[1], int(sys.argv[2])
    sys.path.insert(0, os.path.dirname(os.path.abspath(path)))
    spec = importlib.util.spec_from_file_location("snooped_workload", path)
    if spec is None or spec.loader is None:
        raise SystemExit(f"cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    with open(os.devnull, "w") as sink:
        snooped = pysnooper.snoop(output=sink, depth=DEPTH)(module.run)
        start = time.perf_counter()
        checksum = snooped(size)
        elapsed = time.perf_counter() - start
    print(f"checksum: {checksum}")
    print(f"inner-seconds: {elapsed:.6f}", file=sys.stderr)


if __name__ == "__main__":
    main()
