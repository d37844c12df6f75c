"""Malformed input a client can send is a 4xx in the envelope, never a 500 or a redirect
to a host the client named (issue 15: items 5 and 9)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis
from cryptography.fernet import Fernet
from test_errors import assert_error

from gateway.access.testing import TestCaller, issue_key
from gateway.api.spec import MAX_JSON_DEPTH
from gateway.api.testing import serve_in_process
from gateway.app import create_app
from gateway.bootstrap import Gateway, bootstrap
from gateway.orders.prefer import parse_prefer
from gateway.settings import OrderSettings, Settings


@pytest.fixture
async def gateway(redis: aioredis.Redis, redis_url: str, key_prefix: str) -> AsyncIterator[Gateway]:
    """The default body limit (256 KB), so that a deeply nested body fits under it."""
    settings = Settings(
        redis_url=redis_url,
        key_prefix=key_prefix,
        sandbox="off",
        orders=OrderSettings(encryption_keys=[Fernet.generate_key().decode()]),
    )
    gw = await bootstrap(settings, redis=aioredis.Redis.from_url(redis_url), adapters={})
    yield gw
    await gw.aclose()


@pytest.fixture
async def client(gateway: Gateway) -> AsyncIterator[httpx.AsyncClient]:
    async with serve_in_process(create_app(gateway=gateway)) as client:
        yield client


@pytest.fixture
async def caller(gateway: Gateway) -> TestCaller:
    return await issue_key(gateway)


def order_headers(caller: TestCaller, key: str = "k-1") -> dict[str, str]:
    return {**caller.headers, "Idempotency-Key": key, "Content-Type": "application/json"}


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


async def test_deeply_nested_json_is_400(client: httpx.AsyncClient, caller: TestCaller) -> None:
    item = '{"variant_id":"vouchers:1:a","quantity":1,"face_value":%s}'
    for n, body in enumerate(
        (
            nested(5000),
            '{"items":[' + item % nested(20_000) + "]}",
            '{"items":[' + item % nested(MAX_JSON_DEPTH) + "]}",
            '{"items":[' + item % ('{"a":' * 3000 + "1" + "}" * 3000) + "]}",
        )
    ):
        response = await client.post(
            "/v1/orders", content=body, headers=order_headers(caller, f"deep-{n}")
        )
        error = assert_error(response, 400, "malformed_json")
        assert "deeper than" in error["message"]


async def test_nesting_within_the_bound_reaches_validation(
    client: httpx.AsyncClient, caller: TestCaller
) -> None:
    """Brackets inside strings do not count; a shallow wrong shape is the usual 422."""
    body = json.dumps(
        {"items": [{"variant_id": "[" * 100 + "{" * 100, "quantity": 1, "face_value": [[1]]}]}
    )
    response = await client.post("/v1/orders", content=body, headers=order_headers(caller))
    error = assert_error(response, 422, "validation_failed")
    assert {d["field"] for d in error["details"]} == {"items.0.face_value"}


@pytest.mark.parametrize(
    ("prefer", "seconds", "applied"),
    [
        ("wait=²", 0.0, None),  # str.isdigit() says yes, int() says no: malformed
        ("wait=١٢", 0.0, None),  # Arabic-Indic digits: not delta-seconds either
        ("wait=" + "9" * 5000, 30.0, "wait=30"),  # longer than int() takes: capped
        ("wait=" + "0" * 5000 + "7", 7.0, "wait=7"),
        ("wait=0", 0.0, "wait=0"),
    ],
    ids=["superscript", "arabic-indic", "5000-digits", "leading-zeros", "zero"],
)
def test_prefer_wait_takes_ascii_delta_seconds_of_any_length(
    prefer: str, seconds: float, applied: str | None
) -> None:
    preference = parse_prefer([prefer], max_wait=30.0)
    assert (preference.seconds, preference.applied) == (seconds, applied)


async def test_a_prefer_header_int_refuses_is_not_a_500(
    client: httpx.AsyncClient, caller: TestCaller
) -> None:
    for prefer in ("wait=²".encode(), b"wait=" + b"9" * 5000):
        response = await client.get(
            "/v1/orders/ord_01J0000000000000000000000A",
            headers={**caller.headers, "Prefer": prefer},  # type: ignore[dict-item]
        )
        assert_error(response, 404, "order_not_found")


async def _raw_post(app: Any, content_length: bytes) -> tuple[int, dict[str, Any]]:
    """Raw ASGI: a client library would not send these."""
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/healthz",
        "raw_path": b"/healthz",
        "root_path": "",
        "query_string": b"",
        "headers": [(b"host", b"gw"), (b"content-length", content_length)],
        "client": ("127.0.0.1", 1),
        "server": ("gw", 80),
        "app": app,
    }
    await app(scope, receive, send)
    return sent[0]["status"], json.loads(b"".join(m.get("body", b"") for m in sent[1:]))


async def test_a_content_length_int_refuses_is_a_4xx(gateway: Gateway) -> None:
    app = create_app(gateway=gateway)
    async with app.router.lifespan_context(app):
        status, body = await _raw_post(app, b"9" * 5000)
        assert (status, body["error"]["code"]) == (413, "body_too_large")
        status, body = await _raw_post(app, "²".encode())
        assert (status, body["error"]["code"]) == (400, "bad_request")


async def test_a_trailing_slash_is_404_never_a_redirect_to_the_clients_host(
    client: httpx.AsyncClient, caller: TestCaller
) -> None:
    for path, headers in (
        ("/healthz/", {}),
        ("/v1/products/", caller.headers),
        ("/v1/orders/", caller.headers),
        ("/docs/", {}),
    ):
        response = await client.get(path, headers={**headers, "Host": "evil.example"})
        assert_error(response, 404, "not_found")
        assert "location" not in response.headers
    assert (await client.get("/healthz")).status_code == 200
