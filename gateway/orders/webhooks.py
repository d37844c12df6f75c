"""Signed order events for resellers, and how a reseller verifies them.

An order that reaches a final state produces one event, ``order.completed``,
``order.partially_completed`` or ``order.failed``, POSTed to the reseller's webhook URL::

    POST <webhook_url>
    Content-Type: application/json
    X-Webhook-Id: evt_01J...              (the event id: de-duplicate on it)
    X-Webhook-Timestamp: 1767000000       (Unix seconds of this attempt)
    X-Webhook-Signature: v1=<hex HMAC-SHA256(secret, "<timestamp>.<raw body>")>

    {"id": "evt_01J...", "type": "order.completed", "created_at": "...",
     "data": {"order": {...the order as GET /v1/orders/{id} shows it, without codes...}}}

Codes never travel in a webhook (a URL can be misconfigured, logged by a proxy, or point
at the wrong party): fetch them with ``GET /v1/orders/{id}``, which authenticates you.
Webhooks go to public addresses only (``gateway.webhook_targets``: the URL is checked,
its host resolved and every address checked on each attempt, and the connection made to
a checked address) unless ``orders.webhook_allow_private_targets`` is set; a refused
target counts as a failed attempt. Any 2xx answer acknowledges; anything else (or no answer within
``orders.webhook_timeout_seconds``) is retried with exponential backoff and jitter for at
most ``orders.webhook_max_seconds``. The body is the same on every attempt; only the
timestamp and signature change. Events can arrive more than once, and in any order
across orders: use the event id and the order's ``updated_at``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
from typing import Any

import httpcore
import httpx

from gateway.webhook_targets import (
    CheckedBackend,
    Resolver,
    TargetRefused,
    TargetRefusedError,
    check_url,
    system_resolver,
)

log = logging.getLogger("gateway.orders")

SIGNATURE_VERSION = "v1"
EVENT_TYPES = {
    "completed": "order.completed",
    "partially_completed": "order.partially_completed",
    "failed": "order.failed",
}


def sign(secret: str | bytes, timestamp: int | str, body: bytes) -> str:
    """``v1=`` + hex HMAC-SHA256 of ``"<timestamp>.<body>"`` under ``secret``."""
    key = secret.encode() if isinstance(secret, str) else secret
    digest = hmac.new(key, f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"{SIGNATURE_VERSION}={digest}"


def verify_signature(
    secret: str | bytes,
    *,
    body: bytes,
    timestamp: str,
    signature: str,
    tolerance_seconds: float = 300.0,
    now: float | None = None,
) -> bool:
    """Check a webhook as a reseller should: the raw body (before any JSON parsing), the
    ``X-Webhook-Timestamp`` and ``X-Webhook-Signature`` headers, and a timestamp within
    ``tolerance_seconds`` of now (replay protection). ``signature`` may list several
    comma-separated values (during a secret rotation); any valid one passes::

        from gateway.orders.webhooks import verify_signature
        ok = verify_signature(SECRET, body=request_body, timestamp=headers["X-Webhook-Timestamp"],
                              signature=headers["X-Webhook-Signature"])
    """
    try:
        sent_at = int(timestamp)
    except (TypeError, ValueError):
        return False
    current = time.time() if now is None else now
    if abs(current - sent_at) > tolerance_seconds:
        return False
    expected = sign(secret, sent_at, body)
    return any(
        hmac.compare_digest(expected, candidate.strip())
        for candidate in signature.split(",")
        if candidate.strip()
    )


def event_body(
    event_id: str, event_type: str, created_at: str | None, order: dict[str, Any]
) -> bytes:
    return json.dumps(
        {"id": event_id, "type": event_type, "created_at": created_at, "data": {"order": order}},
        separators=(",", ":"),
        sort_keys=True,
    ).encode()


class _CheckedTransport(httpx.AsyncHTTPTransport):
    """httpx's transport over a connection pool whose every connection goes through
    ``CheckedBackend``. httpx takes no network backend, so the pool it builds is replaced
    by one built the same way with ours (a test sends through it: if httpx stopped
    using ``_pool``, the rebinding test would fail)."""

    def __init__(self, backend: httpcore.AsyncNetworkBackend) -> None:
        super().__init__(trust_env=False)
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=httpx.create_ssl_context(trust_env=False),
            max_connections=20,
            max_keepalive_connections=10,
            keepalive_expiry=5.0,
            network_backend=backend,
        )


class WebhookSender:
    """Sends one attempt of one event, only to an allowed target (see the module
    docstring). It owns its HTTP client: the gateway's shared one connects wherever a
    name resolves, and uses environment proxies, which would resolve names themselves.
    Never follows redirects (a redirect would send the signed event somewhere the
    reseller did not configure, and past the checks)."""

    def __init__(
        self,
        *,
        timeout: float,
        allow_private: bool = False,
        resolve: Resolver = system_resolver,
    ) -> None:
        self._timeout = timeout
        self._allow_private = allow_private
        self._resolve = resolve
        self._http: httpx.AsyncClient | None = None

    def _client(self) -> httpx.AsyncClient:
        if self._http is None or self._http.is_closed:
            backend = CheckedBackend(allow_private=self._allow_private, resolve=self._resolve)
            self._http = httpx.AsyncClient(
                transport=_CheckedTransport(backend), trust_env=False, follow_redirects=False
            )
        return self._http

    async def aclose(self) -> None:
        if self._http is not None:
            await self._http.aclose()
            self._http = None

    async def send(
        self, url: str, secret: str, event_id: str, body: bytes
    ) -> tuple[int | None, str | None]:
        """(HTTP status or None, error description or None)."""
        try:
            check_url(url, allow_private=self._allow_private)
        except TargetRefused as exc:
            return None, _refused(event_id, exc)
        timestamp = int(time.time())
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "digital-goods-gateway-webhooks/1",
            "X-Webhook-Id": event_id,
            "X-Webhook-Timestamp": str(timestamp),
            "X-Webhook-Signature": sign(secret, timestamp, body),
        }
        try:
            response = await self._client().post(
                url, content=body, headers=headers, timeout=self._timeout, follow_redirects=False
            )
        except httpx.HTTPError as exc:
            if isinstance(exc.__cause__, TargetRefusedError):
                return None, _refused(event_id, exc.__cause__)
            return None, type(exc).__name__
        if 200 <= response.status_code < 300:
            return response.status_code, None
        return response.status_code, f"answered {response.status_code}"


def _refused(event_id: str, exc: Exception) -> str:
    """The error recorded for an attempt to a refused target (operators see it with the
    order's webhook state and in the log)."""
    log.warning("webhook target refused: %s", exc, extra={"event_id": event_id})
    return f"webhook target refused: {exc}"
