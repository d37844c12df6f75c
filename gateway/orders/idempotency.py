"""``Idempotency-Key`` for order creation, as in the IETF draft and Stripe.

Per reseller, a key names one order creation:

* first use: the request runs, holding the key (a lease, so a dead instance's key can be
  taken over); its answer (status and body) is stored for ``idempotency_ttl_seconds``;
* same key, same body, while the first is running: ``409 idempotency_request_in_progress``
  (retry after ``Retry-After``);
* same key, same body, after it finished: the order as it is now (201 when final, 202
  otherwise, like a first answer), with ``Idempotent-Replayed: true``; the stored
  answer is the fallback when the order cannot be read (``OrdersService._replay``);
* same key, another body: ``422 idempotency_key_reuse``;
* a request refused before anything was created (validation, ``price_changed``,
  ``out_of_stock``) does not use the key up: the same key may be sent again.

The body is compared by a fingerprint of the parsed request (SHA-256 of its canonical
JSON), so formatting differences do not matter. Stored bodies may carry codes and are
encrypted like every code at rest. Keys are stored hashed (any printable characters, no
length games with Redis key names). All of it lives in Redis and is decided by scripts,
so it holds across every gateway instance.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from dataclasses import dataclass
from typing import Any

from gateway.errors import InvalidRequest
from gateway.orders.crypto import CodeCipher
from gateway.orders.schemas import CreateOrderRequest
from gateway.orders.scripts import OrderScripts
from gateway.redis_keys import RedisKeys

MAX_KEY_LENGTH = 255


def parse_key(header: str | None) -> str:
    """The key from the header; a structured-field string (``"abc"``) or a bare token."""
    if header is None:
        raise InvalidRequest(
            "idempotency_key_missing",
            "send an Idempotency-Key header (1 to 255 characters, a UUID is a good choice)",
        )
    value = header.strip()
    if len(value) >= 2 and value[0] == value[-1] == '"':
        value = value[1:-1]
    if not 1 <= len(value) <= MAX_KEY_LENGTH or not all(" " <= c <= "~" for c in value):
        raise InvalidRequest(
            "idempotency_key_invalid",
            "Idempotency-Key must be 1 to 255 printable ASCII characters",
        )
    return value


def fingerprint(request: CreateOrderRequest) -> str:
    canonical = json.dumps(request.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(b"POST /v1/orders\n" + canonical.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Claim:
    """What ``begin`` found: ``kind`` is acquired, takeover, done, busy or mismatch."""

    kind: str
    key: str
    token: str
    status: int | None = None
    body: bytes | None = None
    order_id: str | None = None


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class IdempotencyStore:
    def __init__(
        self, redis: Any, keys: RedisKeys, scripts: OrderScripts, cipher: CodeCipher
    ) -> None:
        self._keys = keys
        self._scripts = scripts
        self._cipher = cipher

    def redis_key(self, reseller_id: str, key: str) -> str:
        return self._keys.order_idempotency(reseller_id, hashlib.sha256(key.encode()).hexdigest())

    async def begin(
        self, reseller_id: str, key: str, request_fingerprint: str, lease_seconds: float
    ) -> Claim:
        name = self.redis_key(reseller_id, key)
        token = secrets.token_hex(8)
        answer = await self._scripts.idem_begin(
            keys=[name], args=[token, request_fingerprint, int(lease_seconds * 1000)]
        )
        kind = _text(answer[0])
        if kind == "done":
            body = self._cipher.decrypt(answer[2])
            order_id = _text(answer[3]) if len(answer) > 3 and answer[3] else None
            return Claim(kind, name, token, status=int(answer[1]), body=body, order_id=order_id)
        if kind == "takeover":
            return Claim(kind, name, token, order_id=_text(answer[1]))
        return Claim(kind, name, token)

    async def finish(self, claim: Claim, status: int, body: bytes) -> bool:
        stored = await self._scripts.idem_finish(
            keys=[claim.key], args=[claim.token, status, self._cipher.encrypt(body)]
        )
        return bool(int(stored))

    async def release(self, claim: Claim) -> None:
        await self._scripts.idem_release(keys=[claim.key], args=[claim.token])
