"""The front door: the one ASGI layer every HTTP request passes, and the API's one face.

One layer rather than a stack (observability, request ids, body limit, error envelope,
Starlette's two exception middlewares): each layer costs a call frame and a wrapped
``send`` per request, and the catalog's throughput target counts microseconds. So
``FrontDoor`` does, in one pass over the request headers:

* the request id: the caller's ``X-Request-ID`` when well formed (1-128 characters of
  ``[A-Za-z0-9._-]``), so a reseller can correlate its logs with ours, else a fresh one;
  sent back on every response;
* the body limit: 413 from ``Content-Length`` before anything runs, and while streaming;
* observability (``gateway.observability.requests``): log context, metrics, log line,
  including for the answers the layers below give before routing (401, 403, 429) and
  the 500 of an unexpected exception;
* every error in one envelope, ``{"error": {"code", "message", "request_id"}}``, here
  and nowhere else: the domain errors services raise (``gateway.errors``: orders,
  access, catalog; turned into a status and ``Retry-After`` by
  ``gateway.api.errors.from_domain``), ``ApiError`` (handlers, parsing), Starlette's
  ``HTTPException`` (unknown route 404, wrong method 405 with ``Allow``), Redis
  unreachable on any request path (503 ``service_unavailable`` with ``Retry-After``,
  ``gateway.store.unavailable``), and anything else, ``gateway.errors.Internal``
  included, logged with the request id and a traceback and answered 500
  ``internal_error`` with no detail.

``GatewayApp`` is a ``Starlette`` whose middleware stack is exactly this door over the
router: Starlette's ``ServerErrorMiddleware`` and ``ExceptionMiddleware`` would only
repeat what the door does.

Stable codes: ``not_found`` (no route; no product), ``method_not_allowed``,
``invalid_parameter`` (400 query),
``malformed_json`` (400), ``bad_request`` (400 other), ``validation_failed`` (422 body),
``body_too_large`` (413), ``unsupported_media_type`` (415),
``authentication_required`` / ``invalid_api_key`` (401), ``insufficient_scope`` /
``ip_not_allowed`` / ``reseller_disabled`` (403), ``rate_limited`` (429),
``service_unavailable`` / ``rate_limiter_unavailable`` (503), ``internal_error`` (500);
features add their own (``order_not_found``, ``price_changed`` ...).

Inner layers attach response headers with ``add_response_headers`` (the access guard's
rate-limit headers and authentication challenges), and they are sent on whatever
response ends the request, errors included.
"""

from __future__ import annotations

import itertools
import logging
import os
import re
import time
from collections.abc import Awaitable, Sequence
from typing import Any

from starlette.applications import Starlette
from starlette.datastructures import State
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Match, Mount, Route, Router
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.api.connections import ConnectionLimits
from gateway.api.errors import ApiError, error_body, from_domain
from gateway.errors import GatewayError, Internal
from gateway.observability.requests import RequestObserver
from gateway.store import unavailable

log = logging.getLogger("gateway.api")

_REQUEST_ID = re.compile(rb"^[A-Za-z0-9._-]{1,128}$")
_EXTRA_HEADERS = "gateway.response_headers"

_HTTP_CODES = {
    400: "bad_request",
    401: "authentication_required",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    413: "body_too_large",
    415: "unsupported_media_type",
    422: "validation_failed",
    429: "rate_limited",
    500: "internal_error",
    503: "service_unavailable",
}
_HTTP_MESSAGES = {
    404: "there is nothing at this path",
    405: "this method is not allowed here; see the Allow header",
}


def add_response_headers(scope: Scope, headers: list[tuple[bytes, bytes]]) -> None:
    """Send ``headers`` (lower-case names) on the response to this request, whatever it is."""
    extra = scope.get(_EXTRA_HEADERS)
    if extra is not None:
        extra.extend(headers)


def error_response(
    request_id: str | None,
    status: int,
    code: str,
    message: str,
    *,
    headers: dict[str, str] | None = None,
    details: Any = None,
) -> Response:
    """The one place an error becomes an HTTP response."""
    return JSONResponse(
        error_body(code, message, request_id, details), status_code=status, headers=headers
    )


def _error_for(exc: Exception, rid: str) -> Response | None:
    """The envelope for an error a client caused or may retry (``None``: a bug)."""
    if isinstance(exc, Internal):
        return None  # logged with its traceback as unhandled, answered 500 without detail
    store_down = unavailable(exc)
    if store_down is not None:
        log.warning("the store is unreachable: %s (request %s)", type(exc).__name__, rid)
        exc = store_down
    if isinstance(exc, GatewayError):
        exc = from_domain(exc)
    if isinstance(exc, ApiError):
        return error_response(
            rid, exc.status, exc.code, exc.message, headers=exc.headers, details=exc.details
        )
    if isinstance(exc, HTTPException):
        status = exc.status_code
        return error_response(
            rid,
            status,
            _HTTP_CODES.get(status, f"http_{status}"),
            _HTTP_MESSAGES.get(status) or str(exc.detail),
            headers=dict(exc.headers or {}),
        )
    return None


class _BodyTooLarge(ApiError):
    def __init__(self, limit: int) -> None:
        super().__init__(
            413, "body_too_large", f"the request body exceeds the limit of {limit} bytes"
        )


class RequestIds:
    """Fresh request ids: 64 random bits drawn once per process, then a counter, so ids
    stay unique across instances and restarts without a system call per request."""

    def __init__(self) -> None:
        self._prefix = os.urandom(8).hex()
        self._next = itertools.count(1).__next__

    def new(self) -> str:
        return f"{self._prefix}{self._next():08x}"


class FrontDoor:
    def __init__(
        self, app: ASGIApp, *, max_body_bytes: int, observer: RequestObserver | None = None
    ) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.observer = observer or RequestObserver()
        self.request_ids = RequestIds()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid, content_length = None, None
        for name, value in scope["headers"]:
            if name == b"x-request-id":
                if _REQUEST_ID.match(value):
                    rid = value.decode("latin-1")
            elif name == b"content-length":
                content_length = value
        state = scope.get("state")
        if state is None:
            state = scope["state"] = {}
        issued = None
        rid = state.get("request_id") or rid
        if rid is None:
            rid = issued = self.request_ids.new()
        state["request_id"] = rid
        extra: list[tuple[bytes, bytes]] = [(b"x-request-id", rid.encode("latin-1"))]
        scope[_EXTRA_HEADERS] = extra
        status = 500  # stays so unless a response starts (cancelled at shutdown, say)
        started = False

        # Not a coroutine function: it hands back the server's own ``send`` awaitable,
        # one coroutine per message fewer (two per request) for the same effect.
        def send_with_headers(message: Message) -> Awaitable[None]:
            nonlocal started, status
            if message["type"] == "http.response.start":
                started = True
                status = message["status"]
                message = {**message, "headers": [*message.get("headers", ()), *extra]}
            return send(message)

        limit = self.max_body_bytes
        received = 0

        async def receive_limited() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise _BodyTooLarge(limit)
            return message

        observer = self.observer
        request = observer.begin(scope, state, issued)
        began = time.perf_counter()
        try:
            if content_length is not None:
                if not content_length.isdigit():  # bytes: ASCII digits only
                    raise ApiError(400, "bad_request", "Content-Length is not a number")
                # Length first: int() refuses strings of more than 4300 digits.
                if len(content_length) > 18 or int(content_length) > limit:
                    raise _BodyTooLarge(limit)
            await self.app(scope, receive_limited, send_with_headers)
        except ClientDisconnect:
            log.info("client disconnected before the request was read (request %s)", rid)
            if not started:
                status = 499  # nginx's name for it: nobody is left to answer
        except Exception as exc:
            response = _error_for(exc, rid)
            if response is None:
                log.exception(
                    "unhandled error in %s %s (request %s)",
                    scope.get("method"),
                    scope.get("path"),
                    rid,
                    extra={"request_id": rid},
                )
                response = error_response(
                    rid,
                    500,
                    "internal_error",
                    f"an unexpected error occurred; quote request id {rid} when reporting it",
                )
            if started:
                # Too late for an error response: the server closes the connection.
                log.warning("error after the response started (request %s)", rid)
                status = 500
            else:
                await response(scope, receive, send_with_headers)
        finally:
            observer.end(request, status, time.perf_counter() - began)


class _AnswerErrors:
    """Answers the errors a client caused right above the router, so that middleware added
    to the app sees those responses; the door answers everything else (an unexpected
    error, an error after the response started)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def watched(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, watched)
        except Exception as exc:
            response = None if started else _error_for(exc, scope["state"]["request_id"])
            if response is None:
                raise
            await response(scope, receive, send)


class AppState(State):
    """Starlette's ``State`` whose values are also plain attributes of the object.

    Starlette keeps ``app.state``'s values in a dict behind ``__getattr__``, which Python
    calls only after its own look-up has failed, raising and formatting an
    ``AttributeError`` first: about 2,000 instructions for each ``app.state.access``
    (the access guard) and ``app.state.gateway`` (handlers), every request. Here an
    assignment also sets the attribute itself, so reading it is an ordinary attribute
    look-up; the dict stays the one ``State``'s other methods read, and item assignment
    (``state["access"] = ...``) keeps both the same."""

    def __setattr__(self, key: Any, value: Any) -> None:
        self._state[key] = value
        object.__setattr__(self, key, value)

    def __delattr__(self, key: Any) -> None:
        del self._state[key]
        object.__delattr__(self, key)

    def __setitem__(self, key: str, value: Any) -> None:
        self.__setattr__(key, value)

    def __delitem__(self, key: str) -> None:
        self.__delattr__(key)


class GatewayApp(Starlette):
    """A ``Starlette`` whose middleware stack is one ``FrontDoor`` over the router.

    Middleware added with ``add_middleware`` runs *inside* the door, between it and the
    router, in Starlette's order (the last added is the outermost of them): every
    response still gets the request id, the metrics and the log line, and whatever such
    a middleware raises is answered in the error envelope (or logged as a 500), as for a
    handler. The errors of routes and handlers are answered below them (``_AnswerErrors``,
    with the door's own ``_error_for``), so they see those responses too, as Starlette's
    own ``ExceptionMiddleware`` would let them. Only what is added pays: without any, the
    door calls the router directly.

    ``add_exception_handler`` raises: errors are answered by the door alone (raise
    ``ApiError`` or a ``gateway.errors`` domain error instead), and a handler Starlette
    would call from the middleware stack the door replaces would never run.

    A path that differs from a route only by a trailing slash is a 404 like any unknown
    path: Starlette would redirect it to an absolute URL built from the request's
    ``Host`` header, which the client wrote (an open redirect to any host).

    ``connection_limits`` is read by the server's protocol (``gateway.api.connections``)."""

    def __init__(
        self,
        *,
        routes: Sequence[BaseRoute],
        lifespan: Any,
        max_body_bytes: int,
        connection_limits: ConnectionLimits | None = None,
    ) -> None:
        super().__init__(routes=routes, lifespan=lifespan)
        self.state = AppState()
        self.router = ExactPathRouter(routes, lifespan=lifespan)
        self.max_body_bytes = max_body_bytes
        self.connection_limits = connection_limits or ConnectionLimits()
        _no_slash_redirects(self.router)

    def build_middleware_stack(self) -> ASGIApp:
        # The router's own stack (its ``app``, unless router-level middleware was given):
        # ``Router.__call__`` only forwards to it, one frame per request for nothing.
        app: ASGIApp = self.router.middleware_stack
        if self.user_middleware:
            app = _AnswerErrors(app)
        for cls, args, kwargs in reversed(self.user_middleware):
            app = cls(app, *args, **kwargs)
        return FrontDoor(app, max_body_bytes=self.max_body_bytes)

    def add_exception_handler(self, exc_class_or_status_code: Any, handler: Any) -> None:
        raise TypeError(
            "GatewayApp answers every error in its front door: raise gateway.api.errors."
            "ApiError or a gateway.errors domain error instead of adding an exception handler"
        )


class _RouteList(list[BaseRoute]):
    """A router's routes, counting their changes (``ExactPathRouter`` re-indexes then)."""

    changes = 0


def _counted(name: str) -> Any:
    change = getattr(list, name)

    def method(self: _RouteList, *args: Any) -> Any:
        self.changes += 1
        return change(self, *args)

    method.__name__ = name
    return method


for _name in (
    "append", "extend", "insert", "pop", "remove", "clear", "sort", "reverse",
    "__setitem__", "__delitem__", "__iadd__", "__imul__",
):  # fmt: skip
    setattr(_RouteList, _name, _counted(_name))


class ExactPathRouter(Router):
    """Starlette's ``Router``, finding a route with a fixed path (``/v1/search``) by one
    dictionary look-up instead of trying every route's regular expression in turn.

    Starlette matches a request against each route in order until one matches fully;
    for the gateway's busiest paths that is a few regular-expression matches, each
    building a scope, per request (about 6 % of a cached search's instructions). Here a
    request whose path is exactly the path of a route without parameters, with a
    method that route takes, goes straight to it, as the scan would have: a path is
    only indexed when no route before it could match it (fully or partially), so the
    scan would have reached this route first. Everything else (parameters, a method
    the route does not take, an app mounted under a ``root_path``, websockets) is left
    to Starlette's scan. The index is rebuilt whenever the route list changes."""

    _exact: dict[str, Route] | None = None
    _indexed = -1

    @property
    def routes(self) -> _RouteList:
        return self._routes

    @routes.setter
    def routes(self, routes: list[BaseRoute]) -> None:
        self._routes = _RouteList(routes)
        self._exact = None

    def app(self, scope: Scope, receive: Receive, send: Send) -> Awaitable[None]:  # type: ignore[override]
        """The route's own awaitable (or Starlette's scan): not a coroutine function of
        its own, which would only await the one it calls (a frame per request)."""
        if scope["type"] == "http" and not scope.get("root_path"):
            routes = self._routes
            if self._exact is None or self._indexed != routes.changes:
                self._exact = _exact_paths(routes)
                self._indexed = routes.changes
            route = self._exact.get(scope["path"])
            if route is not None and (route.methods is None or scope["method"] in route.methods):
                if "router" not in scope:
                    scope["router"] = self
                scope["route"] = route
                scope["endpoint"] = route.endpoint
                params = scope.get("path_params")
                scope["path_params"] = dict(params) if params else {}
                return route.app(scope, receive, send)
        return super().app(scope, receive, send)


def _exact_paths(routes: Sequence[BaseRoute]) -> dict[str, Route]:
    """Fixed paths to the route Starlette's scan would reach first for them."""
    table: dict[str, Route] = {}
    for i, route in enumerate(routes):
        if type(route) is not Route or route.param_convertors or route.path in table:
            continue
        probe: Scope = {"type": "http", "path": route.path, "root_path": "", "method": "GET"}
        probe.update(headers=[], path_params={})
        if not any(_may_match(earlier, probe) for earlier in routes[:i]):
            table[route.path] = route
    return table


def _may_match(route: BaseRoute, probe: Scope) -> bool:
    try:
        return route.matches(probe)[0] is not Match.NONE
    except Exception:  # a route that cannot even say: never bypass it
        return True


def _no_slash_redirects(router: Router) -> None:
    router.redirect_slashes = False
    for route in router.routes:
        if isinstance(route, Mount) and isinstance(route.app, Router):
            _no_slash_redirects(route.app)
