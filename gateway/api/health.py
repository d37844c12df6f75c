"""Liveness and readiness, for load balancers and Kubernetes probes."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from gateway.api.spec import operation
from gateway.bootstrap import Gateway


class Liveness(BaseModel):
    status: Literal["ok"]


class Readiness(BaseModel):
    """Readiness with the state of each dependency."""

    status: Literal["ready", "not_ready"]
    checks: dict[str, Any]


@operation(summary="Liveness probe", operation_id="healthz", tag="operations", response=Liveness)
async def healthz(request: Request) -> Response:
    """The process is alive and its event loop answers; nothing else is checked."""
    return JSONResponse({"status": "ok"})


@operation(
    summary="Readiness probe",
    operation_id="readyz",
    tag="operations",
    response=Readiness,
    responses={503: Readiness},
)
async def readyz(request: Request) -> Response:
    """Ready when Redis answers (and, once the catalog exists, a catalog is loaded).

    One supplier's outage is reported but does not fail readiness: the other suppliers
    and the cached catalog still serve."""
    gateway: Gateway = request.app.state.gateway
    checks: dict[str, object] = {}
    ready = True
    try:
        await gateway.redis.ping()
        checks["redis"] = "ok"
    except Exception as exc:  # any failure means not ready; the reason is reported
        checks["redis"] = f"unavailable: {type(exc).__name__}"
        ready = False
    suppliers: dict[str, dict[str, Any]] = {
        name: {"circuit": adapter.breaker.state.value} for name, adapter in gateway.adapters.items()
    }
    # Not ready until a catalog is loaded; a supplier whose sync failed with nothing to
    # serve is reported, and does not keep the instance out.
    report = gateway.services.catalog.readiness()
    checks["suppliers"] = suppliers
    checks["catalog"] = report["catalog"]
    checks["catalog_products"] = report["products"]
    for name, state in report["suppliers"].items():
        suppliers.setdefault(name, {}).update(state)
    ready = ready and report["catalog"] == "ready"
    return JSONResponse(
        {"status": "ready" if ready else "not_ready", "checks": checks}, 200 if ready else 503
    )


routes = [
    Route("/healthz", healthz, methods=["GET"]),
    Route("/readyz", readyz, methods=["GET"]),
]
