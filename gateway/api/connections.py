"""Bounds on what one HTTP connection may cost: the server half of the front door.

uvicorn, left to itself, keeps a connection open as long as the client likes while the
request head or body is incomplete (it arms its idle timer only *after* a response), and
its ``httptools`` parser accepts a request head of any size. A client that sends half a
head, a ``Content-Length: 100`` with two bytes, or nothing at all therefore held a socket
and its buffers for good, and an 8 MB header line was parsed and answered. nginx bounds
the same things (``client_header_timeout``, ``client_body_timeout``,
``large_client_header_buffers``, ``worker_connections``); ``GuardedHttpToolsProtocol``
does so here, per connection, with the limits of ``HttpSettings``:

=====================  ==========================================================
``header_timeout``     from the connection's start, or the first byte of a later
                       request, until the end of the request head: closed past it
``body_timeout``       from the end of the head until the whole body has arrived
``max_header_bytes``   request line and headers together: 431 and close above it
``max_connections``    open connections per process: one more is closed at once,
                       before anything is read, so a flood costs no buffers
``keep_alive``         idle time between requests (uvicorn's ``timeout_keep_alive``)
=====================  ==========================================================

While the application works on a request nothing is timed here: a long ``Prefer: wait``
is bounded by the orders settings, not by these. A body that arrives in time but is
never read by the application pauses reading (uvicorn's flow control), and the body
timeout then closes the connection.

The head size is bounded by the bytes of the reads that carried it: while a head is
incomplete, more than ``max_header_bytes`` of them close the connection (431), so an
endless header line is cut off one read past the limit instead of being buffered; once
the head is complete and those reads exceed the limit (a large body in the same read,
say), the head's exact size decides. A read that ends one pipelined request with a large
body and starts the next counts whole for the next head: that check errs on the side of
refusing, for a practice (pipelining) clients have all but abandoned.

Why not uvicorn's ``limit_concurrency``: it accepts every connection and answers 503 once
a head has arrived, so it bounds work but neither sockets nor the memory of slow heads.

The limits come from the application (``connection_limits`` of ``GatewayApp``, built from
the same settings), because uvicorn hands a protocol only its own ``Config``, and the
application is the one object every worker process builds from the settings.
"""

from __future__ import annotations

import asyncio
import json
import types
from dataclasses import dataclass
from typing import Any

from prometheus_client import Counter
from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import (
    STATUS_LINE,
    HttpToolsProtocol,
    RequestResponseCycle,
)
from uvicorn.server import ServerState

from gateway.settings import HttpSettings

PROTOCOL = "gateway.api.connections:GuardedHttpToolsProtocol"
"""The ``http`` option of ``uvicorn.run`` (an import string, so worker processes import it)."""

CONNECTIONS_CLOSED = Counter(
    "gateway_http_connections_closed_total",
    "Connections the server closed on its own, by reason: header_timeout, body_timeout, "
    "header_too_large, too_many_connections.",
    ["reason"],
)


@dataclass(frozen=True, slots=True)
class ConnectionLimits:
    """What one connection may cost; defaults are ``HttpSettings``' defaults."""

    header_timeout: float = HttpSettings.model_fields["header_timeout_seconds"].default
    body_timeout: float = HttpSettings.model_fields["body_timeout_seconds"].default
    max_header_bytes: int = HttpSettings.model_fields["max_header_bytes"].default
    max_connections: int = HttpSettings.model_fields["max_connections"].default

    @classmethod
    def from_settings(cls, http: HttpSettings) -> ConnectionLimits:
        return cls(
            header_timeout=http.header_timeout_seconds,
            body_timeout=http.body_timeout_seconds,
            max_header_bytes=http.max_header_bytes,
            max_connections=http.max_connections,
        )


def limits_of(app: Any) -> ConnectionLimits:
    """The limits an application declares, looking through uvicorn's own wrappers
    (``ProxyHeadersMiddleware``, the trace logger), each of which keeps its ``.app``."""
    for _ in range(8):
        limits = getattr(app, "connection_limits", None)
        if isinstance(limits, ConnectionLimits):
            return limits
        app = getattr(app, "app", None)
        if app is None:
            break
    return ConnectionLimits()


def _header_too_large(limit: int) -> bytes:
    body = json.dumps(
        {
            "error": {
                "code": "header_too_large",
                "message": f"the request line and headers exceed {limit} bytes",
                "request_id": None,
            }
        },
        separators=(",", ":"),
    ).encode()
    return (
        b"HTTP/1.1 431 Request Header Fields Too Large\r\n"
        b"content-type: application/json\r\n"
        b"content-length: " + str(len(body)).encode() + b"\r\n"
        b"connection: close\r\n\r\n" + body
    )


#: The bytes uvicorn refuses in a response header's name (its ``HEADER_RE``) and value
#: (``HEADER_VALUE_RE``), for ``bytes.translate`` to delete.
_NAME_REFUSED = bytes([*range(0x20), 0x7F]) + b'()<>@,;:[]={} \t\\"'
_VALUE_REFUSED = bytes([*range(0x09), *range(0x0A, 0x20), 0x7F])
#: What a header line starts with (``b"content-type: "``, the name in lower case), per
#: name seen to pass (a gateway sends about a dozen different ones).
_PREFIXES: dict[bytes, bytes] = {}
#: The prefixes of the headers that change how the response is framed (uvicorn's ``send``
#: reads them), handled after the head is assembled, in their order.
_FRAMING = frozenset({b"content-length: ", b"transfer-encoding: ", b"connection: "})


def _prefix(name: bytes) -> bytes | None:
    """The line prefix of a response header called ``name``; ``None`` when uvicorn refuses
    the name (remembered when it does not)."""
    if len(name.translate(None, _NAME_REFUSED)) != len(name):
        return None
    prefix = name.lower() + b": "
    if len(_PREFIXES) < 1000:
        _PREFIXES[name] = prefix
    return prefix


class _Cycle(RequestResponseCycle):
    """uvicorn's request/response cycle, writing the response head with the same checks
    and bytes for less.

    uvicorn checks each response header's name and value with a regular expression,
    two searches per header, and a gateway answer carries a dozen headers (request id,
    five rate-limit fields, type, length, the server's date and name): the head cost
    more than the rest of the response. Here names already seen to pass are known, with
    their line prefix in lower case (one dictionary look-up per header rather than a
    check, a ``lower()`` and three comparisons), and all values are checked at once, in
    the assembled head, by deleting the refused bytes (``bytes.translate``) and counting
    them (the head's own CRLFs are the only others); a head that fails goes to uvicorn's
    own ``send``, which raises its own error. The head is then assembled exactly as
    uvicorn does (lower-case names; ``content-length``, ``transfer-encoding`` and
    ``connection`` understood the same way, in their order); the body and every other
    case are uvicorn's own code.

    The head is not written on its own either: it waits for the first body message,
    and a complete body of the declared length (every gateway answer but a stream) goes
    out with it in one ``writelines``, one system call per response instead of two (on
    loopback and on a busy server, a tenth of a search's cost). ``writelines`` rather
    than ``write(head + body)``: uvloop sends both buffers with one ``writev``, where the
    concatenation copied a search page (some 14 kB) per response, ~14,000 instructions
    of the 267,000 a search cost (asyncio's own transports join them, as before).
    Anything else writes the head, then goes to uvicorn's own code.

    ``tests/test_library_contracts.py`` compares the two byte for byte, errors included,
    and pyproject.toml pins uvicorn below the first version not tested."""

    #: The response head, waiting for the body to go out with it (``send``).
    _head: bytes | None = None

    async def send(self, message: Any) -> None:
        head = self._head
        if head is not None:
            self._head = None
            if self.disconnected:
                await super().send(message)
                return
            # The whole body of the declared length: out with the head, and the response
            # completed as uvicorn's send completes it (here rather than in a method of
            # its own: this runs for every response).
            if (
                message["type"] == "http.response.body"
                and not message.get("more_body", False)
                and self.chunked_encoding is False
                and not self.flow.write_paused
                and self.scope["method"] != "HEAD"
            ):
                body = message.get("body", b"")
                if len(body) == self.expected_content_length:
                    self.transport.writelines((head, body))  # uvloop: one writev, no copy
                    self.expected_content_length = 0
                    self.response_complete = True
                    self.message_event.set()
                    if not self.keep_alive:
                        self.transport.close()
                    self.on_response()
                    return
            # Any other body: what uvicorn writes (and raises), the head first.
            self.transport.write(head)
            await super().send(message)
            return
        if (
            self.response_started
            or self.disconnected
            or self.flow.write_paused
            or self.access_log
            or message["type"] != "http.response.start"
        ):
            await super().send(message)
            return
        status_line = STATUS_LINE.get(message["status"])
        if status_line is None:
            await super().send(message)  # raises uvicorn's own error
            return
        content = [status_line]
        framing: list[tuple[bytes, bytes]] = []
        headers = [*self.default_headers, *message.get("headers", ())]
        for name, value in headers:
            prefix = _PREFIXES.get(name) or _prefix(name)
            if prefix is None:
                await super().send(message)  # raises uvicorn's own error
                return
            if prefix in _FRAMING:
                framing.append((prefix, value))
            content += (prefix, value, b"\r\n")
        head = b"".join(content)
        # The values, checked in the head itself: the only refused bytes the status line
        # and the name prefixes bring are the CRLF ending each line.
        if len(head) - len(head.translate(None, _VALUE_REFUSED)) != 2 * (len(headers) + 1):
            await super().send(message)  # raises uvicorn's own error
            return
        status_code = message["status"]
        self.response_started = True
        self.waiting_for_100_continue = False
        has_connection_close = False
        for prefix, value in framing:
            if prefix == b"content-length: " and self.chunked_encoding is None:
                self.expected_content_length = int(value.decode())
                self.chunked_encoding = False
            elif prefix == b"transfer-encoding: " and value.lower() == b"chunked":
                self.expected_content_length = 0
                self.chunked_encoding = True
            elif prefix == b"connection: ":
                connection = [token.lower().strip() for token in value.split(b",")]
                if b"close" in connection:
                    self.keep_alive = False
                    has_connection_close = True
        if not self.keep_alive and not has_connection_close:
            head += b"connection: close\r\n"
        if (
            self.chunked_encoding is None
            and self.scope["method"] != "HEAD"
            and status_code not in (204, 304)
        ):
            self.chunked_encoding = True
            head += b"transfer-encoding: chunked\r\n"
        self._head = head + b"\r\n"


def _with_cycle(function: Any) -> Any:
    """``function`` (uvicorn's ``on_headers_complete``) creating ``_Cycle``s: the same code
    run with the name ``RequestResponseCycle`` bound to ours. Neither a copy of uvicorn's
    code (it would drift), nor each new cycle's class swapped (an object that changes
    class defeats the interpreter's attribute caches on every cycle method, which cost
    more than the head saves); ``tests/test_library_contracts.py`` checks that the
    function still builds its cycle by that name."""
    names = {**function.__globals__, "RequestResponseCycle": _Cycle}
    copy = types.FunctionType(
        function.__code__, names, function.__name__, function.__defaults__, function.__closure__
    )
    copy.__qualname__ = function.__qualname__
    return copy


_on_headers_complete = _with_cycle(HttpToolsProtocol.on_headers_complete)


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's ``httptools`` protocol with the bounds of the module docstring.

    Timers are armed only when a read ends with a request incomplete: a request whose
    head (and body) came in one read, the common case, arms none and pays a few method
    calls; the exact head size is summed only when the reads could have exceeded it."""

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self.limits = limits_of(self.app)
        self._deadline: asyncio.TimerHandle | None = None
        self._reading_head = True  # a head is being read, or awaited on a new connection
        self._reading_body = False
        self._read_size = 0
        self._head_received = 0  # bytes of the reads that carried the current head
        self._refused = False
        self._idle_since: float | None = None  # loop time of the last response, while idle

    # -- the connection

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if len(self.connections) > self.limits.max_connections:
            CONNECTIONS_CLOSED.labels("too_many_connections").inc()
            transport.close()
            return
        self._arm(self.limits.header_timeout, "header_timeout")  # silent from the start

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        if self.timeout_keep_alive_task is not None:
            self.timeout_keep_alive_task.cancel()
            self.timeout_keep_alive_task = None
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return
        self._read_size = len(data)
        if self._reading_head:
            self._head_received += self._read_size
        super().data_received(data)
        if self.transport.is_closing():
            return
        if self._reading_head:  # the read ended inside a head
            if self._head_received > self.limits.max_header_bytes:
                self._refuse_head()
            elif self._deadline is None:
                self._arm(self.limits.header_timeout, "header_timeout")
        elif self._reading_body:  # ... or inside a body
            if self._deadline is None:
                self._arm(self.limits.body_timeout, "body_timeout")
        elif self._deadline is None and self._idle_since is None and self._idle():
            # Bytes between requests that begin none (blank lines) ended the idle time
            # (the keep-alive timer lapses): the connection is watched again as one
            # awaiting a head.
            self._arm(self.limits.header_timeout, "header_timeout")

    # -- parser callbacks: the phases of a request

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._reading_head = True
        self._head_received = self._read_size  # at most this read carried it so far

    def on_headers_complete(self) -> None:
        self._reading_head = False
        if self._refused or (
            self._head_received > self.limits.max_header_bytes
            and self._head_size() > self.limits.max_header_bytes
        ):
            self._refuse_head()  # the application never sees this request
            return
        if self._deadline is not None:  # (checked here: this runs for every request)
            self._disarm()  # the head's timer; the body's is armed if a read ends inside it
        self._reading_body = True
        _on_headers_complete(self)  # uvicorn's, with a cheaper response head (_Cycle)

    def on_body(self, body: bytes) -> None:
        if not self._refused:
            super().on_body(body)

    def on_message_complete(self) -> None:
        self._reading_body = False
        if self._deadline is not None:
            self._disarm()
        if not self._refused:
            super().on_message_complete()

    # -- the keep-alive timer: one per connection, not one per request

    def on_response_complete(self) -> None:
        """uvicorn's ``on_response_complete``, statement for statement, but for the
        keep-alive timer: uvicorn schedules a ``call_later`` after every response and
        cancels it when the next request's bytes arrive, a timer made and torn down per
        request (~8,000 instructions of a search's ~255,000 under uvloop). Here the
        response only notes when the connection became idle; a timer is scheduled when
        none is pending, and when it fires (``_keep_alive_due``) it closes the connection
        if it has been idle for ``timeout_keep_alive`` since its last response, waits for
        the rest of that time if it has been idle for less, and lapses if a request is
        under way (the next response schedules another). A connection is therefore closed
        ``timeout_keep_alive`` after its last response, as uvicorn closes it.
        ``tests/test_library_contracts.py`` checks that uvicorn's method is still the one
        mirrored here."""
        self.server_state.total_requests += 1
        if self.transport.is_closing():
            return
        self._unset_keepalive_if_required()
        self.flow.resume_reading()
        if self.pipeline:
            cycle, app = self.pipeline.pop()
            self._start_asgi_task(cycle, app)
        else:
            self._idle_since = self.loop.time()
            if self.timeout_keep_alive_task is None:
                self.timeout_keep_alive_task = self.loop.call_later(
                    self.timeout_keep_alive, self._keep_alive_due
                )

    def _unset_keepalive_if_required(self) -> None:
        """The connection is no longer idle (uvicorn calls this when bytes arrive and
        before it arms its timer): the pending timer, if any, lapses when it fires."""
        self._idle_since = None

    def _keep_alive_due(self) -> None:
        self.timeout_keep_alive_task = None
        if self._idle_since is None:
            return  # a request is under way: its response schedules the next timer
        remaining = self._idle_since + self.timeout_keep_alive - self.loop.time()
        if remaining >= 0.001:  # the loops' timer resolution
            self.timeout_keep_alive_task = self.loop.call_later(remaining, self._keep_alive_due)
        else:
            self.timeout_keep_alive_handler()  # uvicorn's: close, unless already closing

    # -- helpers

    def _head_size(self) -> int:
        """The request line and header fields as parsed (``": "`` and CRLFs included)."""
        return len(self.url) + sum(len(name) + len(value) + 4 for name, value in self.headers)

    def _idle(self) -> bool:
        """No request is being read or answered on this connection."""
        return self.cycle is None or self.cycle.response_complete

    def _arm(self, seconds: float, reason: str) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(seconds, self._expire, reason)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _expire(self, reason: str) -> None:
        self._deadline = None
        if not self.transport.is_closing():
            CONNECTIONS_CLOSED.labels(reason).inc()
            self.transport.close()

    def _refuse_head(self) -> None:
        self._disarm()
        if self._refused:
            return
        self._refused = True
        CONNECTIONS_CLOSED.labels("header_too_large").inc()
        if self._idle():  # nothing else is being written on this connection
            self.transport.write(_header_too_large(self.limits.max_header_bytes))
        self.transport.close()
