"""Building a large index in a child process, handed over a slice at a time.

Built in the serving process, a 100k-product index costs that process ~10 s of CPU,
shared with the requests through one GIL (``gateway.catalog.pacing`` keeps that from
stalling them, at the price of a build stretched over half a minute), and leaves its
small-object heap fragmented: the build's temporaries and the index's own objects are
interleaved in the allocator's arenas, so after a swap the process keeps memory it no
longer uses (measured at 100k: the index adds 180 MB of RSS built in place, 63 MB
unpickled into a process that did not build it). So the service builds catalogs of
``catalog.build_process_min_products`` products or more in a child
(``python -m gateway.catalog.build_process``); the serving process only unpickles the
result, into a heap the build never churned.

The stream, on the child's standard output, is one pickler's: objects shared between
parts of the index stay shared. The index goes first, each list, dict or set of more
than ``SLICE`` items (and ``array`` of more than ``ARRAY_SLICE``) replaced by a
reference (``persistent_id``); the receiver makes an empty container per reference and
fills it from the ``fill`` messages that follow, a slice each. No message takes more
than a few milliseconds to unpickle, and the receiver rests between two
(``pacing.checkpoint``). The last message says the index is complete and which
suppliers' snapshots could not be decoded.

The child reads its job (``BuildJob``: the snapshots' compressed chunks, the price
list, taxonomy, matcher and CPU share) from standard input, then keeps reading
it: standard input closing, because the parent died or cancelled the build, ends the
child. Its standard error is kept in a temporary file, for the error when it fails.

The receiver unpickles what it reads, which is safe only because the pipe comes from
this module's own child, started by the service with the same interpreter and code.
"""

from __future__ import annotations

import contextlib
import gc
import os
import pickle
import signal
import subprocess
import sys
import tempfile
import threading
import zlib
from array import array
from collections import deque
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from itertools import islice
from typing import IO, Any

from adapters.models import Product
from gateway.catalog.index import CatalogIndex
from gateway.catalog.matching import Matcher
from gateway.catalog.pacing import checkpoint, duty_cycle
from gateway.catalog.snapshot import LoadedSnapshot
from gateway.catalog.staging import Taxonomy
from gateway.observability.process_memory import memory_mb
from gateway.pricing import PriceList

#: Items of a large container per ``fill`` message (about a millisecond to unpickle).
SLICE = 2048
#: Items of a large ``array`` per ``fill`` message (half a megabyte: a copy).
ARRAY_SLICE = 65536
#: How long a cancelled or finished child gets to exit before it is killed.
EXIT_SECONDS = 5.0
#: The end of the child's standard error quoted when it fails.
STDERR_TAIL = 2000

_KINDS: dict[str, type] = {"list": list, "dict": dict, "set": set}


class BuildFailed(RuntimeError):
    """The child process ended without handing over an index."""


@dataclass(frozen=True)
class BuildJob:
    """What an index is built from (pickled to the child as a whole)."""

    snapshots: Mapping[str, LoadedSnapshot]
    prices: PriceList
    taxonomy: Taxonomy
    matcher: Matcher | None
    cpu_share: float

    @property
    def products(self) -> int:
        return sum(snap.meta.products for snap in self.snapshots.values())


@dataclass(frozen=True)
class Built:
    index: CatalogIndex
    #: supplier -> why its snapshot could not be decoded (its products are then
    #: incomplete in the index).
    unreadable: dict[str, str] = field(default_factory=dict)
    #: The peak RSS of the process that built it, in MB (None where unknown).
    peak_mb: float | None = None


def build(job: BuildJob) -> Built:
    """The index over ``job``'s snapshots, built in this process under the job's duty
    cycle: what the child runs, and what the service runs for small catalogs."""
    unreadable: dict[str, str] = {}

    def products() -> Iterator[Product]:
        for name, snap in job.snapshots.items():
            try:
                yield from snap.products()
            except (ValueError, zlib.error) as exc:  # ValidationError is a ValueError
                unreadable[name] = str(exc)[:500]

    with duty_cycle(job.cpu_share):
        index = CatalogIndex.build(products(), job.prices, job.taxonomy, matcher=job.matcher)
    return Built(index, unreadable)


def peak_rss_mb() -> float | None:
    """This process's peak resident memory (Linux ``VmHWM``), or None elsewhere."""
    try:
        return memory_mb().get("VmHWM")
    except OSError:
        return None


# ------------------------------------------------------------------ the stream


class _Sender(pickle.Pickler):
    def __init__(self, file: IO[bytes]) -> None:
        super().__init__(file, protocol=pickle.HIGHEST_PROTOCOL)
        self._ids: dict[int, int] = {}
        self.pending: deque[tuple[int, Any]] = deque()

    def persistent_id(self, obj: Any) -> Any:
        kind = type(obj)
        if kind is list or kind is dict or kind is set:
            if len(obj) <= SLICE:
                return None
            name = kind.__name__
        elif kind is array and len(obj) > ARRAY_SLICE:
            name = obj.typecode
        else:
            return None
        ref = self._ids.get(id(obj))
        if ref is None:
            ref = self._ids[id(obj)] = len(self._ids)
            self.pending.append((ref, obj))
        return (name, ref)


def send(built: Built, file: IO[bytes]) -> None:
    """Write ``built`` to ``file`` as the stream ``receive`` reads (module docstring)."""
    sender = _Sender(file)
    sender.dump(("index", built.index))
    while sender.pending:  # filling one container may reveal more
        ref, container = sender.pending.popleft()
        if type(container) is dict:
            pairs = iter(container.items())
            # Flat (key, value, key, ...): no tuple per item for the receiver to keep,
            # and SLICE long at most, so not itself a container to send apart.
            while chunk := [x for pair in islice(pairs, SLICE // 2) for x in pair]:
                sender.dump(("fill", ref, chunk))
                checkpoint()
        elif type(container) is array:
            for start in range(0, len(container), ARRAY_SLICE):
                sender.dump(("fill", ref, container[start : start + ARRAY_SLICE]))
                checkpoint()
        else:
            items = iter(container)
            while chunk := list(islice(items, SLICE)):
                sender.dump(("fill", ref, chunk))
                checkpoint()
    sender.dump(("done", built.unreadable, peak_rss_mb()))
    file.flush()


class _Receiver(pickle.Unpickler):
    def __init__(self, file: IO[bytes]) -> None:
        super().__init__(file)
        self.containers: dict[int, Any] = {}

    def persistent_load(self, pid: Any) -> Any:
        kind, ref = pid
        found = self.containers.get(ref)
        if found is None:
            found = self._make(kind)
            self.containers[ref] = found
        return found

    @staticmethod
    def _make(kind: str) -> Any:
        made = _KINDS.get(kind)
        return made() if made is not None else array(kind)


def receive(file: IO[bytes]) -> Built:
    """Read what ``send`` wrote, a message at a time with checkpoints between."""
    receiver = _Receiver(file)
    index: CatalogIndex | None = None
    while True:
        message = receiver.load()
        checkpoint()
        tag = message[0]
        if tag == "fill":
            container, items = receiver.containers[message[1]], message[2]
            if type(container) is dict:
                pairs = iter(items)
                container.update(zip(pairs, pairs, strict=True))
            elif type(container) is list or type(container) is array:
                container.extend(items)
            else:
                container.update(items)
        elif tag == "index":
            index = message[1]
        elif tag == "done" and isinstance(index, CatalogIndex):
            return Built(index, message[1], message[2])
        else:
            raise BuildFailed(f"unexpected message {tag!r} from the index build process")


# ------------------------------------------------------------------- processes


class ProcessBuilder:
    """Runs builds in child processes and can stop them (the service's ``stop``)."""

    def __init__(self) -> None:
        self._running: set[subprocess.Popen[bytes]] = set()
        self._lock = threading.Lock()

    def build(self, job: BuildJob) -> Built:
        """``job`` built by a child; the caller's thread receives it under the job's
        duty cycle. Raises ``BuildFailed`` when the child fails or is cancelled."""
        with tempfile.TemporaryFile() as errors:
            child = subprocess.Popen(
                [sys.executable, "-m", "gateway.catalog.build_process"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=errors,
            )
            assert child.stdin is not None and child.stdout is not None
            with self._lock:
                self._running.add(child)
            try:
                pickle.dump(job, child.stdin, protocol=pickle.HIGHEST_PROTOCOL)
                child.stdin.flush()
                with duty_cycle(job.cpu_share):
                    return receive(child.stdout)
            except (OSError, EOFError, pickle.UnpicklingError, BuildFailed) as exc:
                raise BuildFailed(_failure(child, errors)) from exc
            finally:
                with self._lock:
                    self._running.discard(child)
                _end(child)

    def cancel(self) -> None:
        """Kill the children of the builds running now (their ``build`` then raises)."""
        with self._lock:
            running = list(self._running)
        for child in running:
            child.kill()


def _end(child: subprocess.Popen[bytes]) -> None:
    """Close the child's input (which ends it) and reap it; kill it if it lingers."""
    for stream in (child.stdin, child.stdout):
        if stream is not None:
            with contextlib.suppress(OSError):
                stream.close()
    try:
        child.wait(EXIT_SECONDS)
    except subprocess.TimeoutExpired:
        child.kill()
        child.wait()


def _failure(child: subprocess.Popen[bytes], errors: IO[bytes]) -> str:
    _end(child)
    errors.seek(0)
    tail = errors.read()[-STDERR_TAIL:].decode("utf-8", "replace").strip()
    return f"the index build process exited with code {child.returncode}" + (
        f": {tail}" if tail else ""
    )


# ----------------------------------------------------------------------- child


def _exit_when_closed(stdin: IO[bytes]) -> None:
    """End this process when its input closes: the parent died or cancelled."""
    while stdin.read(65536):
        pass
    os._exit(3)


def main() -> None:
    """The child: read a job, build, stream the index to the parent."""
    # Ctrl-C in a terminal reaches the whole process group: the parent decides (it
    # cancels the build, or its exit closes our input).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # a stray print must not corrupt the stream
    job: BuildJob = pickle.load(sys.stdin.buffer)
    threading.Thread(target=_exit_when_closed, args=(sys.stdin.buffer,), daemon=True).start()
    gc.disable()  # a throw-away process: a collection would only walk what survives
    built = build(job)
    with duty_cycle(job.cpu_share):
        send(built, out)
    out.close()


if __name__ == "__main__":
    main()
