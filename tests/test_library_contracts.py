"""The private corners of libraries the gateway relies on, for speed, checked by name.

Two places skip a library's public API because nothing public is as fast:
``TalliedHistogram`` (prometheus-client's ``Histogram._buckets`` / ``_sum``) and the
catalog's ``_JsonBody`` (Starlette's ``Response`` without ``Response.__init__``). A third
because nothing public exists: the webhook sender's ``_CheckedTransport`` replaces
httpx's ``AsyncHTTPTransport._pool`` to connect only to checked addresses.
pyproject.toml pins both libraries below the first version not tested; these tests say
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
