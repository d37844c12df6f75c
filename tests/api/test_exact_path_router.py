"""``ExactPathRouter`` answers every request with the route Starlette's own scan picks:
the dictionary look-up of fixed paths is a shortcut, never a different decision."""

from __future__ import annotations

from typing import Any

import pytest
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import BaseRoute, Mount, Route, Router

from gateway.api.middleware import ExactPathRouter


def _endpoint(name: str) -> Any:
    async def endpoint(request: Request) -> Response:
        return PlainTextResponse(f"{name} {dict(request.path_params)}")

    return endpoint


def _routes() -> list[BaseRoute]:
    return [
        Route("/items/{item_id}", _endpoint("item"), methods=["GET"]),
        Route("/items/special", _endpoint("special"), methods=["GET"]),  # shadowed above
        Route("/search", _endpoint("search"), methods=["GET"]),
        Route("/orders", _endpoint("list-orders"), methods=["GET"]),
        Route("/orders", _endpoint("place-order"), methods=["POST"]),
        Route("/anything", _endpoint("any-method")),
        Mount("/mounted", routes=[Route("/search", _endpoint("inner"), methods=["GET"])]),
        Route("/mounted/search", _endpoint("after-mount"), methods=["GET"]),  # shadowed
    ]


async def _answer(router: Router, method: str, path: str, root_path: str = "") -> Any:
    scope = {
        "type": "http",
        "method": method,
        "path": root_path + path,
        "root_path": root_path,
        "headers": [],
        "query_string": b"",
        "app": object(),  # as under an application: 405 raised, not answered
    }
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    try:
        await router(scope, receive, send)
    except HTTPException as exc:
        return exc.status_code, dict(exc.headers or {})
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    route = scope.get("route")
    return sent[0]["status"], body, getattr(route, "path", None), scope.get("path_params")


@pytest.mark.parametrize(
    ("method", "path", "root_path"),
    [
        ("GET", "/search", ""),
        ("HEAD", "/search", ""),
        ("POST", "/search", ""),  # 405 with Allow
        ("GET", "/items/special", ""),  # the parameter route before it wins
        ("GET", "/items/7", ""),
        ("GET", "/orders", ""),
        ("POST", "/orders", ""),  # the second route of the same path
        ("DELETE", "/orders", ""),
        ("PATCH", "/anything", ""),
        ("GET", "/mounted/search", ""),  # the mount before the fixed path wins
        ("GET", "/search", "/prefix"),  # served under a root path: the scan decides
        ("GET", "/nowhere", ""),
    ],
)
async def test_every_request_gets_the_route_starlettes_scan_picks(
    method: str, path: str, root_path: str
) -> None:
    routes = _routes()
    expected = await _answer(Router(routes), method, path, root_path)
    assert await _answer(ExactPathRouter(routes), method, path, root_path) == expected


async def test_routes_added_later_are_found() -> None:
    router = ExactPathRouter(_routes())
    assert (await _answer(router, "GET", "/search"))[1] == b"search {}"
    router.routes.insert(0, Route("/{name}", _endpoint("catch-all"), methods=["GET"]))
    assert (await _answer(router, "GET", "/search"))[1] == b"catch-all {'name': 'search'}"
    router.routes.pop(0)
    assert (await _answer(router, "GET", "/search"))[1] == b"search {}"
    router.routes[2] = Route("/search", _endpoint("replaced"), methods=["GET"])
    assert (await _answer(router, "GET", "/search"))[1] == b"replaced {}"
    router.routes = [Route("/late", _endpoint("late"), methods=["GET"])]
    assert (await _answer(router, "GET", "/late"))[1] == b"late {}"
    assert (await _answer(router, "GET", "/search"))[0] == 404
