"""Describing an operation once, for both request parsing and the OpenAPI document.

A handler declares its query, body and response models with ``@operation(...)``; the same
pydantic models parse the request (``parse_query``/``parse_body``) and generate
``/openapi.json``, so the document cannot drift from what the handlers accept.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from starlette.requests import Request

from gateway.api.errors import ApiError

M = TypeVar("M", bound=BaseModel)
F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True)
class Operation:
    summary: str
    operation_id: str
    tag: str
    scope: str | None = None
    query: type[BaseModel] | None = None
    body: type[BaseModel] | None = None
    response: type[BaseModel] | None = None
    status: int = 200
    errors: tuple[int, ...] = ()
    # Further non-error answers with their own body (202 still processing, 503 not
    # ready...): status -> model. Error statuses go in ``errors`` (the error envelope).
    responses: dict[int, type[BaseModel]] = field(default_factory=dict)
    # Further media types of the success answer (e.g. ``text/csv``), chosen by ``Accept``.
    media_types: tuple[str, ...] = ()
    request_headers: dict[str, str] = field(default_factory=dict)
    response_headers: dict[str, str] = field(default_factory=dict)
    description: str = ""


def operation(**kwargs: Any) -> Callable[[F], F]:
    """Attach an ``Operation`` to a handler (read by the auth layer and the spec builder)."""

    def decorate(handler: F) -> F:
        handler.__operation__ = Operation(**kwargs)  # type: ignore[attr-defined]
        return handler

    return decorate


def validation_details(exc: ValidationError) -> list[dict[str, Any]]:
    return [
        {"field": ".".join(str(p) for p in err["loc"]) or None, "problem": err["msg"]}
        for err in exc.errors(include_url=False, include_input=False)
    ]


def parse_query(request: Request, model: type[M]) -> M:
    """Validate the query string against ``model``; 400 ``invalid_parameter`` otherwise.

    Repeated parameters become lists only where the model's field is a list."""
    params: dict[str, Any] = {}
    for key in request.query_params:
        values = request.query_params.getlist(key)
        info = model.model_fields.get(key)
        is_list = info is not None and "list" in str(info.annotation).lower()
        params[key] = values if is_list else values[-1]
    try:
        return model.model_validate(params)
    except ValidationError as exc:
        raise ApiError(
            400,
            "invalid_parameter",
            "query parameters are invalid",
            details=validation_details(exc),
        ) from exc


MAX_JSON_DEPTH = 32
"""Deepest nesting of arrays and objects a request body may have (no request model needs
more than 4). ``json.loads`` recurses once per level and fails with ``RecursionError``
near a thousand, wherever the stack already is: bounded here, it is a 400."""

_JSON_NESTING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{}]')
"""A JSON string (skipped whole: brackets inside it do not nest) or a bracket."""


def nested_too_deeply(raw: bytes, limit: int) -> bool:
    """Whether the JSON text ``raw`` nests deeper than ``limit``; cheap for the common
    case (fewer brackets than the limit cannot nest deeper)."""
    if raw.count(b"[") + raw.count(b"{") <= limit:
        return False
    depth = 0
    for token in _JSON_NESTING.finditer(raw):
        bracket = token.group()
        if bracket in (b"[", b"{"):
            depth += 1
            if depth > limit:
                return True
        elif bracket in (b"]", b"}"):
            depth -= 1
    return False


async def parse_body(request: Request, model: type[M]) -> M:
    """Validate a JSON body against ``model``: 415 if not JSON, 400 if malformed, 422 if
    it does not fit the model."""
    content_type = request.headers.get("content-type", "")
    if content_type.split(";")[0].strip().lower() != "application/json":
        raise ApiError(415, "unsupported_media_type", "send the body as application/json")
    raw = await request.body()
    if nested_too_deeply(raw, MAX_JSON_DEPTH):
        raise ApiError(
            400,
            "malformed_json",
            f"the request body nests arrays or objects deeper than {MAX_JSON_DEPTH} levels",
        )
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ApiError(400, "malformed_json", "the request body is not valid JSON") from exc
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ApiError(
            422,
            "validation_failed",
            "the request body is invalid",
            details=validation_details(exc),
        ) from exc
