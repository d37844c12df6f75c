"""Where log lines go: a stream written in batches, and the handler that feeds it.

One ``write`` + ``flush`` per request line was most of what the access log cost (a
system call each, and the stream's lock), so lines are collected and written together:

* ``LineWriter.add``: a line joins the buffer, which is written ``flush_seconds`` after
  its first line (``log_flush_seconds``, default 50 ms; 0: at the end of the event-loop
  turn), at once when it holds ``max_bytes``, or at once when there is no running loop in
  this thread (a CLI tool, a worker thread). The per-request access line goes this way.
  Writing once per loop turn was not enough: under load a turn often holds one request,
  and the write + flush per turn cost a quarter of the gateway's throughput (issue 14);
  nginx's ``access_log ... flush=`` makes the same trade.
* ``LineWriter.write_now``: the buffer, then the line, written and flushed at once.
  Every line that goes through ``logging`` (warnings and errors above all) takes this
  path, so it is never delayed, and it comes after the lines buffered before it.

Nothing is lost on a graceful stop: ``flush`` runs when the interval is up, on a full
buffer, before each immediate line, at the app's shutdown (``gateway.app``) and at
interpreter exit (``atexit``). A process killed outright (SIGKILL, OOM) loses at most the
last ``flush_seconds`` of access lines, never a warning or an error. A full buffer is
written, never dropped: a reader that cannot keep up slows the gateway down, exactly as
the unbuffered stream did.
"""

from __future__ import annotations

import asyncio
import atexit
import logging
import threading
import weakref
from typing import TextIO

#: Buffered lines are written at once when they reach this size (about 250 access lines).
MAX_BUFFER_BYTES = 64 * 1024
#: How long an access line may wait in the buffer (the ``log_flush_seconds`` default).
FLUSH_SECONDS = 0.05

_WRITERS: weakref.WeakSet[LineWriter] = weakref.WeakSet()


class LineWriter:
    """Lines (``str``, each ending in a newline) to ``stream``, written in batches."""

    def __init__(
        self,
        stream: TextIO,
        *,
        max_bytes: int = MAX_BUFFER_BYTES,
        flush_seconds: float = FLUSH_SECONDS,
    ) -> None:
        self.stream = stream
        self.max_bytes = max_bytes
        self.flush_seconds = flush_seconds
        self._lines: list[str] = []
        self._size = 0
        #: The loop a flush is scheduled on (a loop that closed before running it, as
        #: tests' loops do, is simply replaced by the next one).
        self._scheduled_on: asyncio.AbstractEventLoop | None = None
        self._lock = threading.Lock()
        _WRITERS.add(self)

    def add(self, line: str, loop: asyncio.AbstractEventLoop | None) -> None:
        """Buffer ``line``; it is written within ``flush_seconds`` (or by the end of
        this event-loop turn when that is 0). ``loop``: the running loop, ``None`` when
        this thread runs none (nobody would flush later: the line is written now). The
        caller passes it because it has it: asyncio's look-up is a system call
        (``getpid``) each time, and the front door needs the loop for more than this."""
        with self._lock:
            self._lines.append(line)
            self._size += len(line)
            if loop is not None and self._size < self.max_bytes:
                if self._scheduled_on is not loop:
                    self._scheduled_on = loop
                    if self.flush_seconds > 0:
                        loop.call_later(self.flush_seconds, self._flush_scheduled)
                    else:
                        loop.call_soon(self._flush_scheduled)
                return
            self._write_locked()

    def write_now(self, line: str) -> None:
        """Write the buffered lines and ``line``, and flush the stream, now."""
        with self._lock:
            self._lines.append(line)
            self._write_locked()

    def flush(self) -> None:
        """Write whatever is buffered (any thread, any time)."""
        with self._lock:
            self._write_locked()

    def _flush_scheduled(self) -> None:
        with self._lock:
            self._scheduled_on = None
            self._write_locked()

    def _write_locked(self) -> None:
        lines, self._lines, self._size = self._lines, [], 0
        if not lines:
            return
        try:
            self.stream.write("".join(lines))
            self.stream.flush()
        except ValueError:  # the stream was closed (interpreter shutdown): nowhere to go
            pass


@atexit.register
def flush_all() -> None:
    """Write every writer's buffered lines (at shutdown, and at interpreter exit)."""
    for writer in list(_WRITERS):
        writer.flush()


class LineHandler(logging.Handler):
    """A ``logging`` handler writing through a ``LineWriter``: each record's line is
    written at once (``write_now``); ``gateway.observability.access_log`` hands it the
    per-request lines, which are batched (``writer.add``).

    ``json_lines`` says which shape the formatter writes, so that the access log renders
    its lines in the same shape without a ``LogRecord``."""

    def __init__(self, writer: LineWriter, *, json_lines: bool) -> None:
        super().__init__()
        self.writer = writer
        self.json_lines = json_lines

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.writer.write_now(self.format(record) + "\n")
        except Exception:
            self.handleError(record)

    def flush(self) -> None:
        self.writer.flush()
