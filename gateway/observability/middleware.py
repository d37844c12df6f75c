"""One pure ASGI middleware that measures and logs every HTTP request.

Pure ASGI rather than ``BaseHTTPMiddleware``: it adds no task, no copy of the body and no
context copy, so the per-request cost stays at a few microseconds (the catalog's
throughput target counts them), and a value bound to the log context anywhere inside the
request is seen by the closing line.

It must be the outermost middleware of the app, so that it sees every answer, including
the ones the access layer gives before routing (401, 403, 429) and the 500 of an
unexpected exception. For each request it:

* opens a ``LogContext`` over ``scope["state"]`` with the request id (a well-formed
  incoming ``X-Request-ID``, or a new one, left in ``scope["state"]["request_id"]``). The
  API face (``gateway.api.middleware``) settles the id the client sees and writes it to
  the same place, so every line written during the request carries that one; the header
  is added here only when no inner layer sent it;
* counts it in ``gateway_http_requests_total`` and times it in
  ``gateway_http_request_duration_seconds`` under its route *template*;
* writes one log line: request id, reseller id (the access guard leaves the reseller in
  ``scope["state"]["reseller"]``; ``bind(reseller_id=...)`` works too), route, method,
  status, duration. Probe and scrape routes log at DEBUG so they do not drown the rest.
"""

from __future__ import annotations

import logging
import os
import re
import time
from collections.abc import Collection
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.observability import metrics
from gateway.observability.logging import LogContext, close_context, current_context, open_context

log = logging.getLogger("gateway.http")

REQUEST_ID_HEADER = b"x-request-id"
#: What an incoming request id may look like to be echoed (no spaces, no control bytes).
REQUEST_ID_RE = re.compile(r"^[A-Za-z0-9._-]{1,128}$")  # as the API face echoes
QUIET_ROUTES = frozenset({"/healthz", "/readyz", "/metrics"})


def new_request_id() -> str:
    return os.urandom(16).hex()  # as unique as a uuid4, without building one


def incoming_request_id(scope: Scope) -> str | None:
    for name, value in scope.get("headers", ()):
        if name == REQUEST_ID_HEADER:
            text = value.decode("latin-1")
            return text if REQUEST_ID_RE.match(text) else None
    return None


class ObservabilityMiddleware:
    def __init__(self, app: ASGIApp, *, quiet_routes: Collection[str] = QUIET_ROUTES) -> None:
        self.app = app
        self.quiet_routes = frozenset(quiet_routes)
        self.templates = metrics.RouteTemplates()
        # Metric children by label values: bounded (templates x methods x statuses), and
        # looking them up here is cheaper than prometheus-client's labels() each time.
        self._children: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        state = scope.setdefault("state", {})
        if "request_id" not in state:
            # An inner layer (the API face) may settle the id; a new one is drawn only
            # if none has by the time the response starts.
            incoming = incoming_request_id(scope)
            if incoming is not None:
                state["request_id"] = incoming
        token = open_context(state=state)
        ctx = current_context()
        assert ctx is not None
        templates = self.templates
        ctx.route_of = lambda: templates.routed(scope)
        started = time.perf_counter()
        status = 500
        answered = False

        async def send_and_watch(message: Message) -> None:
            nonlocal status, answered
            if message["type"] == "http.response.start":
                status = int(message["status"])
                answered = True
                headers = message.get("headers", ())
                sent_id = next((v for k, v in headers if k.lower() == REQUEST_ID_HEADER), None)
                if sent_id is None:
                    rid = state.setdefault("request_id", new_request_id())
                    extra = (REQUEST_ID_HEADER, str(rid).encode("latin-1"))
                    message = {**message, "headers": [*headers, extra]}
                else:
                    state["request_id"] = sent_id.decode("latin-1")  # the one the client saw
            await send(message)

        metrics.HTTP_IN_FLIGHT.inc()
        try:
            await self.app(scope, receive, send_and_watch)
        except BaseException:
            # The server answers 500 (or the client went away, 499 in nginx terms).
            if not answered:
                status = 500
            raise
        finally:
            metrics.HTTP_IN_FLIGHT.dec()
            self._record(scope, ctx, status, time.perf_counter() - started)
            close_context(token)

    def _record(self, scope: Scope, ctx: LogContext, status: int, elapsed: float) -> None:
        route = self.templates.label(scope)
        method = metrics.normalise_method(scope.get("method", ""))
        key = (route, method, status)
        children = self._children.get(key)
        if children is None:
            children = (
                metrics.HTTP_REQUESTS.labels(route, method, str(status)),
                metrics.HTTP_LATENCY.labels(route, method),
            )
            self._children[key] = children
        children[0].inc()
        children[1].observe(elapsed)
        if status >= 500:
            level = logging.ERROR
        elif route in self.quiet_routes:
            level = logging.DEBUG
        else:
            level = logging.INFO
        if not log.isEnabledFor(level):
            return
        ctx.route = route
        ctx.route_of = None
        ctx.resolve()
        log.log(
            level,
            "%s %s %d",
            method,
            route,
            status,
            extra={
                "request_id": ctx.request_id,
                "reseller_id": ctx.reseller_id,
                "route": route,
                "method": method,
                "status": status,
                "duration_ms": round(elapsed * 1000, 3),
            },
        )
