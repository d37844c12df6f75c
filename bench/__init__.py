"""Benchmarks: ``python -m bench [name ...]`` runs every module here that defines
``run() -> dict`` (or the named ones), each printing its own table.

Adding a benchmark is adding a module with a ``run()``: it prints what a person reads and
returns its figures as a dict (the runner prints nothing else but a header and timing).
Modules whose name starts with ``_`` and the shared helpers listed in ``HELPERS`` are not
benchmarks.
"""

HELPERS = frozenset({"synthetic"})
