"""What the gateway records about every HTTP request: metrics, log context, one log line.

Not a middleware of its own: the front door (``gateway.api.middleware.FrontDoor``) calls
``begin`` and ``end`` around each request, because every ASGI layer costs a call frame
and a wrapped ``send`` per request, and the catalog's throughput target counts them.

For each request:

* ``begin`` opens a ``LogContext`` over ``scope["state"]``, so every line written while
  the request is served carries its request id (``state["request_id"]``), its reseller
  (the access guard leaves it in ``state["reseller"]``; ``bind(reseller_id=...)`` works
  too) and, once routed, its route template;
* ``end`` counts it in ``gateway_http_requests_total`` and times it in
  ``gateway_http_request_duration_seconds`` under its route *template* (bounded labels),
  through the process's ``HttpTally`` (handed to prometheus-client once per loop turn),
  and writes one access-log line (``gateway.observability.access_log``: logger
  ``gateway.http``, batched per loop turn): request id, reseller id, route, method,
  status, duration. Probe and scrape routes log at DEBUG so they do not drown the rest;
  a 5xx is an error line, written at once.
"""

from __future__ import annotations

import logging
from asyncio import _get_running_loop  # the running loop or None: no exception to catch
from collections.abc import Collection
from typing import Any

from starlette.types import Scope

from gateway.observability import metrics
from gateway.observability.access_log import ACCESS_LOG, AccessLog
from gateway.observability.logging import LogContext, close_context, enter_context
from gateway.observability.metrics import RouteTemplates

QUIET_ROUTES = frozenset({"/healthz", "/readyz", "/metrics"})


class RequestContext(LogContext):
    """The log context of one HTTP request, made the current context when built, and
    what ``end`` needs of it: a few stores to build (no closure), the route template
    asked of the router only when a line is written, the context variable's token to
    close it with, and the running loop, looked up once (asyncio asks the kernel for the
    process id at every look-up) for the tally and the access log, which each flush once
    per loop turn."""

    def __init__(
        self,
        state: dict[str, Any],
        scope: Scope,
        templates: RouteTemplates,
        issued_request_id: str | None,
    ) -> None:
        self.state = state
        self.scope = scope
        self.templates = templates
        if issued_request_id is not None:
            self.issued_request_id = issued_request_id
        self.loop = _get_running_loop()
        self.token = enter_context(self)

    def routed(self) -> str | None:
        return self.templates.routed(self.scope)


class RequestObserver:
    def __init__(
        self,
        *,
        quiet_routes: Collection[str] = QUIET_ROUTES,
        tally: metrics.HttpTally = metrics.HTTP_TALLY,
        access_log: AccessLog = ACCESS_LOG,
    ) -> None:
        self.quiet_routes = frozenset(quiet_routes)
        self.access_log = access_log
        self.templates = RouteTemplates()
        self.tally = tally

    def begin(
        self, scope: Scope, state: dict[str, Any], issued_request_id: str | None = None
    ) -> RequestContext:
        """Open the request's log context and count it in flight (``issued_request_id``:
        the request id when the front door made it up, not the caller); hand the
        context to ``end``."""
        request = RequestContext(state, scope, self.templates, issued_request_id)
        self.tally.started(request.loop)
        return request

    def end(self, request: RequestContext, status: int, elapsed: float) -> None:
        """Count, time and log the finished request; close its log context.

        Written as one function on purpose: it runs for every request, and each call
        it saves is a measurable part of a cached search's cost."""
        try:
            scope = request.scope
            route = self.templates.label(scope)
            method = scope.get("method", "")
            if method not in metrics.METHODS:
                method = "other"
            self.tally.finished(route, method, status, elapsed, request.loop)
            if status >= 500:
                level = logging.ERROR
            elif route in self.quiet_routes:
                level = logging.DEBUG
            else:
                level = logging.INFO
            access = self.access_log
            if access.logger.isEnabledFor(level):
                request.route = route
                request.resolve()
                access.write(level, method, route, status, elapsed, request, request.loop)
        finally:
            close_context(request.token)
