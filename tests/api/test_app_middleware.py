"""``GatewayApp.add_middleware`` is honoured: added middleware runs inside the front door,
in Starlette's order, so its answers and its errors still carry the request id and the
error envelope. ``add_exception_handler`` is refused with a clear error rather than
silently ignored."""

from __future__ import annotations

import pytest
from api_routes import FAILING_ROUTES, ROUTES
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.access.testing import TestCaller
from gateway.api.errors import ApiError
from gateway.api.testing import serve_in_process
from gateway.app import create_app
from gateway.bootstrap import Gateway


class Stamp:
    """Adds ``X-Stamp: <name>`` (appended, so the order of several shows) to responses."""

    def __init__(self, app: ASGIApp, name: str) -> None:
        self.app = app
        self.name = name

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def stamped(message: Message) -> None:
            if message["type"] == "http.response.start":
                stamp = (b"x-stamp", self.name.encode())
                message = {**message, "headers": [*message.get("headers", ()), stamp]}
            await send(message)

        await self.app(scope, receive, stamped)


class RefuseTeapots:
    """Refuses requests with ``X-Teapot`` before they reach the router."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and any(name == b"x-teapot" for name, _ in scope["headers"]):
            raise ApiError(418, "teapot", "no teapots here")
        await self.app(scope, receive, send)


async def test_added_middleware_runs_on_public_and_protected_routes(
    gateway: Gateway, caller: TestCaller
) -> None:
    app = create_app(gateway=gateway, extra_routes=ROUTES)
    app.add_middleware(Stamp, name="first")
    app.add_middleware(Stamp, name="second")  # the last added is the outermost
    async with serve_in_process(app) as client:
        public = await client.get("/healthz")
        protected = await client.get("/v1/test/items", headers=caller.headers)
        refused = await client.get("/v1/test/items")  # no key: 401 from the access guard
    for response in (public, protected, refused):
        # The inner one stamps first, so its header comes first.
        assert response.headers.get_list("x-stamp") == ["first", "second"]
        assert response.headers["x-request-id"]  # the door is still outside them
    assert public.status_code == 200 and protected.status_code == 200
    assert refused.status_code == 401
    assert refused.json()["error"]["code"] == "authentication_required"


async def test_an_error_raised_by_added_middleware_gets_the_envelope(gateway: Gateway) -> None:
    app = create_app(gateway=gateway)
    app.add_middleware(RefuseTeapots)
    async with serve_in_process(app) as client:
        refused = await client.get("/healthz", headers={"X-Teapot": "1", "X-Request-ID": "tea-1"})
        passed = await client.get("/healthz")
    assert refused.status_code == 418
    assert refused.json() == {
        "error": {"code": "teapot", "message": "no teapots here", "request_id": "tea-1"}
    }
    assert refused.headers["x-request-id"] == "tea-1"
    assert passed.status_code == 200


async def test_middleware_cannot_be_added_once_the_app_runs(gateway: Gateway) -> None:
    app = create_app(gateway=gateway)
    async with serve_in_process(app) as client:
        assert (await client.get("/healthz")).status_code == 200
        with pytest.raises(RuntimeError, match="after an application has started"):
            app.add_middleware(RefuseTeapots)


def test_exception_handlers_are_refused_not_ignored(gateway: Gateway) -> None:
    def handler(request: Request, exc: Exception) -> Response:
        return Response(status_code=418)

    app = create_app(gateway=gateway)
    with pytest.raises(TypeError, match="front door"):
        app.add_exception_handler(ValueError, handler)


async def test_routing_errors_pass_added_middleware_and_crashes_still_answer_500(
    gateway: Gateway,
) -> None:
    app = create_app(gateway=gateway, extra_routes=FAILING_ROUTES)
    app.add_middleware(Stamp, name="only")
    async with serve_in_process(app) as client:
        missing = await client.get("/nowhere")
        crashed = await client.get("/test/boom")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
    assert missing.headers.get_list("x-stamp") == ["only"]
    assert crashed.status_code == 500
    assert crashed.json()["error"]["code"] == "internal_error"
    assert crashed.headers["x-request-id"] == crashed.json()["error"]["request_id"]


def test_app_state_reads_the_same_by_attribute_and_by_item() -> None:
    """``AppState`` keeps each value as an attribute too (a plain look-up per request);
    every way of writing or deleting a value is seen by every way of reading it."""
    from starlette.datastructures import State

    from gateway.api.middleware import AppState

    app = create_app()
    state = app.state
    assert isinstance(state, AppState) and isinstance(state, State)
    state.access = "first"
    assert (state.access, state["access"], state._state["access"]) == ("first",) * 3
    state["access"] = "second"
    assert (state.access, state["access"]) == ("second", "second")
    del state.access
    assert not hasattr(state, "access") and "access" not in state._state
    state["gateway"] = "g"
    assert state.gateway == "g"
    del state["gateway"]
    with pytest.raises(AttributeError):
        _ = state.gateway
    with pytest.raises(KeyError):
        _ = state["gateway"]
