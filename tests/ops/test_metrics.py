"""``/metrics``: what a Prometheus scrape of a gateway that has served traffic contains."""

from __future__ import annotations

import re

import httpx
import pytest
from prometheus_client import Gauge
from prometheus_client.parser import text_string_to_metric_families
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Mount, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from adapters.errors import NotFoundError
from gateway.api.middleware import FrontDoor
from gateway.observability.metrics import UNMATCHED, exposition
from tests.ops.conftest import run_promtool
from tests.ops.support import import_everything, samples, value


async def _traffic(ops) -> None:  # type: ignore[no-untyped-def]
    """HTTP requests of several kinds, and upstream calls of several outcomes."""
    for path in ("/healthz", "/readyz", "/healthz", "/no/such/path/42"):
        await ops.client.get(path)
    await ops.client.post("/healthz")  # 405 on a known route
    page = None
    async for first in ops.adapter.iter_catalog():
        page = first
        break
    assert page is not None and page.products
    await ops.adapter.get_product(page.products[0].id.split(":", 1)[1])
    with pytest.raises(NotFoundError):
        await ops.adapter.get_product("no-such-product")
    # One 429 from the upstream, retried by the adapter.
    async with httpx.AsyncClient() as raw:
        answer = await raw.put(ops.upstream.url + "/_sandbox/faults", json={"rate_limit_burst": 1})
        assert answer.status_code < 300, answer.text
    await ops.adapter.get_product(page.products[0].id.split(":", 1)[1])


async def test_exposition_has_http_and_upstream_metrics_after_traffic(ops_gateway) -> None:
    await _traffic(ops_gateway)
    response = await ops_gateway.client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    families = {f.name: f for f in text_string_to_metric_families(text)}  # parses, or raises

    assert value(text, "gateway_http_requests_total", route="/healthz", status="200") >= 2
    assert value(text, "gateway_http_requests_total", route="/readyz", method="GET") >= 1
    assert value(text, "gateway_http_requests_total", route="/healthz", status="405") >= 1
    assert value(text, "gateway_http_requests_total", route=UNMATCHED, status="404") >= 1
    assert value(text, "gateway_http_request_duration_seconds_count", route="/healthz") >= 3
    assert families["gateway_http_request_duration_seconds"].type == "histogram"

    sup = {"supplier": "example"}
    assert value(text, "gateway_upstream_requests_total", outcome="2xx", **sup) >= 2
    assert value(text, "gateway_upstream_requests_total", outcome="4xx", **sup) >= 1
    assert value(text, "gateway_upstream_requests_total", outcome="429", **sup) >= 1
    assert value(text, "gateway_upstream_rate_limited_total", **sup) >= 1
    assert value(text, "gateway_upstream_retries_total", **sup) >= 1
    assert value(text, "gateway_upstream_request_duration_seconds_count", **sup) >= 4
    assert value(text, "gateway_upstream_limiter_wait_seconds_count", **sup) >= 4
    assert samples(text, "gateway_upstream_circuit_state")
    assert value(text, "gateway_upstream_circuit_state", **sup) == 0
    # The sandbox reports X-RateLimit-Remaining; the gateway keeps the latest.
    assert samples(text, "gateway_upstream_quota_remaining")


async def test_route_labels_are_templates_never_raw_ids() -> None:
    async def product(request: Request) -> Response:
        return JSONResponse({"id": request.path_params["id"]})

    async def order(request: Request) -> Response:
        return JSONResponse({"id": request.path_params["order_id"]})

    class RejectBeforeRouting:
        """Stands for a layer that answers before the router runs (a 401 in front)."""

        def __init__(self, app: ASGIApp) -> None:
            self.app = app

        async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] == "http" and scope["path"].endswith("/reject"):
                await PlainTextResponse("no", 401)(scope, receive, send)
                return
            await self.app(scope, receive, send)

    app = Starlette(
        routes=[
            Route("/v1/products/{id}", product),
            Route("/v1/products/{id}/reject", product),
            Mount("/v1/orders", routes=[Route("/{order_id}", order)]),
        ],
        middleware=[
            Middleware(FrontDoor, max_body_bytes=1_000_000),
            Middleware(RejectBeforeRouting),
        ],
    )
    transport = httpx.ASGITransport(app=app)
    raw_ids = ["gg:a1b2c3d4-raw", "vouchers:987654321", "ord_7f3e1c-raw"]
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        assert (await client.get(f"/v1/products/{raw_ids[0]}")).status_code == 200
        assert (await client.get(f"/v1/products/{raw_ids[1]}")).status_code == 200
        assert (await client.delete(f"/v1/products/{raw_ids[1]}")).status_code == 405
        assert (await client.get(f"/v1/orders/{raw_ids[2]}")).status_code == 200
        assert (await client.get(f"/v1/products/{raw_ids[0]}/reject")).status_code == 401
        assert (await client.get(f"/v1/nothing/{raw_ids[2]}")).status_code == 404
        assert (await client.request("BREW", "/v1/products/x")).status_code == 405

    text = exposition()[0].decode()
    routes = {labels["route"] for labels, _ in samples(text, "gateway_http_requests_total")}
    for raw in raw_ids:
        assert not any(raw in route for route in routes), routes
    assert value(text, "gateway_http_requests_total", route="/v1/products/{id}", status="200") >= 2
    assert value(text, "gateway_http_requests_total", route="/v1/products/{id}", method="DELETE")
    assert value(text, "gateway_http_requests_total", route="/v1/orders/{order_id}") >= 1
    assert value(
        text, "gateway_http_requests_total", route="/v1/products/{id}/reject", status="401"
    )
    assert value(text, "gateway_http_requests_total", route=UNMATCHED, status="404") >= 1
    # An invented method is folded into one label value: clients cannot add series.
    assert value(text, "gateway_http_requests_total", method="other", status="405") >= 1
    assert not [labels for labels, _ in samples(text, "gateway_http_requests_total")
                if labels["method"] == "BREW"]  # fmt: skip


async def test_real_app_labels_product_detail_by_template(ops_gateway) -> None:
    """The gateway's own catalog detail route is labelled by its template."""
    paths = [getattr(r, "path", "") for r in ops_gateway.app.routes]
    detail = [p for p in paths if re.fullmatch(r"/v1/products/\{\w+\}", p)]
    if not detail:
        pytest.skip("GET /v1/products/{id} has not landed yet (catalog feature)")
    await ops_gateway.client.get("/v1/products/example:raw-id-123")  # 401: no key
    text = (await ops_gateway.client.get("/metrics")).text
    assert value(text, "gateway_http_requests_total", route=detail[0], status="401") >= 1
    assert "raw-id-123" not in text


async def test_promtool_finds_nothing_to_complain_about(ops_gateway, promtool: str) -> None:
    import_everything()
    await _traffic(ops_gateway)
    text = (await ops_gateway.client.get("/metrics")).text
    code, output = run_promtool(promtool, "check", "metrics", stdin=text)
    assert code == 0 and output == "", output


def test_every_gauge_says_how_to_merge_across_processes() -> None:
    """Gauges left at multiprocess_mode="all" export one series per worker pid, which
    the alert rules and dashboard do not expect: every gauge must choose."""
    import_everything()
    from prometheus_client import REGISTRY

    collectors = list(REGISTRY._collector_to_names)  # no public way to list collectors
    unmerged = sorted(
        c._name
        for c in collectors
        if isinstance(c, Gauge) and c._multiprocess_mode in ("all", "liveall")
    )
    assert not unmerged, f"gauges without a multiprocess_mode: {unmerged}"


FORBIDDEN_LABELS = {
    "key", "api_key", "key_id", "reseller", "reseller_id", "path", "url", "id", "ip",
    "order_id", "product_id", "variant_id", "request_id", "reference", "email",
}  # fmt: skip


def test_metric_names_and_labels_follow_the_house_rules() -> None:
    """``gateway_`` prefix, and no label that grows with traffic (keys, ids, URLs)."""
    import_everything()
    from prometheus_client import REGISTRY

    problems = []
    for collector, names in REGISTRY._collector_to_names.items():
        labels = set(getattr(collector, "_labelnames", ()))
        for name in names:
            if not name.startswith("gateway_") and not name.startswith(
                ("python_", "process_", "platform_")
            ):
                problems.append(f"{name}: not named gateway_*")
        bad = labels & FORBIDDEN_LABELS
        if bad:
            problems.append(f"{sorted(names)[0]}: unbounded label(s) {sorted(bad)}")
    assert not problems, problems
