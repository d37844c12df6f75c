"""A gateway that has served catalog, rate-limit and order traffic, end to end, on a
standalone Redis and on a three-node Redis Cluster: what ops see afterwards.

* the flows work unchanged on the cluster (every multi-key script stays on one slot);
* ``/metrics`` offers every metric the alert rules and the dashboard name, with samples
  for the ones this traffic exercises, route labels as templates;
* the logs hold one JSON line per request and per upstream call, and none of the keys,
  secrets or activation codes the flow used.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from adapters.registry import discover
from adapters.sandbox_server import BackgroundServer
from gateway.access.testing import TestCaller, issue_key
from gateway.app import create_app
from gateway.bootstrap import Gateway, bootstrap
from tests.ops.conftest import CapturedLogs
from tests.ops.support import bounded, exposed_names, referenced_names, samples, value, within
from tests.ops.test_rules import ALERTS, dashboard_queries
from tests.support.settings import ENCRYPTION_KEY, gateway_settings

SUPPLIERS = ("gaming_goods", "vouchers")


@dataclass
class Upstreams:
    servers: dict[str, BackgroundServer]

    def settings(self) -> dict[str, dict[str, Any]]:
        """Each supplier on its sandbox, with fast retries and a generous client limit."""
        adapters = discover()
        values: dict[str, dict[str, Any]] = {}
        for name in SUPPLIERS:
            values[name] = {
                **adapters[name].sandbox_settings(self.servers[name].url),
                "timeouts": {"connect": 1.0, "read": 2.0, "total": 3.0},
                "retries": {"max_attempts": 3, "backoff_base": 0.02, "backoff_max": 0.1},
                "rate_limits": {
                    bucket: {"limit": 1_000_000, "period_seconds": 60, "burst": 1000}
                    for bucket in adapters[name].rate_limits
                },
                "reconcile_delay": 0.05,
            }
        return values


@pytest.fixture(scope="module")
def upstreams() -> Iterator[Upstreams]:
    adapters = discover()
    missing = [name for name in SUPPLIERS if name not in adapters]
    if missing:
        pytest.skip(f"supplier adapters not installed yet: {missing}")
    generous = {
        name: {bucket: (1_000_000, 60.0) for bucket in adapters[name].rate_limits}
        for name in SUPPLIERS
    }
    servers = {
        name: BackgroundServer(
            adapters[name].create_sandbox(
                catalog_size=30, seed=11, fulfil_delay=0.05, rate_limits=generous[name]
            )
        ).start()
        for name in SUPPLIERS
    }
    yield Upstreams(servers)
    for server in servers.values():
        server.stop()


@dataclass
class Hooks:
    """A reseller's webhook endpoint: records what it receives."""

    server: BackgroundServer
    received: list[bytes]

    @property
    def url(self) -> str:
        return self.server.url + "/hooks"


@pytest.fixture(scope="module")
def hooks() -> Iterator[Hooks]:
    received: list[bytes] = []

    async def hook(request: Request) -> Response:
        received.append(await request.body())
        return Response(status_code=204)

    app = Starlette(routes=[Route("/hooks", hook, methods=["POST"])])
    with BackgroundServer(app) as server:
        yield Hooks(server, received)


@pytest.fixture(params=["redis", "cluster"])
def backend(request: pytest.FixtureRequest, redis_url: str) -> tuple[str, bool]:
    if request.param == "redis":
        return redis_url, False
    cluster = request.getfixturevalue("redis_cluster")
    return cluster.url, True


@dataclass
class Running:
    gateway: Gateway
    client: httpx.AsyncClient


async def _delete_prefix(client: Any, prefix: str, cluster: bool) -> None:
    nodes = client.get_primaries() if cluster else [None]
    for node in nodes:
        kwargs = {"target_nodes": node} if cluster else {}
        keys = [k async for k in client.scan_iter(match=f"{prefix}:*", count=1000, **kwargs)]
        for key in keys:
            await client.delete(key)


@pytest.fixture
async def running(
    backend: tuple[str, bool], key_prefix: str, upstreams: Upstreams
) -> AsyncIterator[Running]:
    url, cluster = backend
    settings = gateway_settings(
        url,
        key_prefix,
        redis_cluster=cluster,
        suppliers=upstreams.settings(),
        accounts={"enforce": False},  # accounts: tests/orders/test_accounts_*.py
        orders={
            "schedule_poll_seconds": 0.02,
            "poll_initial_seconds": 0.05,
            "poll_max_seconds": 0.3,
            "retry_initial_seconds": 0.05,
            "retry_max_seconds": 0.3,
            "webhook_backoff_seconds": 0.05,
            "webhook_backoff_max_seconds": 0.3,
            "webhook_allow_private_targets": True,  # the receiver listens on loopback
        },
    )
    gateway = await bootstrap(settings)
    app = create_app(gateway=gateway)
    try:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(
                transport=transport, base_url="http://gateway.test", timeout=30
            ) as client:
                await within(_until_ready(client), 40, "waiting for /readyz")
                yield Running(gateway, client)
            # Bounded: a background loop can survive its cancellation for a while
            # (docs/operations.md), and stop() waits for it up to its own bound.
            await bounded(gateway.stop(), 10)
    finally:
        await _delete_prefix(gateway.redis, key_prefix, cluster)
        await bounded(gateway.aclose(), 10)


async def _until_ready(client: httpx.AsyncClient) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        ready = await client.get("/readyz")
        if ready.status_code == 200:
            return
        await asyncio.sleep(0.1)
    pytest.fail(f"the gateway never became ready: {ready.text}")


async def _catalog_traffic(client: httpx.AsyncClient, caller: TestCaller) -> dict[str, Any]:
    """Browse, search and open products; returns a fixed-price voucher variant."""
    headers = caller.headers
    listing = await client.get("/v1/products", params={"page_size": 50}, headers=headers)
    assert listing.status_code == 200, listing.text
    products = listing.json()["data"]["products"]
    assert {p["supplier"] for p in products} >= set(SUPPLIERS), products[:2]
    word = products[0]["name"].split()[0][:4]
    searched = await client.get("/v1/search", params={"q": word}, headers=headers)
    assert searched.status_code == 200, searched.text
    for path in ("/v1/categories", "/v1/brands", "/v1/suppliers"):
        assert (await client.get(path, headers=headers)).status_code == 200, path
    bad = await client.get("/v1/products", params={"page_size": "lots"}, headers=headers)
    assert bad.status_code == 400
    for product in products:
        if not product["id"].startswith("vouchers:"):  # a supplier product, not canonical
            continue
        detail = await client.get(f"/v1/products/{product['id']}", headers=headers)
        assert detail.status_code == 200, detail.text
        for variant in detail.json()["data"]["variants"]:
            if variant.get("face_min") is None and variant.get("available", True):
                return variant
    pytest.fail("no fixed-price voucher in the sandbox catalog")


async def _order_traffic(
    client: httpx.AsyncClient, caller: TestCaller, variant: dict[str, Any]
) -> dict[str, Any]:
    """One order delivered at once (Prefer: wait), replayed once, read back."""
    body = {"reference": "ops-audit", "items": [{"variant_id": variant["id"], "quantity": 2}]}
    headers = {**caller.headers, "Idempotency-Key": str(uuid.uuid4()), "Prefer": "wait=10"}
    created = await client.post("/v1/orders", json=body, headers=headers)
    assert created.status_code == 201, created.text
    order = created.json()["data"]
    assert order["status"] == "completed", order
    replay = await client.post("/v1/orders", json=body, headers=headers)
    assert replay.status_code == 201 and replay.json()["data"]["id"] == order["id"]
    again = await client.get(f"/v1/orders/{order['id']}", headers=caller.headers)
    assert again.status_code == 200
    assert (await client.get("/v1/orders", headers=caller.headers)).status_code == 200
    return order


async def _rate_limit_traffic(client: httpx.AsyncClient, gateway: Gateway) -> None:
    """A key limited to 2 requests a minute: the third is refused, on every backend."""
    slow = await issue_key(gateway, scopes=["catalog:read"], rate_limit=2, name="slow")
    statuses = [
        (await client.get("/v1/categories", headers=slow.headers)).status_code for _ in range(3)
    ]
    assert statuses == [200, 200, 429], statuses


def _codes(order: dict[str, Any]) -> list[str]:
    found = []
    for item in order["items"]:
        for code in item["codes"]:
            found.extend(str(v) for k, v in code.items() if v and k not in ("expires_at",))
    return [c for c in found if len(c) >= 6]


async def test_catalog_ratelimit_and_order_flows_then_metrics_and_logs(
    running: Running, hooks: Hooks, captured_logs: CapturedLogs, backend: tuple[str, bool]
) -> None:
    client = running.client
    caller = await issue_key(running.gateway, webhook_url=hooks.url)
    variant = await within(_catalog_traffic(client, caller), 30, "catalog traffic")
    order = await within(_order_traffic(client, caller, variant), 30, "order traffic")
    await within(_rate_limit_traffic(client, running.gateway), 30, "rate-limit traffic")

    deadline = time.monotonic() + 10
    while not any(order["id"].encode() in body for body in hooks.received):
        assert time.monotonic() < deadline, "the order's webhook never arrived"
        await asyncio.sleep(0.05)

    # -- metrics: every name the rules and the dashboard use is offered -----------
    text = (await client.get("/metrics")).text
    wanted = referenced_names([ALERTS.read_text(), *dashboard_queries()])
    missing = sorted(wanted - exposed_names(text))
    assert not missing, f"named in rules/dashboard, absent from /metrics: {missing}"
    # ... and this traffic left samples in the families it exercises.
    route = "/v1/products/{product_id}"
    assert value(text, "gateway_http_requests_total", route=route, status="200") >= 1, [
        labels["route"] for labels, _ in samples(text, "gateway_http_requests_total")
    ]
    assert not [
        labels
        for labels, _ in samples(text, "gateway_http_requests_total")
        if order["id"] in labels["route"] or variant["id"] in labels["route"]
    ]
    assert value(text, "gateway_http_requests_total", route="/v1/orders", status="201") >= 2
    assert value(text, "gateway_http_requests_total", status="429") >= 1
    assert value(text, "gateway_ratelimit_rejections_total") >= 1
    assert value(text, "gateway_upstream_requests_total", supplier="vouchers", outcome="2xx")
    assert value(text, "gateway_catalog_products", supplier="vouchers") > 0
    assert value(text, "gateway_orders_created_total") >= 1
    assert value(text, "gateway_orders_idempotent_replays_total") >= 1
    assert value(text, "gateway_orders_completed_total", status="completed") >= 1
    assert value(text, "gateway_orders_delivery_seconds_count", supplier="vouchers") >= 1
    assert value(text, "gateway_orders_webhook_deliveries_total") >= 1

    # -- logs: one line per request, upstream calls logged, nothing secret -------
    requests = captured_logs.by_logger("gateway.http")
    assert any(line["route"] == "/v1/orders" and line["status"] == 201 for line in requests)
    assert all(line.get("request_id") for line in requests)
    ours = [line for line in requests if line.get("reseller_id") == caller.reseller.id]
    assert ours, "request lines do not name the reseller"
    assert captured_logs.by_logger("adapters.upstream")
    codes = _codes(order)
    assert codes, order["items"]
    secrets = [caller.token, caller.webhook_secret, ENCRYPTION_KEY, *codes]
    for values in running.gateway.settings.suppliers.values():
        secrets += [v for k, v in values.items() if k in ("api_key", "api_secret")]
    captured_logs.assert_absent(*secrets)
    assert json.dumps(order)  # the codes were real strings the reseller received
