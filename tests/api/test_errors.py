"""Every error, from every layer, in the one envelope with a request id."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from api_routes import MAX_BODY_BYTES

from gateway.access.testing import TestCaller

ITEM = {"name": "gift card", "price_minor": 2500, "currency": "EUR"}


def assert_error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"}
    error = body["error"]
    assert error["code"] == code
    assert isinstance(error["message"], str) and error["message"]
    assert error["request_id"] == response.headers["X-Request-ID"]
    return error


def write_headers(caller: TestCaller, **extra: str) -> dict[str, str]:
    return {**caller.headers, "Idempotency-Key": "k-1", **extra}


async def test_unknown_routes_are_404_even_without_a_key(client: httpx.AsyncClient) -> None:
    for path in ("/nope", "/v1/nope", "/v1/test/items/extra"):
        assert_error(await client.get(path), 404, "not_found")


async def test_wrong_method_is_405_with_allow(client: httpx.AsyncClient) -> None:
    response = await client.put("/v1/test/items")
    assert_error(response, 405, "method_not_allowed")
    assert response.headers["Allow"]


async def test_invalid_query_parameters_are_400_with_details(
    client: httpx.AsyncClient, caller: TestCaller
) -> None:
    for params, field in (
        ({"limit": "0"}, "limit"),
        ({"limit": "x"}, "limit"),
        ({"sort": "size"}, "sort"),
        ({"colour": "red"}, "colour"),
    ):
        response = await client.get("/v1/test/items", params=params, headers=caller.headers)
        error = assert_error(response, 400, "invalid_parameter")
        assert [d["field"] for d in error["details"]] == [field]
    ok = await client.get(
        "/v1/test/items", params=[("tag", "a"), ("tag", "b")], headers=caller.headers
    )
    assert ok.status_code == 200 and ok.json()["tags"] == ["a", "b"]


async def test_body_that_does_not_fit_is_422(client: httpx.AsyncClient, caller: TestCaller) -> None:
    response = await client.post(
        "/v1/test/items", json={**ITEM, "price_minor": -1}, headers=write_headers(caller)
    )
    error = assert_error(response, 422, "validation_failed")
    assert error["details"][0]["field"] == "price_minor"
    ok = await client.post("/v1/test/items", json=ITEM, headers=write_headers(caller))
    assert ok.status_code == 201 and ok.json()["reseller_id"] == caller.reseller.id


async def test_non_json_body_is_415(client: httpx.AsyncClient, caller: TestCaller) -> None:
    response = await client.post(
        "/v1/test/items",
        content=b"name=x",
        headers=write_headers(caller, **{"Content-Type": "application/x-www-form-urlencoded"}),
    )
    assert_error(response, 415, "unsupported_media_type")


async def test_malformed_json_is_400(client: httpx.AsyncClient, caller: TestCaller) -> None:
    for raw in (b'{"name": ', b"\xff\xfe", b""):
        response = await client.post(
            "/v1/test/items",
            content=raw,
            headers=write_headers(caller, **{"Content-Type": "application/json"}),
        )
        assert_error(response, 400, "malformed_json")


async def test_a_handler_s_own_error(client: httpx.AsyncClient, caller: TestCaller) -> None:
    response = await client.post("/v1/test/items", json=ITEM, headers=caller.headers)
    assert_error(response, 400, "idempotency_key_required")


async def test_oversized_body_by_content_length_is_413(
    client: httpx.AsyncClient, caller: TestCaller
) -> None:
    big = {**ITEM, "name": "x" * (MAX_BODY_BYTES + 10)}
    response = await client.post("/v1/test/items", json=big, headers=write_headers(caller))
    error = assert_error(response, 413, "body_too_large")
    assert str(MAX_BODY_BYTES) in error["message"]


async def test_oversized_streamed_body_is_413(
    client: httpx.AsyncClient, caller: TestCaller
) -> None:
    """No Content-Length (chunked): the limit is enforced while the body is read."""

    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"name": "'
        for _ in range(10):
            yield b"y" * 500
        yield b'"}'

    response = await client.post(
        "/v1/test/items",
        content=chunks(),
        headers=write_headers(caller, **{"Content-Type": "application/json"}),
    )
    assert "content-length" not in response.request.headers
    assert_error(response, 413, "body_too_large")


async def test_unexpected_exceptions_are_500_without_detail_and_logged(
    client: httpx.AsyncClient, caller: TestCaller, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, logger="gateway.api")
    for path, headers in (("/v1/test/boom", caller.headers), ("/test/boom", {})):
        response = await client.get(path, headers={**headers, "X-Request-ID": "trace-me.1"})
        error = assert_error(response, 500, "internal_error")
        assert error["request_id"] == "trace-me.1"
        assert "hunter2" not in response.text and "Traceback" not in response.text
        assert "ZeroDivision" not in response.text and "detail" not in response.text
    logged = [r for r in caplog.records if r.name == "gateway.api"]
    assert len(logged) == 2
    assert all("trace-me.1" in r.getMessage() and r.exc_info for r in logged)


async def test_request_id_is_echoed_when_well_formed(client: httpx.AsyncClient) -> None:
    echoed = await client.get("/healthz", headers={"X-Request-ID": "abc-123_X.y"})
    assert echoed.headers["X-Request-ID"] == "abc-123_X.y"
    for bad in ("has space", "x" * 129, "semi;colon", ""):
        response = await client.get("/healthz", headers={"X-Request-ID": bad})
        generated = response.headers["X-Request-ID"]
        assert generated != bad and 1 <= len(generated) <= 128
    a, b = await client.get("/healthz"), await client.get("/healthz")
    assert a.headers["X-Request-ID"] != b.headers["X-Request-ID"]


async def test_every_kind_of_response_has_one_request_id(
    client: httpx.AsyncClient, caller: TestCaller
) -> None:
    responses = [
        await client.get("/healthz"),
        await client.get("/nope"),
        await client.get("/v1/test/items"),
        await client.get("/v1/test/items", headers=caller.headers),
        await client.get("/v1/test/boom", headers=caller.headers),
        await client.post(
            "/v1/test/items",
            content=b"x" * (MAX_BODY_BYTES + 1),
            headers=write_headers(caller, **{"Content-Type": "application/json"}),
        ),
    ]
    for response in responses:
        assert len(response.headers.get_list("X-Request-ID")) == 1, response.url


async def test_a_bad_content_length_is_400(gateway: Any) -> None:
    """Raw ASGI: a client library would not send this."""
    from gateway.app import create_app

    app = create_app(gateway=gateway)
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
        "headers": [(b"host", b"gw"), (b"content-length", b"12abc")],
        "client": ("127.0.0.1", 1),
        "server": ("gw", 80),
        "app": app,
    }
    async with app.router.lifespan_context(app):
        await app(scope, receive, send)
    assert sent[0]["status"] == 400
    body = json.loads(b"".join(m.get("body", b"") for m in sent[1:]))
    assert body["error"]["code"] == "bad_request"
