"""`replay record` with small chunks: python record_small_chunks.py EVENTS [joined] record ...

The real recorder and CLI, with the per-thread batch size (normally 4096 events) lowered so a
small test program makes many chunks and every chunk-boundary path of the engine is exercised.
With `joined`, the writer counts as behind at every write and joins a thread's full lists into
chunks of up to four (as it does when a program outruns it), so chunks of different sizes meet.
"""

import sys

import replay.recorder.csysmon as c_cores
import replay.recorder.settrace as settrace_core
import replay.recorder.state as recorder_state
import replay.recorder.sysmon as sysmon_core

# Imported before the batch size is lowered, so that it keeps its own (the recorder's): a list of
# `size` events is not a full one to it, and is never joined with others unless `joined` says.
import replay.recorder.writer as writer

size = int(sys.argv[1])
# Every core's copy: the Python cores read theirs, the C cores are given csysmon's.
recorder_state.BATCH_EVENTS = sysmon_core.BATCH_EVENTS = settrace_core.BATCH_EVENTS = size
c_cores.BATCH_EVENTS = size
args = sys.argv[2:]
if args[:1] == ["joined"]:
    writer.BATCH_EVENTS = size
    writer.MERGED_CHUNK_EVENTS = 4 * size
    writer.BEHIND_LISTS = 1
    args = args[1:]

from replay.cli import main  # noqa: E402 - after the batch size is set

sys.exit(main(args))
