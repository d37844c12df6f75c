"""``/openapi.json`` (OpenAPI 3.1) built from the app's own routes, and ``/docs``.

Nothing here is written by hand per endpoint: every route's ``@operation`` metadata
(``gateway.api.spec``) and the pydantic models it names produce the document, the same
models that parse requests and shape responses, so the two cannot drift. What every
operation shares is added here once: the error envelope for each error status it can
produce, ``X-Request-ID`` on every response, the rate-limit headers and the security
schemes on operations that need a key, and the documented request headers
(``Idempotency-Key`` required, 1-255 characters, where an operation declares it).

A route without ``@operation`` (a probe or scrape endpoint another module added) is still
listed, with what can be known about it, so "every route is documented" holds. Routes
built with ``include_in_schema=False`` (this module's own) are left out.

``/docs`` is Swagger UI from the ``swagger-ui-bundle-v2`` package, served from the
installed files (no CDN: the page works offline), with a strict Content-Security-Policy
that would block any outside fetch.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from importlib import metadata, resources
from typing import Any

from pydantic import BaseModel, Field
from pydantic.json_schema import models_json_schema
from starlette.convertors import (
    FloatConvertor,
    IntegerConvertor,
    PathConvertor,
    UUIDConvertor,
)
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import BaseRoute, Mount, Route, Router
from starlette.staticfiles import StaticFiles

from gateway.api.spec import Operation

_REF = "#/components/schemas/{model}"
_SECURITY: list[dict[str, list[str]]] = [{"bearerAuth": []}, {"apiKeyHeader": []}]
_STATUS_TEXT = {
    400: "Bad request: a parameter, header or the JSON is invalid.",
    401: "No API key, or not a valid one.",
    402: "The account cannot cover the order (insufficient_funds, order_limit_exceeded, "
    "daily_limit_exceeded); details say the currency, what was required and what was left.",
    403: "The key may not do this (scope, IP allowlist, reseller disabled).",
    404: "Not found.",
    409: "Conflict.",
    413: "The request body is larger than the configured limit.",
    415: "The body is not application/json.",
    422: "The body is well-formed JSON that does not fit the schema.",
    429: "The key's rate limit is exhausted; retry after Retry-After seconds.",
    500: "Unexpected error (quote the request id).",
    502: "An upstream supplier failed.",
    503: "Temporarily unavailable; retry after Retry-After seconds.",
    504: "An upstream supplier timed out.",
}
_KNOWN_REQUEST_HEADERS: dict[str, tuple[bool, dict[str, Any]]] = {
    "Idempotency-Key": (True, {"type": "string", "minLength": 1, "maxLength": 255}),
}


class ErrorObject(BaseModel):
    code: str = Field(description="Stable, machine-readable error code.")
    message: str = Field(description="Human-readable explanation.")
    request_id: str | None = Field(description="The X-Request-ID of the request.")
    details: Any = Field(
        default=None, description="Optional: per-field problems or error-specific data."
    )


class ErrorEnvelope(BaseModel):
    """Every error response of the gateway has this shape."""

    error: ErrorObject


_HEADERS: dict[str, dict[str, Any]] = {
    "X-Request-ID": {
        "description": "The request's id: the caller's own X-Request-ID when well formed "
        "(1-128 of [A-Za-z0-9._-]), else a new one.",
        "required": True,
        "schema": {"type": "string"},
    },
    "X-RateLimit-Limit": {
        "description": "Requests per minute allowed for this API key.",
        "schema": {"type": "integer"},
    },
    "X-RateLimit-Remaining": {
        "description": "Requests left before the key is limited.",
        "schema": {"type": "integer"},
    },
    "X-RateLimit-Reset": {
        "description": "Unix time (seconds) at which the full quota is available again.",
        "schema": {"type": "integer"},
    },
    "RateLimit-Policy": {
        "description": 'draft-ietf-httpapi-ratelimit-headers-10: `"key";q=<limit>;w=60`.',
        "schema": {"type": "string"},
    },
    "RateLimit": {
        "description": 'draft-ietf-httpapi-ratelimit-headers-10: `"key";r=<remaining>;t=<seconds '
        "until the quota is restored>`.",
        "schema": {"type": "string"},
    },
    "Retry-After": {
        "description": "Seconds to wait before retrying.",
        "required": True,
        "schema": {"type": "integer"},
    },
    "WWW-Authenticate": {
        "description": "The Bearer challenge (RFC 6750).",
        "required": True,
        "schema": {"type": "string"},
    },
}
_RATE_HEADERS = ("X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset")
_IETF_HEADERS = ("RateLimit-Policy", "RateLimit")


@dataclass(frozen=True)
class _Entry:
    path: str
    methods: list[str]
    route: Route
    operation: Operation | None


def iter_routes(routes: Sequence[BaseRoute], prefix: str = "") -> Iterator[tuple[str, Route]]:
    """Every ``Route`` with its full path, through ``Mount``s of plain routers."""
    for route in routes:
        if isinstance(route, Route):
            yield prefix + route.path, route
        elif isinstance(route, Mount) and isinstance(route.app, Router):
            yield from iter_routes(route.routes, prefix + route.path)


def documented_routes(routes: Sequence[BaseRoute]) -> list[tuple[str, Route]]:
    return [(path, route) for path, route in iter_routes(routes) if route.include_in_schema]


def build_document(
    routes: Sequence[BaseRoute], *, title: str = "Digital goods gateway"
) -> dict[str, Any]:
    """The OpenAPI 3.1 document of ``routes``. Raises ``ValueError`` on a duplicate
    ``operation_id`` so a clash fails at start-up, not in a generated client."""
    entries = [
        _Entry(
            path,
            sorted(m for m in (route.methods or {"GET"}) if m != "HEAD"),
            route,
            getattr(route.endpoint, "__operation__", None),
        )
        for path, route in documented_routes(routes)
    ]
    schema_refs, schemas = _schemas(entries)
    paths: dict[str, dict[str, Any]] = {}
    seen_ids: set[str] = set()
    for entry in entries:
        oa_path, path_params = _path(entry.path, entry.route)
        for method in entry.methods:
            op = _operation(entry, method, path_params, schema_refs)
            if op["operationId"] in seen_ids:
                raise ValueError(f"duplicate operation_id {op['operationId']!r}")
            seen_ids.add(op["operationId"])
            paths.setdefault(oa_path, {})[method.lower()] = op
    tags = sorted(
        {op["tags"][0] for item in paths.values() for op in item.values() if op.get("tags")}
    )
    return {
        "openapi": "3.1.0",
        "info": {
            "title": title,
            "version": _version(),
            "description": _DESCRIPTION,
        },
        "tags": [{"name": tag} for tag in tags],
        "paths": paths,
        "components": {
            "schemas": schemas,
            "headers": _HEADERS,
            "responses": _error_responses(),
            "securitySchemes": {
                "bearerAuth": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "Authorization: Bearer gw_live_...",
                },
                "apiKeyHeader": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
            },
        },
    }


_DESCRIPTION = """One API over many suppliers of digital goods.

**Authentication.** Every `/v1` operation needs an API key, sent as
`Authorization: Bearer <key>` or `X-API-Key: <key>`. Each operation names the scope it
needs (`catalog:read`, `orders:read`, `orders:write`, `account:read`).

**Errors.** Every error has the body `{"error": {"code", "message", "request_id"}}`;
`code` is stable and machine-readable. Every response carries `X-Request-ID`.

**Rate limits.** Per API key, across all gateway instances. Responses carry
`X-RateLimit-Limit`, `X-RateLimit-Remaining`, `X-RateLimit-Reset` (Unix time) and the
`RateLimit-Policy` / `RateLimit` fields of draft-ietf-httpapi-ratelimit-headers-10; a 429
carries `Retry-After`.
"""


def _version() -> str:
    try:
        return metadata.version("digital-goods-gateway")
    except metadata.PackageNotFoundError:  # pragma: no cover - running from a bare tree
        return "0"


def _schemas(
    entries: list[_Entry],
) -> tuple[dict[tuple[type[BaseModel], str], str], dict[str, Any]]:
    """JSON schemas of every model in use, in one namespace (pydantic names clashes)."""
    wanted: list[tuple[type[BaseModel], Any]] = [(ErrorEnvelope, "serialization")]
    for entry in entries:
        op = entry.operation
        if op is None:
            continue
        if op.query is not None:
            wanted.append((op.query, "validation"))
        if op.body is not None:
            wanted.append((op.body, "validation"))
        if op.response is not None:
            wanted.append((op.response, "serialization"))
        wanted.extend((model, "serialization") for model in op.responses.values())
    wanted = list(dict.fromkeys(wanted))
    key_map, top = models_json_schema(wanted, ref_template=_REF)
    refs: dict[tuple[type[BaseModel], str], str] = {key: key_map[key]["$ref"] for key in wanted}
    defs: dict[str, Any] = top.get("$defs", {})
    return refs, defs


def _path(path: str, route: Route) -> tuple[str, list[dict[str, Any]]]:
    params = []
    for name, convertor in route.param_convertors.items():
        if isinstance(convertor, IntegerConvertor):
            schema: dict[str, Any] = {"type": "integer", "minimum": 0}
        elif isinstance(convertor, FloatConvertor):
            schema = {"type": "number", "minimum": 0}
        elif isinstance(convertor, UUIDConvertor):
            schema = {"type": "string", "format": "uuid"}
        elif isinstance(convertor, PathConvertor):
            schema = {"type": "string", "minLength": 1}
        else:
            schema = {"type": "string", "minLength": 1, "pattern": "^[^/]+$"}
        params.append({"name": name, "in": "path", "required": True, "schema": schema})
    return re.sub(r"{([^}:]+)(:[^}]+)?}", r"{\1}", path), params


def _operation(
    entry: _Entry,
    method: str,
    path_params: list[dict[str, Any]],
    refs: dict[tuple[type[BaseModel], str], str],
) -> dict[str, Any]:
    op = entry.operation
    if op is None:
        doc = (entry.route.endpoint.__doc__ or "").strip()
        return {
            "operationId": f"{entry.route.name}_{method.lower()}",
            "summary": doc.splitlines()[0] if doc else entry.route.name,
            "parameters": path_params,
            "responses": {"200": {"description": "OK", "headers": _ref_headers("X-Request-ID")}},
        }
    protected = op.scope is not None
    result: dict[str, Any] = {
        "operationId": op.operation_id,
        "summary": op.summary,
        "tags": [op.tag],
    }
    description = op.description
    if protected:
        description = f"{description}\n\nRequires an API key with scope `{op.scope}`.".strip()
        result["security"] = _SECURITY
        result["x-required-scope"] = op.scope
    if description:
        result["description"] = description
    parameters = list(path_params)
    if op.query is not None:
        parameters.extend(_query_parameters(op.query, refs))
    for name, text in op.request_headers.items():
        required, schema = _KNOWN_REQUEST_HEADERS.get(name, (False, {"type": "string"}))
        parameters.append(
            {
                "name": name,
                "in": "header",
                "required": required,
                "description": text,
                "schema": schema,
            }
        )
    if parameters:
        result["parameters"] = parameters
    if op.body is not None:
        result["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": {"$ref": refs[(op.body, "validation")]}}},
        }
    result["responses"] = _responses(op, protected, refs)
    return result


def _query_parameters(
    model: type[BaseModel], refs: dict[tuple[type[BaseModel], str], str]
) -> list[dict[str, Any]]:
    schema = model.model_json_schema(ref_template=_REF, mode="validation")
    required = set(schema.get("required", ()))
    params = []
    for name, prop in schema.get("properties", {}).items():
        prop = _not_null(dict(prop))
        description = prop.pop("description", None)
        prop.pop("title", None)
        param: dict[str, Any] = {"name": name, "in": "query", "required": name in required}
        if description:
            param["description"] = description
        param["schema"] = prop
        params.append(param)
    return params


def _not_null(schema: dict[str, Any]) -> dict[str, Any]:
    """A query parameter is absent or a string, never JSON ``null``: drop the ``null``
    branch pydantic writes for ``X | None`` fields (and its ``default: null``)."""
    options = schema.get("anyOf")
    if options is not None:
        kept = [option for option in options if option.get("type") != "null"]
        if len(kept) != len(options):
            del schema["anyOf"]
            if len(kept) == 1:
                schema = {**kept[0], **schema}
            else:
                schema["anyOf"] = kept
    if schema.get("default", 0) is None:
        del schema["default"]
    return schema


def _responses(
    op: Operation, protected: bool, refs: dict[tuple[type[BaseModel], str], str]
) -> dict[str, Any]:
    headers = ["X-Request-ID"]
    if protected:
        headers += [*_RATE_HEADERS, *_IETF_HEADERS]
    success: dict[str, Any] = {"description": op.summary, "headers": _ref_headers(*headers)}
    for name, text in op.response_headers.items():
        success["headers"][name] = {"description": text, "schema": {"type": "string"}}
    if op.response is not None:
        ref = refs[(op.response, "serialization")]
        success["content"] = {"application/json": {"schema": {"$ref": ref}}}
        for media_type in op.media_types:
            success["content"][media_type] = {"schema": {"type": "string"}}
    responses: dict[str, Any] = {str(op.status): success}
    for status, model in op.responses.items():
        responses[str(status)] = {
            "description": model.__doc__.strip().splitlines()[0] if model.__doc__ else str(status),
            "headers": _ref_headers(*headers),
            "content": {"application/json": {"schema": {"$ref": refs[(model, "serialization")]}}},
        }
    errors = set(op.errors)
    if protected:
        errors |= {401, 403, 429, 503}
    if op.query is not None:
        errors.add(400)
    if op.body is not None:
        errors |= {400, 413, 415, 422}
    if any(name in _KNOWN_REQUEST_HEADERS for name in op.request_headers):
        errors.add(400)
    for status in sorted(errors):
        responses[str(status)] = {
            "$ref": f"#/components/responses/{_error_name(status, protected)}"
        }
    responses["default"] = {"$ref": "#/components/responses/Error"}
    return responses


def _error_name(status: int, protected: bool) -> str:
    if status in (400, 402, 404, 409, 413, 415, 422) and protected:
        return f"Error{status}Limited"
    return f"Error{status}"


def _ref_headers(*names: str) -> dict[str, Any]:
    return {name: {"$ref": f"#/components/headers/{name}"} for name in names}


def _error_responses() -> dict[str, Any]:
    """One component per error status; the ``Limited`` variants carry the rate-limit
    headers (an error after admission, e.g. 404 for an unknown product)."""
    envelope = {"application/json": {"schema": {"$ref": _REF.format(model="ErrorEnvelope")}}}

    def response(description: str, *headers: str) -> dict[str, Any]:
        return {"description": description, "headers": _ref_headers(*headers), "content": envelope}

    limited = ("X-Request-ID", *_RATE_HEADERS, *_IETF_HEADERS)
    components = {"Error": response("Any other error, in the same envelope.", "X-Request-ID")}
    for status, text in _STATUS_TEXT.items():
        if status == 429:
            components["Error429"] = response(text, *limited, "Retry-After")
        elif status == 401:
            components["Error401"] = response(text, "X-Request-ID", "WWW-Authenticate")
        elif status == 503:
            components["Error503"] = response(text, "X-Request-ID", "Retry-After")
        else:
            components[f"Error{status}"] = response(text, "X-Request-ID")
            components[f"Error{status}Limited"] = response(text, *limited)
    return components


# Serving ---------------------------------------------------------------------------
_STATIC = resources.files("gateway.api").joinpath("static")
_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; font-src 'self'; base-uri 'none'; "
    "form-action 'none'; frame-ancestors 'none'"
)


async def openapi_json(request: Request) -> Response:
    """The OpenAPI document of this app (built once, when the app was created)."""
    return Response(request.app.state.openapi_bytes, media_type="application/json")


async def docs_page(request: Request) -> Response:
    """Interactive API documentation (Swagger UI) from packaged assets."""
    root = request.scope.get("root_path", "").rstrip("/")
    html = _STATIC.joinpath("docs.html").read_text().replace("{{root}}", root)
    return HTMLResponse(html, headers={"Content-Security-Policy": _CSP})


def docs_routes() -> list[BaseRoute]:
    """``/openapi.json``, ``/docs`` and their assets (left out of the document)."""
    from swagger_ui_bundle import swagger_ui_path

    return [
        Route("/openapi.json", openapi_json, methods=["GET"], include_in_schema=False),
        Route("/docs", docs_page, methods=["GET"], include_in_schema=False),
        Mount("/docs/assets", app=StaticFiles(directory=str(swagger_ui_path)), name="docs-assets"),
        Mount("/docs/static", app=StaticFiles(directory=str(_STATIC)), name="docs-static"),
    ]


def serialise(document: dict[str, Any]) -> bytes:
    return json.dumps(document, separators=(",", ":")).encode()
