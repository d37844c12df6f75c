"""The Starlette application: every feature's routes over one ``Gateway``, one API face.

Adding a feature's routes
-------------------------
1. Decorate each handler with ``@operation(...)`` (``gateway/api/spec.py``): summary, a
   unique ``operation_id``, ``tag``, the ``scope`` a key needs (required on every ``/v1``
   route: ``catalog:read``, ``orders:read`` or ``orders:write``; ``None`` is public), the
   query/body/response models, the error statuses it raises, request/response headers.
2. Parse with ``parse_query`` / ``parse_body``, raise ``gateway.api.errors.ApiError`` for
   every failure, and read the caller from ``request.state.reseller`` (``Reseller``) and
   ``request.state.api_key`` (``ApiKey``).
3. Expose ``routes = [Route(...), ...]`` from ``gateway/api/<feature>.py`` and add
   ``*<feature>.routes`` to ``FEATURE_ROUTES`` below. That is all: the access guard,
   ``/openapi.json``, ``/docs``, the schemathesis test and the error envelope find the
   routes in the app.
4. Services with background work are built in ``bootstrap()`` into ``gateway.services``
   with idempotent ``start()`` / ``stop()``; the lifespan below starts them.

Layers, outermost first, and why in this order
----------------------------------------------
1. ``FrontDoor`` (``gateway.api.middleware``), the only middleware: request id and
   ``X-Request-ID`` on every response, the body limit, metrics and the request's log
   line, and every error in the envelope (404, 405 with ``Allow``, 401/403/429, 500).
   Outside routing, so even a 404 gets them. One layer, because each layer costs a frame
   and a wrapped ``send`` per request (``GatewayApp`` drops Starlette's own two).
2. The router, then per route ``AccessGuard`` (``gateway.access.guard``): key, reseller,
   IP allowlist, scope, rate limit, then the handler itself. Per route rather than as a
   middleware because only the matched route knows its scope, and public routes
   (``/healthz``, ``/metrics``, ``/docs``) then pay nothing for it.

Routes are matched in order, so the busiest (catalog reads) come first.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Sequence

from starlette.applications import Starlette
from starlette.routing import BaseRoute

from gateway.access.guard import protect
from gateway.api import catalog, health, orders
from gateway.api.middleware import GatewayApp
from gateway.api.openapi import build_document, docs_routes, serialise
from gateway.bootstrap import Gateway, bootstrap
from gateway.observability import logging as obs_logging
from gateway.observability import metrics as obs_metrics
from gateway.observability.log_writer import flush_all
from gateway.settings import Settings

FEATURE_ROUTES: list[BaseRoute] = [
    *catalog.routes,
    *orders.routes,
    *health.routes,
    *obs_metrics.routes,
]


def create_app(
    settings: Settings | None = None,
    *,
    gateway: Gateway | None = None,
    extra_routes: Sequence[BaseRoute] = (),
) -> Starlette:
    """Build the app. With ``gateway`` given (tests), the app uses it and does not close it;
    otherwise it bootstraps from ``settings`` (or the environment) at start-up.
    ``extra_routes`` are served like ``FEATURE_ROUTES`` (tests, plug-ins)."""
    cfg = settings or (gateway.settings if gateway is not None else Settings())
    routes = protect([*FEATURE_ROUTES, *extra_routes])

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        owned = gateway is None
        if owned:  # a served process: JSON logs with the configured secrets redacted
            obs_logging.configure_logging(
                cfg.log_level, json_lines=cfg.log_json, secrets_from=[cfg]
            )
        gw = gateway or await bootstrap(cfg)
        app.state.gateway = gw
        app.state.access = gw.services["access"]
        try:
            await gw.start()
            yield
        finally:
            if owned:
                await gw.aclose()
                obs_metrics.process_exited()
                flush_all()  # the last turn's access lines
            else:
                await gw.stop()

    app = GatewayApp(
        routes=[*routes, *docs_routes()],
        lifespan=lifespan,
        max_body_bytes=cfg.http.max_body_bytes,
    )
    app.state.openapi_bytes = serialise(build_document(app.routes))
    return app
