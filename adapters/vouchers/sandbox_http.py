"""HTTP plumbing of the voucher sandbox: the upstream's error shape, query and body
parsing, pagination headers, ``X-Request-Id`` on every answer, and the IP allowlist.

Kept apart from ``sandbox.py`` so that file holds only what the supplier *does*.
"""

from __future__ import annotations

import ipaddress
import json
import math
import re
import uuid
from collections.abc import Callable, Iterable, Mapping
from decimal import Decimal
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from adapters.sandbox_kit import CONTROL_PREFIX

_ERROR_NAMES = {
    "VALIDATION_FAILURE": "ValidationError",
    "BAD_REQUEST": "BadRequestError",
    "INVALID_FEATURE": "BadRequestError",
    "UNAUTHORIZED": "UnauthorizedError",
    "FORBIDDEN": "ForbiddenError",
    "NOT_FOUND": "NotFoundError",
    "TOO_MANY_REQUESTS": "TooManyRequestsError",
    "INTERNAL_SERVER_ERROR": "InternalServerError",
}
_POSITIVE_INT = re.compile(r"^[0-9]{1,12}$")
_REQUEST_ID = re.compile(r"^[\x21-\x7e]{1,128}$")


def error_body(status: int, code: str, message: str) -> dict[str, Any]:
    return {"error": {"name": _ERROR_NAMES.get(code, "Error"), "code": code, "message": message}}


class ApiError(Exception):
    """Raised by handlers; rendered in the upstream's error shape."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def invalid_query() -> ApiError:
    return ApiError(400, "BAD_REQUEST", "Invalid query parameters")


def int_param(
    params: Mapping[str, str], name: str, default: int | None, low: int, high: int
) -> int | None:
    raw = params.get(name)
    if raw is None:
        return default
    if not _POSITIVE_INT.match(raw) or not low <= int(raw) <= high:
        raise invalid_query()
    return int(raw)


def choice(params: Mapping[str, str], name: str, default: str, allowed: Iterable[str]) -> str:
    value = params.get(name, default)
    if value not in allowed:
        raise invalid_query()
    return value


def path_id(request: Request, what: str) -> int:
    raw = request.path_params["id"]
    if not _POSITIVE_INT.match(raw) or int(raw) <= 0:
        raise ApiError(400, "BAD_REQUEST", f"Invalid {what} ID")
    return int(raw)


def page_headers(page: int, limit: int, total: int, size: int) -> dict[str, str]:
    pages = math.ceil(total / limit)
    return {
        "X-Page": str(page),
        "X-Per-Page": str(limit),
        "X-Total-Count": str(total),
        "X-Total-Pages": str(pages),
        "X-Page-Size": str(size),
        "X-Has-More": "true" if page < pages else "false",
    }


async def json_object(request: Request) -> dict[str, Any]:
    """The body as a JSON object, decimals kept exact (``parse_float=Decimal``)."""
    try:
        body = json.loads(await request.body(), parse_float=Decimal)
    except ValueError as exc:
        raise ApiError(400, "VALIDATION_FAILURE", "Request body must be valid JSON") from exc
    if not isinstance(body, dict):
        raise ApiError(400, "VALIDATION_FAILURE", "Request body must be a JSON object")
    return body


def is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def number(value: Any) -> Decimal | None:
    if is_int(value):
        return Decimal(value)
    if isinstance(value, Decimal) and value.is_finite():
        return value
    return None


def client_ip(scope: Scope) -> str:
    client = scope.get("client")
    return client[0] if client else "unknown"


class RequestIdMiddleware:
    """Every response carries ``X-Request-Id``: the caller's when it sent a sane one."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = Request(scope).headers.get("x-request-id", "")
        request_id = incoming if _REQUEST_ID.match(incoming) else uuid.uuid4().hex

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [h for h in message.get("headers", []) if h[0] != b"x-request-id"]
                message["headers"] = [*headers, (b"x-request-id", request_id.encode())]
            await send(message)

        await self.app(scope, receive, send_with_id)


class IpAllowlistMiddleware:
    """403 ``FORBIDDEN`` for callers outside the allowlist, before anything else (the
    supplier applies its allowlist to login too). ``None``: every IP is allowed."""

    def __init__(self, app: ASGIApp, *, allowlist: list[str] | None) -> None:
        self.app = app
        self.networks = (
            None
            if allowlist is None
            else [ipaddress.ip_network(entry, strict=False) for entry in allowlist]
        )

    def _allowed(self, ip: str) -> bool:
        if self.networks is None:
            return True
        try:
            address = ipaddress.ip_address(ip)
        except ValueError:
            return False
        return any(address in network for network in self.networks)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] == "http"
            and not scope["path"].startswith(CONTROL_PREFIX)
            and not self._allowed(client_ip(scope))
        ):
            body = error_body(403, "FORBIDDEN", "IP address not authorized")
            await JSONResponse(body, 403)(scope, receive, send)
            return
        await self.app(scope, receive, send)


def error_handlers() -> dict[Any, Callable[..., Any]]:
    async def api_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, ApiError)
        return JSONResponse(error_body(exc.status, exc.code, exc.message), exc.status)

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        if exc.status_code == 405:
            return JSONResponse(error_body(405, "BAD_REQUEST", "Method not allowed"), 405)
        if exc.status_code == 404:
            return JSONResponse(error_body(404, "NOT_FOUND", "Route not found"), 404)
        return JSONResponse(
            error_body(exc.status_code, "BAD_REQUEST", str(exc.detail)), exc.status_code
        )

    async def server_error(request: Request, exc: Exception) -> Response:
        # Outside the request-id middleware: give the answer an id of its own.
        return JSONResponse(
            error_body(500, "INTERNAL_SERVER_ERROR", "Internal server error"),
            500,
            headers={"X-Request-Id": uuid.uuid4().hex},
        )

    return {ApiError: api_error, HTTPException: http_error, Exception: server_error}
