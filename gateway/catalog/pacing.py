"""Building an index without long pauses for the requests served meanwhile.

An index is rebuilt in a worker thread while the event loop keeps answering, but the two
share one GIL: the loop waits whenever the builder is inside one long C call (a
``sorted`` of 100k tuples, say, holds the GIL for ~0.1 s), or when a collection of the
cyclic garbage collector walks the millions of objects the build has just made, or
each time the loop wakes while the builder runs (up to the GIL's switch interval). So
the build sorts in bounded runs (``paced_sorted``) and runs with the collector paused
and a short switch interval (``paced_build``); snapshots are decoded in small chunks
(``gateway.catalog.snapshot.CHUNK_SIZE``); and the service frees the index it replaced
in slices (``drained``, ``CatalogIndex.teardown``: dropped whole, a 100k index frees
millions of objects in one ~50 ms cascade), then hands the freed memory back to the
system (``trim_heap``).

Even without long C calls, a builder that takes its full share of the GIL halves the
throughput of the process and lets requests queue behind one another (32 busy
connections: a p99 of ~50 ms at 100k). So a build also runs under a duty cycle
(``duty_cycle``): at its checkpoints (``checkpoint``, every product staged, every few
hundred documents indexed, between sort runs) it sleeps in proportion to the CPU it has
used, so that it takes at most ``catalog.build_cpu_share`` of a CPU; a longer build for a
loop that keeps answering at nearly its full rate.

Measured by ``python -m bench rebuild_under_load`` (search latency while a 100k-product
snapshot is swapped in under load).
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import functools
import gc
import heapq
import itertools
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar

T = TypeVar("T")

#: Items one ``sorted`` call takes at most: a few milliseconds of GIL at a time.
RUN = 2048

#: How often the interpreter hands the GIL to another thread during a build.
SWITCH_INTERVAL = 0.001

#: CPU a builder uses between two of its rests (``duty_cycle``).
SLICE_SECONDS = 0.002

_builds = 0  # paced_build blocks running now
_saved = (True, 0.005)  # the collector's state and switch interval before the first
_builds_lock = threading.Lock()
_local = threading.local()  # .cycle: the duty cycle of the build running in this thread


class _DutyCycle:
    __slots__ = ("cpu", "due", "rest_per_cpu")

    def __init__(self, share: float) -> None:
        self.rest_per_cpu = (1 - share) / share
        self.cpu = time.thread_time()
        self.due = time.perf_counter() + SLICE_SECONDS

    def rest(self) -> None:
        used = time.thread_time() - self.cpu
        if used >= SLICE_SECONDS:
            time.sleep(used * self.rest_per_cpu)  # releases the GIL: the loop runs freely
            self.cpu = time.thread_time()
        self.due = time.perf_counter() + SLICE_SECONDS


@contextlib.contextmanager
def duty_cycle(share: float) -> Iterator[None]:
    """Make the ``checkpoint`` calls of this thread rest so that it uses at most
    ``share`` (0 < share <= 1; 1: never rest) of a CPU while the block runs.

    The rest is measured in the thread's own CPU time, so a builder already slowed by a
    busy loop rests less: the cap, not a fixed slowdown. Rests release the GIL outright,
    so the loop then runs without waiting for the switch interval at all."""
    if not 0 < share <= 1:
        raise ValueError(f"a build's CPU share must be in (0, 1], not {share}")
    previous = getattr(_local, "cycle", None)
    _local.cycle = _DutyCycle(share) if share < 1 else None
    try:
        yield
    finally:
        _local.cycle = previous


def checkpoint() -> None:
    """A point where a build may rest (``duty_cycle``); nearly free otherwise (a
    thread-local look-up and a clock read): call it every ~10 µs of work or more."""
    cycle = getattr(_local, "cycle", None)
    if cycle is not None and time.perf_counter() >= cycle.due:
        cycle.rest()


def release(items: list[Any]) -> None:
    """Empty ``items`` a slice at a time, with checkpoints between (a list holding the
    only references to 100k tuples frees them in one C-level cascade when it goes:
    ~10 ms with the GIL held)."""
    for _ in drained(items, RUN):
        checkpoint()


def drained(container: list[Any] | dict[Any, Any], size: int) -> Iterator[None]:
    """Empty ``container`` ``size`` items at a time, yielding after each slice: the
    caller decides what runs between two (the event loop's other work, say). A list
    loses its tail, a dict its latest entries (``popitem``), so neither moves the rest."""
    if isinstance(container, list):
        while container:
            del container[-size:]
            yield
        return
    pop = container.popitem
    while container:
        for _ in range(min(size, len(container))):
            pop()
        yield


def paced_sorted(items: Sequence[T], key: Callable[[T], Any] | None = None) -> list[T]:
    """``sorted(items, key=key)`` (stable, same result), but sorted in runs of ``RUN``
    and merged by ``heapq.merge`` (Python code, between whose steps the interpreter can
    hand the GIL over), never in one long C call."""
    if len(items) <= RUN:
        return sorted(items, key=key)  # type: ignore[type-var, arg-type]
    runs = []
    for start in range(0, len(items), RUN):
        runs.append(sorted(items[start : start + RUN], key=key))  # type: ignore[type-var, arg-type]
        checkpoint()
    merged = heapq.merge(*runs, key=key)  # type: ignore[arg-type]
    out: list[T] = []
    while True:
        size = len(out)
        out.extend(itertools.islice(merged, RUN // 4))
        if len(out) == size:
            return out
        checkpoint()


def sorted_order(keys: Sequence[Any]) -> list[int]:
    """``range(len(keys))`` sorted by ``keys[i]``, stable (``paced_sorted``)."""
    return paced_sorted(range(len(keys)), key=keys.__getitem__)


@contextlib.contextmanager
def paced_build() -> Iterator[None]:
    """Run a build beside the event loop: the cyclic garbage collector off, and the GIL
    handed between threads every ``SWITCH_INTERVAL`` instead of every 5 ms. Nested and
    concurrent uses count: the previous settings come back when the last one ends.

    A build allocates millions of objects that all survive: every collection it
    triggers would walk them, tens of milliseconds with the GIL held, for nothing
    (reference counting still frees everything else meanwhile; the service freezes the
    new index, ``gc.freeze``, before the collector comes back). And while the builder
    thread holds the GIL, the event loop waits up to the switch interval each time it
    wakes to answer a request: a shorter one bounds that wait."""
    global _builds, _saved
    with _builds_lock:
        if _builds == 0:
            _saved = (gc.isenabled(), sys.getswitchinterval())
            gc.disable()
            sys.setswitchinterval(SWITCH_INTERVAL)
        _builds += 1
    try:
        yield
    finally:
        with _builds_lock:
            _builds -= 1
            if _builds == 0:
                collector_was_on, interval = _saved
                sys.setswitchinterval(interval)
                if collector_was_on:
                    gc.enable()


@functools.cache
def _malloc_trim() -> Any:
    """glibc's ``malloc_trim``, or None elsewhere (musl, macOS)."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return libc.malloc_trim
    except (OSError, AttributeError):
        return None


def trim_heap() -> None:
    """Give the C heap's free pages back to the system (glibc's ``malloc_trim``).

    An index replaced by a new one leaves ~100 MB of freed blocks at 100k products in
    the C heap, scattered among live ones, which glibc keeps (the process's RSS stays
    at old + new); trimming returns them. Blocking (tens of ms on a large heap) but
    without the GIL (a ctypes call releases it): run it in a thread."""
    trim = _malloc_trim()
    if trim is not None:
        trim(0)
