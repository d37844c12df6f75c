"""/openapi.json: generated from the routes and models in the app, valid OpenAPI 3.1."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest
from api_routes import ROUTES, ItemPage, NewItem
from openapi_spec_validator import validate
from pydantic.json_schema import models_json_schema
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount, Route, Router

from gateway.api.spec import operation
from gateway.app import create_app
from gateway.bootstrap import Gateway


def app_routes(routes: list[BaseRoute], prefix: str = "") -> list[tuple[str, Route]]:
    found = []
    for route in routes:
        if isinstance(route, Route):
            found.append((prefix + route.path, route))
        elif isinstance(route, Mount) and isinstance(route.app, Router):
            found.extend(app_routes(route.routes, prefix + route.path))
    return found


@pytest.fixture
async def document(client: httpx.AsyncClient) -> dict[str, Any]:
    response = await client.get("/openapi.json")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    return response.json()


async def test_the_document_is_valid_openapi_3_1(document: dict[str, Any]) -> None:
    assert document["openapi"].startswith("3.1")
    validate(document)


async def test_every_route_in_the_app_is_documented(
    gateway: Gateway, document: dict[str, Any]
) -> None:
    app = create_app(gateway=gateway, extra_routes=ROUTES)
    undocumented = set()
    for path, route in app_routes(app.routes):
        if not route.include_in_schema:
            undocumented.add(path)
            continue
        template = re.sub(r"{([^}:]+)(:[^}]+)?}", r"{\1}", path)
        assert template in document["paths"], path
        for method in route.methods or {"GET"}:
            if method != "HEAD":
                assert method.lower() in document["paths"][template], (method, path)
    assert undocumented <= {"/openapi.json", "/docs", "/metrics"}
    assert "/v1/test/items" in document["paths"] and "/healthz" in document["paths"]


async def test_operations_come_from_the_handlers_models(document: dict[str, Any]) -> None:
    ops = {op["operationId"]: op for item in document["paths"].values() for op in item.values()}
    _, defs = models_json_schema(
        [(ItemPage, "serialization"), (NewItem, "validation")],
        ref_template="#/components/schemas/{model}",
    )
    for name, schema in defs["$defs"].items():
        assert document["components"]["schemas"][name] == schema

    listing = ops["testListItems"]
    params = {p["name"]: p for p in listing["parameters"]}
    assert params["limit"]["schema"] == {
        "type": "integer",
        "minimum": 1,
        "maximum": 50,
        "default": 10,
    }
    assert params["tag"]["schema"]["type"] == "array"
    assert params["sort"]["schema"]["enum"] == ["name", "price"]
    ok = listing["responses"]["200"]
    assert ok["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/ItemPage"}
    for header in (
        "X-Request-ID",
        "X-RateLimit-Limit",
        "X-RateLimit-Remaining",
        "X-RateLimit-Reset",
        "RateLimit",
        "RateLimit-Policy",
    ):
        assert header in ok["headers"]
    assert {"400", "401", "403", "429", "default"} <= set(listing["responses"])
    assert listing["security"] == [{"bearerAuth": []}, {"apiKeyHeader": []}]
    assert listing["x-required-scope"] == "catalog:read"

    create = ops["testCreateItem"]
    idempotency = next(p for p in create["parameters"] if p["name"] == "Idempotency-Key")
    assert idempotency["in"] == "header" and idempotency["required"] is True
    assert idempotency["schema"] == {"type": "string", "minLength": 1, "maxLength": 255}
    body = create["requestBody"]["content"]["application/json"]["schema"]
    assert body == {"$ref": "#/components/schemas/NewItem"}
    assert {"201", "413", "415", "422"} <= set(create["responses"])
    assert "Idempotent-Replayed" in create["responses"]["201"]["headers"]

    assert "security" not in ops["healthz"]


async def test_errors_rate_limits_and_security_are_described_once(
    document: dict[str, Any],
) -> None:
    components = document["components"]
    envelope = components["schemas"]["ErrorEnvelope"]
    error = components["schemas"]["ErrorObject"]
    assert envelope["required"] == ["error"]
    assert set(error["required"]) == {"code", "message", "request_id"}
    too_many = components["responses"]["Error429"]
    assert too_many["content"]["application/json"]["schema"]["$ref"].endswith("/ErrorEnvelope")
    assert {"Retry-After", "X-RateLimit-Reset", "RateLimit"} <= set(too_many["headers"])
    assert components["headers"]["Retry-After"]["required"] is True
    assert components["securitySchemes"]["bearerAuth"] == {
        "type": "http",
        "scheme": "bearer",
        "description": "Authorization: Bearer gw_live_...",
    }
    assert components["securitySchemes"]["apiKeyHeader"]["name"] == "X-API-Key"


@operation(summary="No scope", operation_id="noScope", tag="test")
async def unscoped(request: Request) -> Response:
    return Response()


async def unannotated(request: Request) -> Response:
    return Response()


def test_a_v1_route_without_a_scope_is_refused_at_build_time(gateway: Gateway) -> None:
    for endpoint in (unscoped, unannotated):
        with pytest.raises(ValueError, match="every /v1 route requires a key"):
            create_app(gateway=gateway, extra_routes=[Route("/v1/open", endpoint)])


def test_duplicate_operation_ids_are_refused_at_build_time(gateway: Gateway) -> None:
    with pytest.raises(ValueError, match="duplicate operation_id 'noScope'"):
        create_app(
            gateway=gateway,
            extra_routes=[Route("/a", unscoped), Route("/b", unscoped)],
        )
