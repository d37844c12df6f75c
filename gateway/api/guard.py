"""Putting every protected route behind ``Access``, decided once when the app is built.

``protect(routes)`` replaces the ASGI app of each route whose ``@operation`` declares a
``scope`` (and refuses to build an app with a ``/v1`` route that declares none) with an
``AccessGuard`` that admits the request and then calls the handler itself, so the guard
knows its operation without matching the path again, and public routes pay nothing.
Calling the handler directly, rather than through Starlette's ``request_response``,
saves a layer and a wrapped ``send`` per request; errors propagate to the front door
(``gateway.api.middleware``), which answers them. Starlette checks the method before
calling the route's app, so a wrong method is a 405 whether or not a key was sent.

After admission the handler finds ``request.state.reseller`` (``Reseller``) and
``request.state.api_key`` (``ApiKey``, never the key itself).

The guard is the HTTP face of ``gateway.access``, which decides in domain terms: it
sends the key's quota as rate-limit headers (``gateway.api.ratelimit_headers``) on the
answer, whatever it is (a 429 included), and adds the RFC 6750 challenge
(``WWW-Authenticate``) to a refused credential (401) or a missing scope (403).
"""

from __future__ import annotations

import copy
import inspect
from collections.abc import Awaitable, Callable, Sequence

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount, Route, Router
from starlette.types import Receive, Scope, Send

from gateway.access.models import ALL_SCOPES
from gateway.access.ratelimit import RateLimited
from gateway.access.service import Access
from gateway.api.middleware import add_response_headers
from gateway.api.ratelimit_headers import quota_headers
from gateway.errors import Forbidden, Unauthenticated
from gateway.orders.ports import ResellerLike, reseller_of

PROTECTED_PREFIX = "/v1"


Handler = Callable[[Request], Awaitable[Response]]

_REALM = 'Bearer realm="gateway"'
#: RFC 6750 error attributes of the 401 challenge, by the refusal's code.
_TOKEN_ERRORS = {"invalid_api_key": ', error="invalid_token"'}


def _challenge(exc: Exception, required_scope: str) -> list[tuple[bytes, bytes]]:
    """The headers a refused admission is answered with (besides the error envelope)."""
    if isinstance(exc, RateLimited):
        return quota_headers(exc.quota)
    if isinstance(exc, Unauthenticated):
        value = _REALM + _TOKEN_ERRORS.get(exc.code, "")
    elif isinstance(exc, Forbidden) and exc.code == "insufficient_scope":
        value = f'{_REALM}, error="insufficient_scope", scope="{required_scope}"'
    else:
        return []
    return [(b"www-authenticate", value.encode("latin-1"))]


class AccessGuard:
    """The ASGI app of a protected route: admission, then the handler."""

    def __init__(self, handler: Handler, required_scope: str) -> None:
        self.handler = handler
        self.required_scope = required_scope

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        access: Access = scope["app"].state.access
        try:
            admitted = access.admitted(scope, self.required_scope)  # no coroutine: most calls
            if admitted is None:
                admitted = await access.admit(scope, self.required_scope)
            credential, quota = admitted
        except (Unauthenticated, Forbidden, RateLimited) as exc:
            add_response_headers(scope, _challenge(exc, self.required_scope))
            raise
        state = scope.setdefault("state", {})
        state["reseller"] = credential.reseller
        state["api_key"] = credential.key
        state["reseller_id"] = credential.reseller.id  # for the request's log line
        add_response_headers(scope, quota_headers(quota))
        response = await self.handler(Request(scope, receive, send))
        await response(scope, receive, send)


def protect(routes: Sequence[BaseRoute], prefix: str = "") -> list[BaseRoute]:
    """Copies of ``routes`` with their apps guarded; the originals are left untouched,
    so one route list can serve several apps (tests build many)."""
    guarded: list[BaseRoute] = []
    for route in routes:
        if isinstance(route, Route):
            guarded.append(_protect_route(route, prefix + route.path))
        elif isinstance(route, Mount) and isinstance(route.app, Router):
            inner = protect(route.routes, prefix + route.path)
            guarded.append(Mount(route.path, routes=inner, name=route.name))
        else:
            guarded.append(route)
    return guarded


def _protect_route(route: Route, full_path: str) -> Route:
    operation = getattr(route.endpoint, "__operation__", None)
    scope = operation.scope if operation is not None else None
    if scope is None:
        if full_path.startswith(PROTECTED_PREFIX + "/"):
            raise ValueError(
                f"route {full_path} needs @operation(scope=...): every /v1 route requires a key"
            )
        return route
    if scope not in ALL_SCOPES:
        raise ValueError(f"route {full_path}: unknown scope {scope!r} (one of {ALL_SCOPES})")
    if not inspect.iscoroutinefunction(route.endpoint):
        raise ValueError(f"route {full_path}: a protected handler must be an async function")
    guarded = copy.copy(route)
    guarded.app = AccessGuard(route.endpoint, scope)
    return guarded


def caller(request: Request) -> ResellerLike:
    """The reseller whose key the guard admitted for this request. Routes the guard does
    not protect have none: asking there is a wiring mistake, answered 401, never served
    as somebody's data."""
    reseller = reseller_of(request.state)
    if reseller is None:
        raise Unauthenticated("authentication_required", "an API key is required")
    return reseller
