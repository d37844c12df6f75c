"""HTTP plumbing of the voucher sandbox: the upstream's error shape and codes, its rules
for query and body parsing, pagination headers, ``X-Request-Id`` on every answer, and the
IP allowlist. The supplier-neutral parts live in ``adapters.sandbox_kit``; this module
binds them to what the voucher documents say.

Kept apart from ``sandbox.py`` so that file holds only what the supplier *does*.
"""

from __future__ import annotations

import ipaddress
import math
import re
import uuid
from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any, TypeGuard

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from adapters import sandbox_kit
from adapters.sandbox_kit import (
    CONTROL_PREFIX,
    ApiError,
    Default,
    Handler,
    client_ip,
    error_response,
)

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


def invalid_query() -> ApiError:
    return ApiError(400, "BAD_REQUEST", "Invalid query parameters")


def _digits(raw: str) -> int:
    """Plain digits, as the strictest reading of the documented integers (``int`` alone
    would also take a sign, spaces and underscores)."""
    if not _POSITIVE_INT.match(raw):
        raise ValueError(raw)
    return int(raw)


def int_param(
    params: Mapping[str, str], name: str, default: Default, low: int, high: int
) -> int | Default:
    return sandbox_kit.int_param(
        params, name, default, low, high, invalid=lambda *_: invalid_query(), parse=_digits
    )


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
    body = await sandbox_kit.json_body(
        request, "VALIDATION_FAILURE", "Request body must be valid JSON", parse_float=Decimal
    )
    if not isinstance(body, dict):
        raise ApiError(400, "VALIDATION_FAILURE", "Request body must be a JSON object")
    return body


def is_int(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def number(value: Any) -> Decimal | None:
    if is_int(value):
        return Decimal(value)
    if isinstance(value, Decimal) and value.is_finite():
        return value
    return None


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
            forbidden = error_response(error_body, 403, "FORBIDDEN", "IP address not authorized")
            await forbidden(scope, receive, send)
            return
        await self.app(scope, receive, send)


def error_handlers() -> dict[Any, Handler]:
    return sandbox_kit.error_handlers(
        error_body,
        route_errors={
            404: ("NOT_FOUND", "Route not found"),
            405: ("BAD_REQUEST", "Method not allowed"),
        },
        http_error_code="BAD_REQUEST",
        server_error_code="INTERNAL_SERVER_ERROR",
        # A crash is answered outside the request-id middleware: give it an id of its own.
        server_error_headers=lambda: {"X-Request-Id": uuid.uuid4().hex},
    )
