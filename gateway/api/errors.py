"""The gateway's one error face: ``ApiError`` and the envelope every error is sent in.

Handlers and services raise ``ApiError`` (or a domain error that the app maps to one);
the app turns it into ``{"error": {"code", "message", "request_id"}}`` in exactly one
place. ``code`` is stable and machine-readable; ``message`` is for humans.
"""

from __future__ import annotations

from typing import Any


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
