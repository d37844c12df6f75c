"""The API's one face: request ids, the body-size limit and every error in one envelope.

Errors become ``{"error": {"code", "message", "request_id"}}`` here and nowhere else:

* ``ApiError`` (handlers, parsing, access checks) and Starlette's ``HTTPException``
  (unknown route 404, wrong method 405 with ``Allow``) through ``EXCEPTION_HANDLERS``,
  which the app installs in Starlette's ``ExceptionMiddleware``;
* anything else by ``ApiFaceMiddleware``: logged with the request id and a traceback,
  answered 500 ``internal_error`` with no detail.

Stable codes: ``not_found``, ``method_not_allowed``, ``invalid_parameter`` (400 query),
``malformed_json`` (400), ``bad_request`` (400 other), ``validation_failed`` (422 body),
``body_too_large`` (413), ``unsupported_media_type`` (415),
``authentication_required`` / ``invalid_api_key`` (401), ``insufficient_scope`` /
``ip_not_allowed`` / ``reseller_disabled`` (403), ``rate_limited`` (429),
``service_unavailable`` / ``rate_limiter_unavailable`` (503), ``internal_error`` (500);
features add their own (``product_not_found``, ``price_changed`` ...).

Every response carries ``X-Request-ID``: the caller's own when it is well formed (1-128
characters of ``[A-Za-z0-9._-]``), so a reseller can correlate its logs with ours,
otherwise a fresh one. Inner layers attach response headers with
``add_response_headers`` (the access guard's rate-limit headers), and they are sent
on whatever response ends the request, errors included.
"""

from __future__ import annotations

import logging
import re
import uuid
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.api.errors import ApiError, error_body

log = logging.getLogger("gateway.api")

REQUEST_ID_HEADER = "X-Request-ID"
_REQUEST_ID = re.compile(rb"^[A-Za-z0-9._-]{1,128}$")
_EXTRA_HEADERS = "gateway.response_headers"
_REQUEST_ID_KEY = "gateway.request_id"

_HTTP_CODES = {
    400: "bad_request",
    401: "authentication_required",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    413: "body_too_large",
    415: "unsupported_media_type",
    422: "validation_failed",
    429: "rate_limited",
    500: "internal_error",
    503: "service_unavailable",
}
_HTTP_MESSAGES = {
    404: "there is nothing at this path",
    405: "this method is not allowed here; see the Allow header",
}


def add_response_headers(scope: Scope, headers: list[tuple[bytes, bytes]]) -> None:
    """Send ``headers`` (lower-case names) on the response to this request, whatever it is."""
    extra = scope.get(_EXTRA_HEADERS)
    if extra is not None:
        extra.extend(headers)


def request_id(scope: Scope) -> str | None:
    return scope.get(_REQUEST_ID_KEY)


def error_response(
    request_id: str | None,
    status: int,
    code: str,
    message: str,
    *,
    headers: dict[str, str] | None = None,
    details: Any = None,
) -> Response:
    """The one place an error becomes an HTTP response."""
    return JSONResponse(
        error_body(code, message, request_id, details), status_code=status, headers=headers
    )


async def _api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return error_response(
        request_id(request.scope),
        exc.status,
        exc.code,
        exc.message,
        headers=exc.headers,
        details=exc.details,
    )


async def _http_exception(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    status = exc.status_code
    message = _HTTP_MESSAGES.get(status) or str(exc.detail)
    return error_response(
        request_id(request.scope),
        status,
        _HTTP_CODES.get(status, f"http_{status}"),
        message,
        headers=dict(exc.headers or {}),
    )


EXCEPTION_HANDLERS = {ApiError: _api_error, HTTPException: _http_exception}
"""Give these to ``Starlette(exception_handlers=...)``."""


class _BodyTooLarge(ApiError):
    def __init__(self, limit: int) -> None:
        super().__init__(
            413, "body_too_large", f"the request body exceeds the limit of {limit} bytes"
        )


class ApiFaceMiddleware:
    """Outermost layer: request id, body limit, last-resort 500 (a pure ASGI middleware,
    so it adds no task or copy per request)."""

    def __init__(self, app: ASGIApp, *, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid, content_length = None, None
        for name, value in scope["headers"]:
            if name == b"x-request-id" and _REQUEST_ID.match(value):
                rid = value.decode()
            elif name == b"content-length":
                content_length = value
        state = scope.setdefault("state", {})
        # An outer layer (observability) may have chosen the id already: keep one id.
        rid = state.get("request_id") or rid or uuid.uuid4().hex
        state["request_id"] = rid
        extra: list[tuple[bytes, bytes]] = [(b"x-request-id", rid.encode("latin-1"))]
        scope[_REQUEST_ID_KEY] = rid
        scope[_EXTRA_HEADERS] = extra
        started = False

        async def send_with_headers(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                message = {**message, "headers": [*message.get("headers", ()), *extra]}
            await send(message)

        limit = self.max_body_bytes
        if content_length is not None and (
            not content_length.isdigit() or int(content_length) > limit
        ):
            bad = not content_length.isdigit()
            response = error_response(
                rid,
                400 if bad else 413,
                "bad_request" if bad else "body_too_large",
                "Content-Length is not a number"
                if bad
                else f"the request body exceeds the limit of {limit} bytes",
            )
            await response(scope, receive, send_with_headers)
            return

        received = 0

        async def receive_limited() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise _BodyTooLarge(limit)
            return message

        try:
            await self.app(scope, receive_limited, send_with_headers)
        except ClientDisconnect:
            log.info("client disconnected before the request was read (request %s)", rid)
        except Exception:
            log.exception(
                "unhandled error in %s %s (request %s)",
                scope.get("method"),
                scope.get("path"),
                rid,
                extra={"request_id": rid},
            )
            if started:
                return  # too late for an error response; the server closes the connection
            response = error_response(
                rid,
                500,
                "internal_error",
                f"an unexpected error occurred; quote request id {rid} when reporting it",
            )
            await response(scope, receive, send_with_headers)
