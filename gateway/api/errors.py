"""The gateway's one error face: ``ApiError`` and the envelope every error is sent in.

Handlers and services raise ``ApiError`` (or a domain error that the app maps to one);
the app turns it into ``{"error": {"code", "message", "request_id"}}`` in exactly one
place. ``code`` is stable and machine-readable; ``message`` is for humans.
"""

from __future__ import annotations

import math
from typing import Any

from gateway import errors as domain


class ApiError(Exception):
    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        headers: dict[str, str] | None = None,
        details: Any = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}
        self.details = details


def error_body(
    code: str, message: str, request_id: str | None, details: Any = None
) -> dict[str, Any]:
    error: dict[str, Any] = {"code": code, "message": message, "request_id": request_id}
    if details is not None:
        error["details"] = details
    return {"error": error}


#: The one table from a domain error's kind to its HTTP status.
_STATUS: dict[type[domain.GatewayError], int] = {
    domain.InvalidRequest: 400,
    domain.Unauthenticated: 401,
    domain.InsufficientFunds: 402,
    domain.Forbidden: 403,
    domain.NotFound: 404,
    domain.Conflict: 409,
    domain.Unprocessable: 422,
    domain.TooManyRequests: 429,
    domain.Unavailable: 503,
    domain.Internal: 500,
}


def status_of(exc: domain.GatewayError) -> int:
    """The HTTP status for a domain error (the nearest listed base class decides)."""
    for cls in type(exc).__mro__:
        status = _STATUS.get(cls)
        if status is not None:
            return status
    return 500


def from_domain(exc: domain.GatewayError) -> ApiError:
    """A domain error as the API answers it: ``Retry-After`` where a retry time is known;
    an ``Internal`` error never shows its message."""
    status = status_of(exc)
    headers: dict[str, str] = {}
    if exc.retry_after is not None:
        headers["Retry-After"] = str(max(1, math.ceil(exc.retry_after)))
    if status == 500:
        return ApiError(500, "internal_error", "an unexpected error occurred", headers=headers)
    return ApiError(status, exc.code, exc.message, headers=headers, details=exc.details)
