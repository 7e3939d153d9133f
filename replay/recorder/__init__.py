"""The recorder: one recording of one process, from start() to stop().

`Recorder` (control.py) owns the pieces of a recording and their order of assembly: the store,
the recording row, the shared per-event state, the per-event core and the writer thread.
Process-level concerns (exit paths, signals, children) are in session.py; the per-event work in
state.py and the cores; which core records, in backends.py.

This file imports nothing: `replay record -- COMMAND` takes what it needs from this package
(backends.py, children.py, runner.py) in a process that records nothing itself, and loading the
encoder, the cores and the writer along with the package cost it 12 ms of its 87 (`-- true`).
"""
