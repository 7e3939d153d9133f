"""Builds the optional C core (replay/recorder/_ctracer.c); the rest is in pyproject.toml.

The extension is optional: without a compiler, or on a Python it does not support (it reads
CPython 3.12/3.13 frame internals), the install still succeeds and replay records with its
pure-Python cores (see replay/recorder/core.py).
"""

import sys

from setuptools import Extension, setup

ext_modules = []
if sys.implementation.name == "cpython" and (3, 12) <= sys.version_info[:2] <= (3, 13):
    ext_modules.append(
        Extension(
            "replay.recorder._ctracer",
            [
                "replay/recorder/_ctracer.c",
                "replay/recorder/_fingerprint.c",
                "replay/recorder/_encode.c",
            ],
            depends=["replay/recorder/_fingerprint.h"],
            optional=True,
            extra_compile_args=["-O2"] if sys.platform != "win32" else [],
        )
    )

setup(ext_modules=ext_modules)
