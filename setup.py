"""Builds the optional C extensions; the rest is in pyproject.toml.

- replay.recorder._ctracer, the C recording cores (replay/recorder/_ctracer.c). It reads CPython
  3.11 to 3.13 frame internals, so it is built there only; elsewhere replay records with its
  pure-Python cores (see replay/recorder/core.py).
- replay.storage._columns, the codec's column loops (storage/_columns.c) and its writer of
  values without the GIL (storage/_dumps.c), on every CPython: public C API only. Without it
  storage/codec.py runs the same loops in Python and `marshal.dumps` (chunks that decode the same).
  It also holds the recorder's store writes through SQLite's C API (storage/_sqlite.c), with
  the library found at run time; without it the sqlite3 module writes the same rows.
- replay.recorder._scan, the writer's index scan loop (replay/recorder/_scan.c), on every
  CPython: public C API only. Without it writer.py runs the same loop in Python (same rows).
- replay._expand, the readers' expansion of object records into trees (replay/_expand.c), on
  every CPython: public C API only. Without it replay/object_records.py expands every name (the
  same trees).

All are optional: without a compiler the install still succeeds.
"""

import sys

from setuptools import Extension, setup

ext_modules = []
if sys.implementation.name == "cpython":
    ext_modules.append(
        Extension(
            "replay.storage._columns",
            ["storage/_columns.c", "storage/_dumps.c", "storage/_sqlite.c", "storage/_zstd.c"],
            depends=[
                "storage/_callrecord.h",
                "storage/_dumps.h",
                "storage/_packedevents.h",
                "storage/_dlfind.h",
                "storage/_sqlite.h",
                "storage/_zstd.h",
            ],
            # dlopen (storage/_zstd.c, storage/_sqlite.c): in libc since glibc 2.34, in libdl
            # before.
            libraries=["dl"] if sys.platform.startswith("linux") else [],
            optional=True,
            extra_compile_args=["-O2"] if sys.platform != "win32" else [],
        )
    )
    ext_modules.append(
        Extension(
            "replay.recorder._scan",
            ["replay/recorder/_scan.c"],
            depends=["replay/recorder/_eventbuffer.h", "storage/_callrecord.h"],
            optional=True,
            extra_compile_args=["-O2"] if sys.platform != "win32" else [],
        )
    )
    ext_modules.append(
        Extension(
            "replay._expand",
            ["replay/_expand.c"],
            optional=True,
            extra_compile_args=["-O2"] if sys.platform != "win32" else [],
        )
    )
if sys.implementation.name == "cpython" and (3, 11) <= sys.version_info[:2] <= (3, 13):
    ext_modules.append(
        Extension(
            "replay.recorder._ctracer",
            [
                "replay/recorder/_ctracer.c",
                "replay/recorder/_fingerprint.c",
                "replay/recorder/_encode.c",
                "replay/recorder/_eventbuffer.c",
                "replay/recorder/_attrs.c",
            ],
            depends=[
                "replay/recorder/_fingerprint.h",
                "replay/recorder/_attrs.h",
                "replay/recorder/_ctracer_settrace.c.h",
                "replay/recorder/_eventbuffer.h",
                "storage/_packedevents.h",
            ],
            optional=True,
            # Hidden visibility: the calls between the extension's own files (the fingerprint
            # walk's name and serial lookups, once per attribute) are direct, not through the
            # PLT; the module's init function is exported by PyMODINIT_FUNC.
            extra_compile_args=["-O2", "-fvisibility=hidden"] if sys.platform != "win32" else [],
        )
    )

setup(ext_modules=ext_modules)
