"""`python -m benchmarks`: run the overhead suite (see benchmarks/overhead.py)."""

from __future__ import annotations

from benchmarks.overhead import main

raise SystemExit(main())
