"""The Starlette application: every feature's routes over one ``Gateway``, one API face.

Adding a feature's routes
-------------------------
1. Decorate each handler with ``@operation(...)`` (``gateway/api/spec.py``): summary, a
   unique ``operation_id``, ``tag``, the ``scope`` a key needs (required on every ``/v1``
   route: ``catalog:read``, ``orders:read`` or ``orders:write``; ``None`` is public), the
   query/body/response models, the error statuses it raises, request/response headers.
2. Put the feature's logic in a service (``gateway/<feature>/``) that raises the domain
   errors of ``gateway.errors`` (``NotFound``, ``Conflict``, ``Unprocessable`` ... with a
   stable code) and imports neither ``gateway.api`` nor Starlette
   (``tests/api/test_layering.py`` checks); the front door maps them to HTTP. In the
   handler, parse with ``parse_query`` / ``parse_body`` (they raise
   ``gateway.api.errors.ApiError``, the API's own errors), and read the caller from
   ``request.state.reseller`` (``Reseller``) and ``request.state.api_key`` (``ApiKey``).
3. Expose ``routes = [Route(...), ...]`` from ``gateway/api/<feature>.py`` and add
   ``*<feature>.routes`` to ``FEATURE_ROUTES`` below. That is all: the access guard,
   ``/openapi.json``, ``/docs``, the schemathesis test and the error envelope find the
   routes in the app.
4. Services are built in ``bootstrap()`` into ``gateway.services`` (``Services``: one
   typed attribute each, e.g. ``gateway.services.orders``) with idempotent ``start()`` /
   ``stop()``; the lifespan below starts them in that order and stops them in reverse.

Layers, outermost first, and why in this order
----------------------------------------------
1. ``FrontDoor`` (``gateway.api.middleware``), the only middleware: request id and
   ``X-Request-ID`` on every response, the body limit, metrics and the request's log
   line, and every error in the envelope (404, 405 with ``Allow``, 401/403/429, 500).
   Outside routing, so even a 404 gets them. One layer, because each layer costs a frame
   and a wrapped ``send`` per request (``GatewayApp`` drops Starlette's own two).
   Middleware added with ``app.add_middleware`` (plug-ins, tests) runs inside the door,
   above the router (see ``GatewayApp``).
2. The router, then per route ``AccessGuard`` (``gateway.api.guard``): key, reseller,
   IP allowlist, scope, rate limit (decided by ``gateway.access``; the guard adds the
   rate-limit headers and authentication challenges), then the handler itself. Per
   route rather than as a middleware because only the matched route knows its scope,
   and public routes (``/healthz``, ``/metrics``, ``/docs``) then pay nothing for it.

A request for a fixed path (``/v1/search``, ``/v1/products``) finds its route by one
dictionary look-up (``gateway.api.middleware.ExactPathRouter``); the others are matched
in order, so the busiest (catalog reads) come first.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Sequence

from starlette.applications import Starlette
from starlette.routing import BaseRoute

from gateway.api import accounts, catalog, health, orders
from gateway.api.connections import ConnectionLimits
from gateway.api.guard import protect
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
    *accounts.routes,
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
            obs_logging.configure_from(cfg)
        gw = gateway or await bootstrap(cfg)
        app.state.gateway = gw
        app.state.access = gw.services.access
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
        connection_limits=ConnectionLimits.from_settings(cfg.http),
    )
    app.state.openapi_bytes = serialise(build_document(app.routes))
    return app
