"""Liveness and readiness, for load balancers and Kubernetes probes."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from gateway.bootstrap import Gateway


async def healthz(request: Request) -> Response:
    """The process is alive and its event loop answers; nothing else is checked."""
    return JSONResponse({"status": "ok"})


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
    checks["suppliers"] = {
        name: {"circuit": adapter.breaker.state.value} for name, adapter in gateway.adapters.items()
    }
    return JSONResponse(
        {"status": "ready" if ready else "not_ready", "checks": checks}, 200 if ready else 503
    )


routes = [
    Route("/healthz", healthz, methods=["GET"]),
    Route("/readyz", readyz, methods=["GET"]),
]
