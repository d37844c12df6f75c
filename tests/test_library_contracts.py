"""The private corners of libraries the gateway relies on, for speed, checked by name.

Three places skip a library's public API because nothing public is as fast:
``TalliedHistogram`` (prometheus-client's ``Histogram._buckets`` / ``_sum``), the
catalog's ``_JsonBody`` (Starlette's ``Response`` without ``Response.__init__``) and the
server's ``_Cycle`` (uvicorn's response head, written without a regular expression per
header). A fourth because nothing public exists: the webhook sender's
``_CheckedTransport`` replaces httpx's ``AsyncHTTPTransport._pool`` to connect only to
checked addresses. pyproject.toml pins these libraries below the first version not
tested; these tests say
exactly what changed when a new version breaks the assumption, before a wrong metric or
a broken response reaches anyone. Raise a pin only after this file passes on the new
version.
"""

from __future__ import annotations

from typing import Any

import pytest
from prometheus_client import Histogram
from starlette.responses import Response

from gateway.api.catalog import _JsonBody
from gateway.observability.metrics import TalliedHistogram

_PROMETHEUS = "prometheus-client changed Histogram's private values; revisit TalliedHistogram.add"
_STARLETTE = "Starlette changed Response.__init__; revisit _JsonBody in gateway/api/catalog.py"


def test_histogram_private_values_are_what_tallied_histogram_writes() -> None:
    histogram = Histogram("contract_seconds", "c", buckets=(0.1, 1.0), registry=None)
    buckets = getattr(histogram, "_buckets", None)
    total = getattr(histogram, "_sum", None)
    assert isinstance(buckets, list) and len(buckets) == 3, _PROMETHEUS  # 0.1, 1.0, +Inf
    assert total is not None, _PROMETHEUS
    for value in (*buckets, total):
        assert callable(getattr(value, "inc", None)), _PROMETHEUS
        assert callable(getattr(value, "get", None)), _PROMETHEUS
    # One observation increments exactly its own bucket (not the cumulative ones) and the
    # sum: what ``add`` does for many at once.
    histogram.observe(0.5)
    assert [bucket.get() for bucket in buckets] == [0, 1, 0], _PROMETHEUS
    assert total.get() == 0.5, _PROMETHEUS


def test_tallied_histogram_refuses_a_labelled_parent_like_observe() -> None:
    parent = TalliedHistogram("contract_labelled_seconds", "c", ["route"], registry=None)
    with pytest.raises(ValueError):
        parent.observe(1.0)
    with pytest.raises(ValueError):  # through the private check observe uses
        parent.add([1] + [0] * (len(parent._upper_bounds) - 1), 1.0)


def test_tallied_add_equals_observing_each_value() -> None:
    bounds = (0.1, 1.0)
    tallied = TalliedHistogram("contract_tallied_seconds", "c", buckets=bounds, registry=None)
    observed = Histogram("contract_observed_seconds", "c", buckets=bounds, registry=None)
    for value in (0.05, 0.5, 0.7, 3.0):
        observed.observe(value)
    tallied.add([1, 2, 1], 0.05 + 0.5 + 0.7 + 3.0)

    def samples(histogram: Histogram) -> list[tuple[str, dict[str, str], float]]:
        return [
            (s.name.rpartition("_seconds")[2], s.labels, s.value)
            for family in histogram.collect()
            for s in family.samples
            if not s.name.endswith("_created")
        ]

    assert samples(tallied) == samples(observed), _PROMETHEUS


async def _asgi_messages(response: Response) -> list[dict[str, Any]]:
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Any) -> None:
        sent.append(dict(message))

    scope = {"type": "http", "method": "GET", "path": "/", "headers": []}
    await response(scope, receive, send)
    return sent


async def test_json_body_is_the_response_starlette_would_build() -> None:
    body = b'{"data":{"products":[],"total":0}}'
    reference = Response(body, media_type="application/json")
    fast = _JsonBody(body)
    # Response.__init__ sets exactly these; _JsonBody sets the same (media_type is its
    # class attribute).
    assert set(vars(reference)) - {"media_type"} == set(vars(fast)), _STARLETTE
    assert fast.media_type == reference.media_type, _STARLETTE
    for name in vars(fast):
        assert getattr(fast, name) == getattr(reference, name), (name, _STARLETTE)
    assert await _asgi_messages(fast) == await _asgi_messages(reference), _STARLETTE


def test_httpx_transport_sends_through_the_pool_the_webhook_sender_replaces() -> None:
    import inspect

    import httpcore
    import httpx

    transport = httpx.AsyncHTTPTransport(trust_env=False)
    message = "httpx changed AsyncHTTPTransport._pool; revisit _CheckedTransport in webhooks.py"
    assert isinstance(getattr(transport, "_pool", None), httpcore.AsyncConnectionPool), message
    assert "self._pool" in inspect.getsource(httpx.AsyncHTTPTransport.handle_async_request), message


_UVICORN = (
    "uvicorn changed its httptools protocol or RequestResponseCycle.send; revisit _Cycle "
    "in gateway/api/connections.py"
)


def _cycle(cls: type, method: str = "GET", keep_alive: bool = True) -> Any:
    """A cycle of ``cls`` writing to a list, as uvicorn's protocol builds one."""
    import asyncio
    import logging
    from unittest import mock

    written: list[bytes] = []
    transport = mock.Mock()
    transport.write.side_effect = written.append
    transport.writelines.side_effect = lambda parts: written.append(b"".join(parts))
    flow = mock.Mock(write_paused=False)
    cycle = cls(
        scope={"type": "http", "method": method},
        transport=transport,
        flow=flow,
        logger=logging.getLogger("uvicorn.error"),
        access_logger=logging.getLogger("uvicorn.access"),
        access_log=False,
        default_headers=[(b"server", b"uvicorn"), (b"date", b"Sun, 06 Dec 2026 04:00:00 GMT")],
        message_event=asyncio.Event(),
        expect_100_continue=False,
        keep_alive=keep_alive,
        on_response=lambda: None,
    )
    cycle.written = written
    return cycle


@pytest.mark.parametrize(
    ("method", "keep_alive", "status", "headers", "body"),
    [
        ("GET", True, 200, [(b"content-length", b"2"), (b"X-Request-ID", b"abc")], b"{}"),
        ("GET", True, 200, [(b"content-type", b"text/plain")], b"chunked body"),
        ("HEAD", True, 200, [(b"content-type", b"application/json")], b""),
        ("GET", True, 204, [], b""),
        ("GET", False, 404, [(b"content-length", b"0")], b""),
        ("GET", True, 200, [(b"connection", b"close"), (b"content-length", b"1")], b"x"),
        ("GET", True, 200, [(b"Connection", b"Keep-Alive, Close")], b""),
        ("GET", True, 200, [(b"transfer-encoding", b"Chunked")], b"abc"),
        ("GET", True, 200, [(b"Content-Length", b"3"), (b"Transfer-Encoding", b"chunked")], b"abc"),
        ("GET", True, 200, [(b"Transfer-Encoding", b"chunked"), (b"Content-Length", b"3")], b"abc"),
        ("GET", True, 200, [(b"content-length", b"3"), (b"Content-Length", b"5")], b"abc"),
        ("GET", True, 200, [(b"X-A", b"1"), (b"connection", b"close"), (b"x-a", b"2")], b""),
        ("GET", True, 200, [(b"x-value", b"tab\tand space \x80")], b""),
        ("GET", True, 200, [(b"bad name", b"v")], b""),
        ("GET", True, 200, [(b"bad(name", b"v")], b""),
        ("GET", True, 200, [(b"x-injected", b"a\r\nset-cookie: b")], b""),
        ("GET", True, 200, [(b"x-nul", b"a\x00")], b""),
        ("GET", True, 200, [(b"x-a", b"1"), (b"x-cr", b"a\rb")], b""),
        ("GET", True, 200, [(b"x-lf", b"\nb"), (b"content-length", b"0")], b""),
        ("GET", True, 200, [(b"x-del", b"a\x7f")], b""),
        ("GET", True, 999, [(b"content-length", b"0")], b""),
    ],
)
async def test_the_gateway_response_head_is_the_one_uvicorn_writes(
    method: str, keep_alive: bool, status: int, headers: list[tuple[bytes, bytes]], body: bytes
) -> None:
    """``_Cycle.send`` writes the same bytes as uvicorn's own ``send``, keeps the same
    state, and refuses the same headers with the same error."""
    from uvicorn.protocols.http.httptools_impl import RequestResponseCycle

    from gateway.api.connections import _Cycle

    outcomes = []
    for cls in (RequestResponseCycle, _Cycle):
        cycle = _cycle(cls, method, keep_alive)
        try:
            await cycle.send({"type": "http.response.start", "status": status, "headers": headers})
            await cycle.send({"type": "http.response.body", "body": body})
            error = None
        except (RuntimeError, KeyError) as exc:  # KeyError: a status uvicorn does not know
            error = repr(exc)
        state = (cycle.keep_alive, cycle.chunked_encoding, cycle.response_complete)
        outcomes.append((b"".join(cycle.written), state, error))
    assert outcomes[1] == outcomes[0], _UVICORN


def test_uvicorn_builds_its_cycle_by_the_name_the_gateway_rebinds() -> None:
    from uvicorn.protocols.http import httptools_impl

    from gateway.api import connections

    code = httptools_impl.HttpToolsProtocol.on_headers_complete.__code__
    assert "RequestResponseCycle" in code.co_names, _UVICORN
    assert connections._on_headers_complete.__code__ is code, _UVICORN
    rebound = connections._on_headers_complete.__globals__["RequestResponseCycle"]
    assert rebound is connections._Cycle, _UVICORN


@pytest.mark.parametrize(
    "bodies",
    [[b"{}"], [b"{", b"}"], [b"{}x"], [b"{"], [b"{", b""], [b"{", b"}", b""]],
    ids=["whole", "in-two", "too-long", "too-short", "then-empty", "two-then-empty"],
)
async def test_a_whole_body_goes_out_with_the_head_in_one_write(bodies: list[bytes]) -> None:
    """The gateway's cycle writes the head with a whole body of the declared length in one
    ``writelines`` (one system call); any other shape of body writes what uvicorn writes, in
    the same order, with the same state and errors."""
    from uvicorn.protocols.http.httptools_impl import RequestResponseCycle

    from gateway.api.connections import _Cycle

    start = {"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]}
    outcomes = []
    for cls in (RequestResponseCycle, _Cycle):
        cycle = _cycle(cls)
        try:
            await cycle.send(start)
            for n, body in enumerate(bodies, 1):
                more = n < len(bodies)
                await cycle.send({"type": "http.response.body", "body": body, "more_body": more})
            error = None
        except RuntimeError as exc:
            error = str(exc)
        state = (cycle.response_complete, cycle.expected_content_length, error)
        outcomes.append((b"".join(cycle.written), state, len(cycle.written)))
    (uvicorn_bytes, uvicorn_state, uvicorn_writes), (ours, our_state, our_writes) = outcomes
    assert (ours, our_state) == (uvicorn_bytes, uvicorn_state), _UVICORN
    if bodies == [b"{}"]:
        assert (uvicorn_writes, our_writes) == (2, 1)


async def test_a_head_waiting_for_its_body_is_dropped_when_the_client_left() -> None:
    from gateway.api.connections import _Cycle

    cycle = _cycle(_Cycle)
    await cycle.send({"type": "http.response.start", "status": 200, "headers": []})
    assert cycle.written == []  # the head waits for the body
    cycle.disconnected = True
    await cycle.send({"type": "http.response.body", "body": b"late"})
    assert cycle.written == []


_UVICORN_KEEP_ALIVE = {
    # uvicorn's code that GuardedHttpToolsProtocol's keep-alive timer mirrors (one timer
    # per connection instead of one per request); comments and layout do not matter.
    "on_response_complete": """
def on_response_complete(self):
    self.server_state.total_requests += 1
    if self.transport.is_closing():
        return
    self._unset_keepalive_if_required()
    self.flow.resume_reading()
    if self.pipeline:
        cycle, app = self.pipeline.pop()
        self._start_asgi_task(cycle, app)
    else:
        self.timeout_keep_alive_task = self.loop.call_later(
            self.timeout_keep_alive, self.timeout_keep_alive_handler
        )
""",
    "_unset_keepalive_if_required": """
def _unset_keepalive_if_required(self):
    if self.timeout_keep_alive_task is not None:
        self.timeout_keep_alive_task.cancel()
        self.timeout_keep_alive_task = None
""",
    "timeout_keep_alive_handler": """
def timeout_keep_alive_handler(self):
    if not self.transport.is_closing():
        self.transport.close()
""",
}


def _shape(source: str) -> str:
    """A function's statements, without annotations, docstring, comments or layout."""
    import ast
    import textwrap

    function = ast.parse(textwrap.dedent(source)).body[0]
    assert isinstance(function, ast.FunctionDef)
    function.returns = None
    for argument in function.args.args:
        argument.annotation = None
    body = function.body
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
        function.body = body[1:]
    return ast.dump(function)


@pytest.mark.parametrize("name", sorted(_UVICORN_KEEP_ALIVE))
def test_uvicorn_keep_alive_code_is_what_the_gateway_mirrors(name: str) -> None:
    import inspect

    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    message = (
        f"uvicorn changed HttpToolsProtocol.{name}; revisit the keep-alive timer of "
        "GuardedHttpToolsProtocol in gateway/api/connections.py"
    )
    source = inspect.getsource(getattr(HttpToolsProtocol, name))
    assert _shape(source) == _shape(_UVICORN_KEEP_ALIVE[name]), message


def test_uvicorn_ends_idle_time_only_through_the_method_the_gateway_overrides() -> None:
    """Bytes arriving end the idle time through ``_unset_keepalive_if_required``: the
    gateway's timer relies on every such place calling it (and on nothing else touching
    ``timeout_keep_alive_task``)."""
    import inspect

    from uvicorn.protocols.http import httptools_impl

    source = inspect.getsource(httptools_impl)
    assert source.count("timeout_keep_alive_task") == 5, _UVICORN  # init, unset x3, arm
    data_received = inspect.getsource(httptools_impl.HttpToolsProtocol.data_received)
    assert "self._unset_keepalive_if_required()" in data_received, _UVICORN
