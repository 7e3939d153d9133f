"""`replay record` with small chunks: python record_small_chunks.py EVENTS record --store ...

The real recorder and CLI, with the per-thread batch size (normally 4096 events) lowered so a
small test program makes many chunks and every chunk-boundary path of the engine is exercised.
"""

import sys

import replay.recorder.csysmon as c_cores
import replay.recorder.settrace as settrace_core
import replay.recorder.state as recorder_state
import replay.recorder.sysmon as sysmon_core

size = int(sys.argv[1])
# Every core's copy: the Python cores read theirs, the C cores are given csysmon's.
recorder_state.BATCH_EVENTS = sysmon_core.BATCH_EVENTS = settrace_core.BATCH_EVENTS = size
c_cores.BATCH_EVENTS = size

from replay.cli import main  # noqa: E402 - after the batch size is set

sys.exit(main(sys.argv[2:]))
