"""What we sent to Gaming Goods and which upstream order belongs to which reference.

The Partner API does not promise to honour ``Idempotency-Key`` and cannot be searched by
our reference, so a checkout whose outcome is unknown can only be recognised by *what* it
bought and *when*. This ledger keeps, in Redis (every key under the adapter's hash tag,
so one Cluster slot):

* ``checkout:<reference>``: the intent, JSON ``{"lines": [...], "sent_at": <unix>}``,
  written once *before* the first send (``SET NX``) and never changed, so a resend keeps
  the first send time and reconciliation looks back far enough;
* ``pending``: a sorted set of references sent but not yet resolved (score: first send).
  A candidate order that would also fit another pending reference with the same lines
  cannot be attributed: reconciliation then asks a human instead of guessing;
* ``ref:<reference>``: JSON list of the upstream order ids of that reference;
* ``claim:<order id>``: the reference owning an upstream order, taken with ``SET NX`` so
  two reconciliations can never both take one order.

Every key expires after ``ttl`` seconds (several days: longer than any reconciliation).
No Lua is needed: each decision rests on one atomic ``SET NX``.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Intent:
    """A checkout we sent (or were about to send) under ``reference``."""

    reference: str
    lines: tuple[tuple[str, int], ...]
    sent_at: float

    def units(self) -> Counter[str]:
        counts: Counter[str] = Counter()
        for product_id, quantity in self.lines:
            counts[product_id] += quantity
        return counts

    def same_lines(self, lines: Iterable[Mapping[str, Any]]) -> bool:
        return self.units() == _units(lines)

    def matches(self, items: Mapping[str, int]) -> bool:
        """Whether an order's units per product are exactly what this intent bought."""
        return self.units() == Counter({p: q for p, q in items.items() if q})

    def to_json(self) -> str:
        return json.dumps(
            {
                "lines": [{"product_id": p, "quantity": q} for p, q in self.lines],
                "sent_at": self.sent_at,
            }
        )

    @classmethod
    def from_json(cls, reference: str, raw: str | bytes) -> Intent:
        data = json.loads(raw)
        return cls(
            reference=reference,
            lines=tuple((str(x["product_id"]), int(x["quantity"])) for x in data["lines"]),
            sent_at=float(data["sent_at"]),
        )


class ReferenceReused(Exception):
    """The reference already names a checkout with different lines."""


class OrderLedger:
    def __init__(self, redis: Any, key: Callable[..., str], *, ttl: int) -> None:
        self._redis = redis
        self._key = key
        self._ttl = ttl

    @property
    def _pending(self) -> str:
        return self._key("pending")

    async def record_intent(
        self, reference: str, lines: Sequence[Mapping[str, Any]], *, now: float | None = None
    ) -> tuple[Intent, bool]:
        """Record the checkout before sending it. Returns the intent and whether it is new;
        an existing intent with other lines raises ``ReferenceReused``."""
        now = time.time() if now is None else now
        intent = Intent(
            reference=reference,
            lines=tuple((str(x["product_id"]), int(x["quantity"])) for x in lines),
            sent_at=now,
        )
        key = self._key("checkout", reference)
        created = await self._redis.set(key, intent.to_json(), nx=True, ex=self._ttl)
        if not created:
            existing = await self.intent(reference)
            if existing is not None:
                if not existing.same_lines(lines):
                    raise ReferenceReused(reference)
                intent = existing
            else:  # expired between the two calls: write ours
                await self._redis.set(key, intent.to_json(), ex=self._ttl)
                created = True
        pipe = self._redis.pipeline(transaction=False)
        pipe.zadd(self._pending, {reference: intent.sent_at})
        pipe.zremrangebyscore(self._pending, "-inf", now - self._ttl)
        pipe.expire(self._pending, self._ttl)
        await pipe.execute()
        return intent, bool(created)

    async def intent(self, reference: str) -> Intent | None:
        raw = await self._redis.get(self._key("checkout", reference))
        return Intent.from_json(reference, raw) if raw is not None else None

    async def forget(self, reference: str) -> None:
        """The checkout certainly created nothing (refused, or never sent)."""
        pipe = self._redis.pipeline(transaction=False)
        pipe.delete(self._key("checkout", reference))
        pipe.zrem(self._pending, reference)
        await pipe.execute()

    async def order_ids(self, reference: str) -> list[str] | None:
        raw = await self._redis.get(self._key("ref", reference))
        return [str(i) for i in json.loads(raw)] if raw is not None else None

    async def owners(self, order_ids: Sequence[str]) -> dict[str, str | None]:
        """Which reference has claimed each order (``None``: nobody)."""
        if not order_ids:
            return {}
        values = await self._redis.mget([self._key("claim", i) for i in order_ids])
        return {i: _text(v) for i, v in zip(order_ids, values, strict=True)}

    async def claim(self, reference: str, order_ids: Sequence[str]) -> dict[str, str]:
        """Take the orders for ``reference`` and store the mapping; returns the orders
        another reference owns already (empty: every claim is ours)."""
        pipe = self._redis.pipeline(transaction=False)
        for order_id in order_ids:
            pipe.set(self._key("claim", order_id), reference, nx=True, ex=self._ttl)
        await pipe.execute()
        owners = await self.owners(order_ids)
        taken = {i: o for i, o in owners.items() if o != reference and o is not None}
        if not taken:
            await self.remember(reference, order_ids)
        return taken

    async def remember(self, reference: str, order_ids: Sequence[str]) -> None:
        """Store ``reference`` → ``order_ids`` and mark it resolved. Also used, without a
        claim, when the upstream answered our own checkout with an order another
        reference had already claimed: we must never send it again, and the double
        attribution is surfaced on every look-up until a human resolves it."""
        pipe = self._redis.pipeline(transaction=False)
        pipe.set(self._key("ref", reference), json.dumps(list(order_ids)), ex=self._ttl)
        pipe.zrem(self._pending, reference)
        await pipe.execute()

    async def other_pending(self, reference: str) -> list[Intent]:
        """Unresolved intents of other references (stale entries are dropped)."""
        refs = [_text(r) for r in await self._redis.zrange(self._pending, 0, -1)]
        others = [r for r in refs if r is not None and r != reference]
        if not others:
            return []
        raws = await self._redis.mget([self._key("checkout", r) for r in others])
        intents: list[Intent] = []
        for ref, raw in zip(others, raws, strict=True):
            if raw is None:
                await self._redis.zrem(self._pending, ref)
            else:
                intents.append(Intent.from_json(ref, raw))
        return intents


def _units(lines: Iterable[Mapping[str, Any]]) -> Counter[str]:
    counts: Counter[str] = Counter()
    for line in lines:
        counts[str(line["product_id"])] += int(line["quantity"])
    return counts


def _text(value: Any) -> str | None:
    if value is None:
        return None
    return value.decode() if isinstance(value, bytes) else str(value)
