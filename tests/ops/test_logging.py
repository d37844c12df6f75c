"""Structured logs: one JSON line per request and per upstream call, and no secret ever."""

from __future__ import annotations

import logging

import httpx
import pytest
from pydantic import SecretStr
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from gateway.api.spec import operation
from gateway.app import create_app
from gateway.observability.logging import (
    REDACTED,
    bind,
    forget_secrets,
    log_context,
    redact,
    register_secret,
    register_secrets_in,
)
from gateway.settings import Settings
from tests.ops.conftest import example_adapter

log = logging.getLogger("tests.ops")


@operation(summary="Ops probe", operation_id="opsProbe", tag="ops", scope="catalog:read")
async def _probe(request: Request) -> Response:
    """A protected route that calls the upstream, as the catalog and order routes do."""
    adapter = request.app.state.gateway.adapters["example"]
    page = None
    async for first in adapter.iter_catalog():
        page = first
        break
    log.info("probe read %d products", len(page.products) if page else 0)
    return JSONResponse({"data": {"ok": True}})


PROBE = [Route("/v1/ops-probe", _probe, methods=["GET"])]


@pytest.fixture
async def probe_app(ops_gateway):  # type: ignore[no-untyped-def]
    """The real app with one extra protected route, and a reseller key to call it."""
    app = create_app(gateway=ops_gateway.gateway, extra_routes=PROBE)
    access = ops_gateway.gateway.services.access
    created = await access.store.create_reseller("Log Audit Ltd")
    issued = await access.store.create_key(created.reseller.id, scopes=["catalog:read"])
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
            yield client, created.reseller.id, issued.token.get_secret_value()


async def test_one_json_line_per_request_with_its_request_id(ops_gateway, captured_logs) -> None:
    mine = await ops_gateway.client.get("/no/such/route", headers={"X-Request-ID": "abc-123.x"})
    theirs = await ops_gateway.client.get("/healthz", headers={"X-Request-ID": "bad id\x01"})
    assert mine.headers["x-request-id"] == "abc-123.x"
    assert theirs.headers["x-request-id"] not in ("", "bad id\x01")

    lines = captured_logs.by_logger("gateway.http")
    assert [line["request_id"] for line in lines] == ["abc-123.x", theirs.headers["x-request-id"]]
    first = lines[0]
    assert first["route"] == "<unmatched>" and first["method"] == "GET"
    assert first["status"] == 404 and first["level"] == "info"
    assert isinstance(first["duration_ms"], float) and first["duration_ms"] >= 0
    assert set(first) >= {"ts", "level", "logger", "message", "request_id", "reseller_id"}
    assert lines[1]["level"] == "debug"  # probes log quietly


async def test_request_and_upstream_lines_carry_request_and_reseller(
    probe_app, captured_logs
) -> None:
    client, reseller_id, token = probe_app
    answer = await client.get("/v1/ops-probe", headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 200, answer.text
    rid = answer.headers["x-request-id"]

    (request_line,) = captured_logs.by_logger("gateway.http")
    assert request_line["request_id"] == rid
    assert request_line["reseller_id"] == reseller_id
    assert request_line["route"] == "/v1/ops-probe" and request_line["status"] == 200

    # (the catalog service syncs in the background too: its calls carry no request id)
    upstream = captured_logs.by_logger("adapters.upstream")
    assert [line for line in upstream if line.get("request_id") == rid], "no call logged"
    for line in upstream:
        if "request_id" in line:
            assert line["request_id"] == rid and line["reseller_id"] == reseller_id
        assert line["supplier"] == "example" and line["operation"]
        assert line["outcome"] == "2xx" and line["upstream_status"] == 200
        assert line["attempt"] == 1 and line["duration_ms"] >= 0
        assert "url" not in line and "headers" not in line
        assert "http://" not in captured_logs.text  # no URL at all
    (handler_line,) = captured_logs.by_logger("tests.ops")
    assert handler_line["request_id"] == rid and handler_line["route"] is not None


async def test_retried_upstream_call_logs_each_attempt(
    redis, key_prefix: str, captured_logs
) -> None:
    from adapters.sandbox_server import BackgroundServer
    from adapters.testing.example import ExampleAdapter

    with BackgroundServer(ExampleAdapter.create_sandbox(catalog_size=5)) as server:
        async with httpx.AsyncClient() as http:
            adapter = example_adapter(server, http, redis, key_prefix)
            await http.put(server.url + "/_sandbox/faults", json={"rate_limit_burst": 1})
            with log_context(request_id="job-42", order_id="ord_1"):
                async for _ in adapter.iter_catalog():
                    break
    lines = captured_logs.by_logger("adapters.upstream")
    assert [(line["outcome"], line["attempt"]) for line in lines[:2]] == [("429", 1), ("2xx", 2)]
    assert lines[0]["level"] == "warning"
    assert all(line["order_id"] == "ord_1" for line in lines)


async def test_keys_sent_by_a_reseller_never_reach_the_logs(probe_app, captured_logs) -> None:
    client, _, token = probe_app
    bogus = "gk_live_" + "Q" * 40
    await client.get("/v1/ops-probe", headers={"Authorization": f"Bearer {token}"})
    await client.get("/v1/ops-probe", headers={"X-API-Key": token})
    await client.get(f"/v1/ops-probe?api_key={token}", headers={"Authorization": "Bearer x"})
    await client.get("/v1/ops-probe", headers={"Authorization": f"Bearer {bogus}"})
    await client.get("/v1/ops-probe", headers={"X-API-Key": bogus})
    await client.get("/no/route", headers={"Authorization": f"Bearer {token}"})
    assert len(captured_logs.by_logger("gateway.http")) == 6  # the lines exist
    captured_logs.assert_absent(token, bogus)
    # The upstream's own key, sent on every upstream call, is not logged either.
    from adapters.testing.example_sandbox import API_KEY

    assert captured_logs.by_logger("adapters.upstream")
    captured_logs.assert_absent(API_KEY)


def test_redaction_filter_refuses_to_print_secrets(captured_logs) -> None:
    supplier_secret = "s3cr3t-upstream-password-value"
    settings = Settings(
        suppliers={"vouchers": {"api_key": "vk_live_abcdef123456", "api_secret": supplier_secret}}
    )
    register_secrets_in(settings)
    fernet = SecretStr("A" * 43 + "=")
    register_secret(fernet)
    try:
        log.info("login with password=%s failed", supplier_secret)
        log.info("header Authorization: Bearer eyJhbGciOi.eyJzdWIiOiIxMjM.sig-part")
        log.warning("upstream said %s", {"api_key": "vk_live_abcdef123456", "ok": 1})
        log.info("posted", extra={"authorization": "Bearer zzz-token-zzz", "pin_code": "9911"})
        log.info("order", extra={"payload": {"codes": ["CODE-AAAA-BBBB"], "card_number": "4111"}})
        log.info("key is %s", fernet.get_secret_value())
        try:
            raise RuntimeError(f"login refused for secret {supplier_secret}")
        except RuntimeError:
            log.exception("upstream login failed")
    finally:
        forget_secrets()

    captured_logs.assert_absent(
        supplier_secret,
        "vk_live_abcdef123456",
        "eyJhbGciOi.eyJzdWIiOiIxMjM.sig-part",
        "zzz-token-zzz",
        "9911",
        "CODE-AAAA-BBBB",
        "4111",
        fernet.get_secret_value(),
    )
    lines = captured_logs.by_logger("tests.ops")
    assert len(lines) == 7
    assert lines[3]["authorization"] == REDACTED and lines[3]["pin_code"] == REDACTED
    assert lines[4]["payload"]["codes"] == REDACTED
    assert "exc" in lines[6] and "RuntimeError" in lines[6]["exc"]


def test_redaction_keeps_ordinary_text() -> None:
    text = 'GET /v1/products 200 {"error": {"code": "NOT_FOUND"}} token bucket full'
    assert redact(text) == text


def test_bind_outside_a_request_opens_a_context(captured_logs) -> None:
    with log_context(job="sync"):
        bind(supplier="example", reseller_id="rs_1")
        log.info("synced")
    log.info("after")
    inside, after = captured_logs.by_logger("tests.ops")
    assert inside["job"] == "sync" and inside["supplier"] == "example"
    assert inside["reseller_id"] == "rs_1"
    assert "job" not in after and "supplier" not in after
