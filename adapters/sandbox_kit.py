"""Pieces every supplier sandbox shares: rate limiting, fault injection, an order log and
the ``/_sandbox`` control endpoints tests use to switch faults and count real purchases.

A sandbox is a Starlette app that behaves like its upstream's documents say. This module
keeps the cross-cutting parts identical across sandboxes so the contract suite can drive
faults the same way for every supplier:

* ``GET  /_sandbox/faults`` / ``PUT /_sandbox/faults`` read and replace the ``Faults``;
* ``GET  /_sandbox/orders`` lists every order the sandbox created (a purchase log);
* ``GET  /_sandbox/stats`` counts requests, 429s and 5xx answered;
* ``POST /_sandbox/reset`` clears faults, rate-limit windows, stats (not orders).

Control endpoints bypass authentication, rate limits and faults.

It also holds the request plumbing every sandbox needs and no upstream documents
differently: ``ApiError`` raised by handlers, the exception handlers that render it (and
routing errors, and crashes), bounded integer query parameters and JSON bodies. What *is*
the upstream's own (its error JSON, codes and messages) is always passed in: one upstream's
error shape must never leak into another's simulator.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

CONTROL_PREFIX = "/_sandbox"


class Faults(BaseModel):
    """Faults injected into non-control requests; each rate is a probability in 0..1."""

    model_config = ConfigDict(extra="forbid")

    latency_ms: int = Field(default=0, ge=0, description="Added to every request.")
    error_rate: float = Field(default=0.0, ge=0, le=1, description="Answer 500 instead.")
    rate_limit_burst: int = Field(default=0, ge=0, description="Next N requests get 429.")
    timeout_rate: float = Field(
        default=0.0, ge=0, le=1, description="Hang, then process the request and answer."
    )
    hang_seconds: float = Field(
        default=30.0, ge=0, description="How long a timeout (or a late answer) hangs."
    )
    commit_then_drop_rate: float = Field(
        default=0.0,
        ge=0,
        le=1,
        description="Order creation only: create the order, then drop the connection.",
    )
    error_after_commit_rate: float = Field(
        default=0.0,
        ge=0,
        le=1,
        description="Order creation only: create the order, then answer 500.",
    )
    commit_then_hang_rate: float = Field(
        default=0.0,
        ge=0,
        le=1,
        description="Order creation only: create the order, then hang for hang_seconds "
        "before answering (the answer arrives after a client with a shorter timeout gave up).",
    )
    refuse_rate: float = Field(
        default=0.0,
        ge=0,
        le=1,
        description="Order creation only: refuse the order as the upstream documents a "
        "definitive refusal (out of stock / product not available); nothing is created.",
    )
    fulfil_delay_seconds: float | None = Field(
        default=None, ge=0, description="Override the sandbox's order fulfilment delay."
    )
    fulfilment_failure_rate: float = Field(
        default=0.0, ge=0, le=1, description="Orders whose fulfilment ends in failure."
    )
    paths: list[str] = Field(
        default_factory=list,
        description="Only inject into requests whose path starts with one of these "
        "(empty: every path).",
    )
    seed: int | None = Field(default=None, description="Seed the fault RNG (deterministic).")


@dataclass
class RateRule:
    """``limit`` requests per fixed ``window`` seconds, counted per client and bucket."""

    limit: int
    window: float


@dataclass
class SandboxControl:
    """Mutable state behind one sandbox: faults, rate windows, stats and purchase log."""

    rate_rules: dict[str, RateRule] = field(default_factory=dict)
    faults: Faults = field(default_factory=Faults)
    orders: list[dict[str, Any]] = field(default_factory=list)
    stats: dict[str, int] = field(
        default_factory=lambda: {
            "requests": 0,
            "rate_limited": 0,
            "errors": 0,
            "drops": 0,
            "late_answers": 0,
            "refusals": 0,
        }
    )
    rng: random.Random = field(default_factory=random.Random)
    #: Sandbox-specific figures for tests, e.g. ``{"products": 1500}``; served in stats.
    info: dict[str, Any] = field(default_factory=dict)
    #: Default order fulfilment delay, seconds (``Faults.fulfil_delay_seconds`` overrides).
    fulfil_delay: float = 0.2
    _windows: dict[tuple[str, str, int], int] = field(default_factory=dict)

    def set_faults(self, faults: Faults) -> None:
        self.faults = faults
        if faults.seed is not None:
            self.rng.seed(faults.seed)

    def reset(self) -> None:
        self.faults = Faults()
        self._windows.clear()
        for k in self.stats:
            self.stats[k] = 0

    def current_fulfil_delay(self) -> float:
        override = self.faults.fulfil_delay_seconds
        return self.fulfil_delay if override is None else override

    def applies(self, path: str) -> bool:
        return self._in_scope(path)

    def _in_scope(self, path: str) -> bool:
        return not self.faults.paths or any(path.startswith(p) for p in self.faults.paths)

    def refuses(self, path: str) -> bool:
        """For order-creation handlers, before committing: whether the ``refuse_rate``
        fault refuses this order (counted in ``stats["refusals"]``)."""
        if self._in_scope(path) and self.roll(self.faults.refuse_rate):
            self.stats["refusals"] += 1
            return True
        return False

    def roll(self, rate: float) -> bool:
        return rate > 0 and self.rng.random() < rate

    def check_rate(self, bucket: str, client: str) -> tuple[bool, dict[str, str]]:
        """Count one request; return whether it is allowed and the ``X-RateLimit-*``
        headers (fixed windows aligned to the epoch, as ``X-RateLimit-Reset`` implies)."""
        rule = self.rate_rules.get(bucket)
        if rule is None:
            return True, {}
        now = time.time()
        window = int(now // rule.window)
        key = (bucket, client, window)
        used = self._windows.get(key, 0)
        allowed = used < rule.limit
        if allowed:
            self._windows[key] = used + 1
            used += 1
        if len(self._windows) > 10_000:
            self._windows = {k: v for k, v in self._windows.items() if k[2] >= window - 1}
        reset = (window + 1) * rule.window
        headers = {
            "X-RateLimit-Limit": str(rule.limit),
            "X-RateLimit-Remaining": str(max(0, rule.limit - used)),
            "X-RateLimit-Reset": str(int(reset) if rule.window >= 1 else round(reset, 3)),
        }
        if not allowed:
            headers["Retry-After"] = str(max(1, int(reset - now + 0.999)))
        return allowed, headers

    def record_order(self, order: dict[str, Any]) -> None:
        self.orders.append(order)


ErrorBody = Callable[[int, str, str], dict[str, Any]]
"""(status, upstream error code, message) → the upstream's own error JSON."""

Handler = Callable[[Request, Exception], Awaitable[Response]]
Default = TypeVar("Default", int, None)


class ApiError(Exception):
    """Raised by handlers; ``error_handlers`` renders it in the upstream's error shape, so a
    check deep in a handler can answer without threading a response back up."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def error_response(
    error_body: ErrorBody,
    status: int,
    code: str,
    message: str,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    return JSONResponse(error_body(status, code, message), status, headers=headers)


def error_handlers(
    error_body: ErrorBody,
    *,
    route_errors: Mapping[int, tuple[str, str]],
    http_error_code: str,
    server_error_code: str,
    server_error_headers: Callable[[], Mapping[str, str]] | None = None,
) -> dict[Any, Handler]:
    """Exception handlers answering every error in the upstream's shape, never Starlette's
    plain text (a client that parses errors must meet the real shape in tests too).

    ``route_errors``: status (404, 405) → (code, message template; ``{method}`` and
    ``{path}`` are filled in); any other ``HTTPException`` answers ``http_error_code`` with
    its detail. ``server_error_headers``: for headers a middleware would have added, since
    a crash is answered outside every middleware."""

    async def api_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, ApiError)
        return error_response(error_body, exc.status, exc.code, exc.message)

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        status = exc.status_code
        if status in route_errors:
            code, template = route_errors[status]
            message = template.format(method=request.method, path=request.url.path)
        else:
            code, message = http_error_code, str(exc.detail)
        return error_response(error_body, status, code, message)

    async def server_error(request: Request, exc: Exception) -> Response:
        headers = server_error_headers() if server_error_headers is not None else None
        return error_response(error_body, 500, server_error_code, "Internal server error", headers)

    return {ApiError: api_error, HTTPException: http_error, Exception: server_error}


def int_param(
    params: Mapping[str, str],
    name: str,
    default: Default,
    low: int,
    high: int | None,
    *,
    invalid: Callable[[str, int, int | None], ApiError],
    parse: Callable[[str], int] = int,
) -> int | Default:
    """Query parameter ``name`` as an integer in ``low..high`` (``None``: unbounded), or
    ``default`` when absent. Upstreams differ in what they accept as an integer (``parse``
    raises ``ValueError`` to refuse) and in how they say no (``invalid(name, low, high)``)."""
    raw = params.get(name)
    if raw is None:
        return default
    try:
        value = parse(raw)
    except ValueError:
        raise invalid(name, low, high) from None
    if value < low or (high is not None and value > high):
        raise invalid(name, low, high)
    return value


async def json_body(
    request: Request, code: str, message: str, *, parse_float: Callable[[str], Any] | None = None
) -> Any:
    """The request body as JSON, or ``ApiError(400, code, message)`` when it is not JSON.
    Its type is left to the caller: upstreams check it at different points."""
    try:
        return json.loads(await request.body(), parse_float=parse_float)
    except ValueError as exc:
        raise ApiError(400, code, message) from exc


def client_ip(scope: Scope) -> str:
    """The caller's address: what IP rate limits and allowlists count."""
    client = scope.get("client")
    return client[0] if client else "unknown"


class SandboxMiddleware:
    """Applies rate limits and faults to every non-control request, in the upstream's
    own error shape.

    ``bucket_for(request)`` names the rate bucket of a request (``None``: unlimited) and
    ``client_for(request)`` who it is counted against (IP, API key, client id).
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        control: SandboxControl,
        error_body: ErrorBody,
        bucket_for: Callable[[Request], str | None],
        client_for: Callable[[Request], str],
        rate_limited_code: str,
        server_error_code: str,
    ) -> None:
        self.app = app
        self.control = control
        self.error_body = error_body
        self.bucket_for = bucket_for
        self.client_for = client_for
        self.rate_limited_code = rate_limited_code
        self.server_error_code = server_error_code

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(CONTROL_PREFIX):
            await self.app(scope, receive, send)
            return
        control = self.control
        request = Request(scope)
        control.stats["requests"] += 1
        bucket = self.bucket_for(request)
        extra: dict[str, str] = {}
        if bucket is not None:
            allowed, extra = control.check_rate(bucket, self.client_for(request))
            if not allowed:
                control.stats["rate_limited"] += 1
                await self._error(429, self.rate_limited_code, "Too many requests", extra)(
                    scope, receive, send
                )
                return
        faults = control.faults
        if control.applies(scope["path"]):
            if faults.latency_ms:
                await asyncio.sleep(faults.latency_ms / 1000)
            if faults.rate_limit_burst > 0:
                faults.rate_limit_burst -= 1
                control.stats["rate_limited"] += 1
                headers = {**extra, "Retry-After": "1"}
                await self._error(429, self.rate_limited_code, "Too many requests", headers)(
                    scope, receive, send
                )
                return
            if control.roll(faults.timeout_rate):
                await asyncio.sleep(faults.hang_seconds)
            if control.roll(faults.error_rate):
                control.stats["errors"] += 1
                await self._error(500, self.server_error_code, "Internal server error", extra)(
                    scope, receive, send
                )
                return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start" and extra:
                message["headers"] = [
                    *message.get("headers", []),
                    *((k.lower().encode(), v.encode()) for k, v in extra.items()),
                ]
            await send(message)

        await self.app(scope, receive, send_with_headers)

    def _error(self, status: int, code: str, message: str, headers: dict[str, str]) -> Response:
        return error_response(self.error_body, status, code, message, headers)


class DropConnection(Response):
    """Starts a response, then aborts it: the server closes the connection mid-body, so
    the client never learns the outcome. Used after an order was committed."""

    def __init__(self) -> None:
        super().__init__()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/json"), (b"content-length", b"4096")],
            }
        )
        await send({"type": "http.response.body", "body": b'{"', "more_body": True})
        raise ConnectionAbortedError("sandbox: connection dropped after commit (injected)")


class LateAnswer(Response):
    """Sends ``answer`` only after ``delay`` seconds: the order is committed at once, but a
    client whose timeout is shorter has given up by the time the answer arrives."""

    def __init__(self, answer: Response, delay: float) -> None:
        super().__init__()
        self.answer = answer
        self.delay = delay

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await asyncio.sleep(self.delay)
        await self.answer(scope, receive, send)


def after_commit(
    control: SandboxControl, error_body: ErrorBody, code: str, answer: Response
) -> Response:
    """For order-creation handlers, once the order is committed: what to send instead of
    ``answer`` when a post-commit fault fires (drop, 500, or ``answer`` late), else
    ``answer`` itself."""
    faults = control.faults
    if control.roll(faults.commit_then_drop_rate):
        control.stats["drops"] += 1
        return DropConnection()
    if control.roll(faults.error_after_commit_rate):
        control.stats["errors"] += 1
        return error_response(error_body, 500, code, "Internal server error")
    if control.roll(faults.commit_then_hang_rate):
        control.stats["late_answers"] += 1
        return LateAnswer(answer, faults.hang_seconds)
    return answer


def control_routes(control: SandboxControl) -> list[Route]:
    async def get_faults(request: Request) -> Response:
        return JSONResponse(control.faults.model_dump())

    async def put_faults(request: Request) -> Response:
        try:
            faults = Faults.model_validate(await request.json())
        except ValueError as exc:
            return JSONResponse({"error": str(exc)}, 400)
        control.set_faults(faults)
        return JSONResponse(control.faults.model_dump())

    async def orders(request: Request) -> Response:
        return JSONResponse({"orders": control.orders, "count": len(control.orders)})

    async def stats(request: Request) -> Response:
        return JSONResponse({**control.stats, **control.info, "orders": len(control.orders)})

    async def reset(request: Request) -> Response:
        control.reset()
        return JSONResponse({"ok": True})

    return [
        Route(f"{CONTROL_PREFIX}/faults", get_faults, methods=["GET"]),
        Route(f"{CONTROL_PREFIX}/faults", put_faults, methods=["PUT"]),
        Route(f"{CONTROL_PREFIX}/orders", orders, methods=["GET"]),
        Route(f"{CONTROL_PREFIX}/stats", stats, methods=["GET"]),
        Route(f"{CONTROL_PREFIX}/reset", reset, methods=["POST"]),
    ]
