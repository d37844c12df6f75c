"""Run benchmarks: ``python -m bench`` (all) or ``python -m bench search_latency memory``."""

from __future__ import annotations

import importlib
import pkgutil
import sys
import time
from collections.abc import Callable
from typing import Any

import bench


def discover() -> list[str]:
    """Every benchmark module: a module of this package with a ``run`` function."""
    names = []
    for info in pkgutil.iter_modules(bench.__path__):
        if info.name.startswith("_") or info.name in bench.HELPERS:
            continue
        names.append(info.name)
    return sorted(names)


def main(argv: list[str]) -> int:
    available = discover()
    if any(arg in ("-h", "--help") for arg in argv):
        print(__doc__)
        print("available:", " ".join(available))
        return 0
    unknown = [name for name in argv if name not in available]
    if unknown:
        print(f"unknown benchmark(s): {', '.join(unknown)}", file=sys.stderr)
        print(f"available: {' '.join(available)}", file=sys.stderr)
        return 2
    failed = []
    for name in argv or available:
        module = importlib.import_module(f"bench.{name}")
        run: Callable[[], dict[str, Any]] | None = getattr(module, "run", None)
        if run is None:
            print(f"bench.{name} has no run(); skipped", file=sys.stderr)
            continue
        print(f"\n=== {name} ===", flush=True)
        started = time.perf_counter()
        try:
            run()
        except Exception as exc:  # one broken benchmark must not hide the others' figures
            failed.append(name)
            print(f"bench.{name} failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        print(f"({name}: {time.perf_counter() - started:.1f} s)", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
