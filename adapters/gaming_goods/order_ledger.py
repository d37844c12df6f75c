"""What we sent to Gaming Goods and which upstream order belongs to which reference.

The Partner API does not promise to honour ``Idempotency-Key`` and cannot be searched by
our reference, so a checkout whose outcome is unknown can only be recognised by *what* it
bought and *when*. This ledger keeps, in Redis (every key under the adapter's hash tag,
so one Cluster slot):

* ``checkout:<reference>``: the intent, JSON ``{"lines": [...]}``, written once (``SET
  NX``) before the first attempt and never changed, so a reference is never reused for
  other lines;
* ``sent:<reference>``: when a request of that reference first *left* (written just
  before the request is sent, after any rate-limit wait, ``SET NX``): the earliest an
  upstream order of it can have been created. A reference never sent has none and can
  neither own nor block an upstream order;
* ``pending``: a sorted set of references sent but not yet resolved (score: first send).
  A candidate order that another pending reference with the same lines could have
  produced (sent early enough) cannot be attributed: reconciliation asks a human instead
  of guessing;
* ``ref:<reference>``: JSON list of the upstream order ids of that reference;
* ``claim:<order id>``: the reference owning an upstream order. Claims are written by one
  script (``ledger_claim.lua``), all or nothing: an order is owned by at most one
  reference and a reference maps to one set of orders;
* ``items:<order id>``: an upstream order's units per product (they never change), so
  each candidate's detail is fetched once however many reconciliations look at it.

Every key expires after ``ttl`` seconds (several days: longer than any reconciliation).
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any

_CLAIM = resources.files("adapters.gaming_goods").joinpath("ledger_claim.lua").read_text()


@dataclass(frozen=True)
class Intent:
    """A checkout of ``reference``; ``sent_at`` is when a request of it first left
    (``None``: never sent, so no upstream order can be its)."""

    reference: str
    lines: tuple[tuple[str, int], ...]
    sent_at: float | None

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
        return json.dumps({"lines": [{"product_id": p, "quantity": q} for p, q in self.lines]})

    @classmethod
    def from_json(cls, reference: str, raw: str | bytes, sent: Any = None) -> Intent:
        data = json.loads(raw)
        # Intents written before ``sent:`` existed carry their send time inline.
        sent_at = float(sent) if sent is not None else data.get("sent_at")
        return cls(
            reference=reference,
            lines=tuple((str(x["product_id"]), int(x["quantity"])) for x in data["lines"]),
            sent_at=float(sent_at) if sent_at is not None else None,
        )


class ReferenceReused(Exception):
    """The reference already names a checkout with different lines."""


@dataclass(frozen=True)
class Claim:
    """The outcome of ``OrderLedger.claim``: empty ``taken`` and ``mapped`` None: ours."""

    #: Orders another reference owns (order id → owner); nothing was written.
    taken: dict[str, str]
    #: The orders the reference already maps to, when they differ; nothing was written.
    mapped: list[str] | None = None

    @property
    def ok(self) -> bool:
        return not self.taken and self.mapped is None


class OrderLedger:
    def __init__(self, redis: Any, key: Callable[..., str], *, ttl: int) -> None:
        self._redis = redis
        self._key = key
        self._ttl = ttl
        self._claim = redis.register_script(_CLAIM)

    @property
    def _pending(self) -> str:
        return self._key("pending")

    async def record_intent(self, reference: str, lines: Sequence[Mapping[str, Any]]) -> Intent:
        """Record the checkout before its first attempt (not yet as sent). Returns the
        intent as stored; an existing intent with other lines raises ``ReferenceReused``."""
        intent = Intent(
            reference=reference,
            lines=tuple((str(x["product_id"]), int(x["quantity"])) for x in lines),
            sent_at=None,
        )
        key = self._key("checkout", reference)
        if await self._redis.set(key, intent.to_json(), nx=True, ex=self._ttl):
            return intent
        existing = await self.intent(reference)
        if existing is None:  # expired between the two calls: write ours
            await self._redis.set(key, intent.to_json(), ex=self._ttl)
            return intent
        if not existing.same_lines(lines):
            raise ReferenceReused(reference)
        return existing

    async def mark_sent(self, reference: str, *, now: float | None = None) -> None:
        """A request of ``reference`` is leaving now: from here on an upstream order may
        be its. The first send time is kept (a resend must not narrow the look-back)."""
        now = time.time() if now is None else now
        pipe = self._redis.pipeline(transaction=False)
        pipe.set(self._key("sent", reference), repr(now), nx=True, ex=self._ttl)
        pipe.zadd(self._pending, {reference: now}, nx=True)
        pipe.zremrangebyscore(self._pending, "-inf", now - self._ttl)
        pipe.expire(self._pending, self._ttl)
        await pipe.execute()

    async def intent(self, reference: str) -> Intent | None:
        raw, sent = await self._redis.mget(
            [self._key("checkout", reference), self._key("sent", reference)]
        )
        return Intent.from_json(reference, raw, sent) if raw is not None else None

    async def forget(self, reference: str) -> None:
        """No request of the checkout created anything (refused, or never sent)."""
        pipe = self._redis.pipeline(transaction=False)
        pipe.delete(self._key("checkout", reference), self._key("sent", reference))
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

    async def claim(self, reference: str, order_ids: Sequence[str]) -> Claim:
        """Take the orders for ``reference`` and store the mapping, atomically and all or
        nothing (``ledger_claim.lua``)."""
        ids = [str(i) for i in order_ids]
        reply = await self._claim(
            keys=[
                self._key("ref", reference),
                self._pending,
                *(self._key("claim", i) for i in ids),
            ],
            args=[reference, self._ttl, json.dumps(ids)],
        )
        kind = _text(reply[0])
        if kind == "mapped":
            return Claim(taken={}, mapped=[str(i) for i in json.loads(_text(reply[1]) or "[]")])
        if kind == "taken":
            pairs = reply[1:]
            return Claim(
                taken={
                    ids[int(pairs[n]) - 1]: _text(pairs[n + 1]) or ""
                    for n in range(0, len(pairs), 2)
                }
            )
        return Claim(taken={})

    async def remember(self, reference: str, order_ids: Sequence[str]) -> None:
        """Store ``reference`` → ``order_ids`` and mark it resolved, without a claim: used
        when the upstream answered our own checkout with an order another reference had
        already claimed. We must never send it again, and the double attribution is
        surfaced on every look-up until a human resolves it."""
        pipe = self._redis.pipeline(transaction=False)
        pipe.set(self._key("ref", reference), json.dumps(list(order_ids)), ex=self._ttl)
        pipe.zrem(self._pending, reference)
        await pipe.execute()

    async def other_pending(self, reference: str) -> list[Intent]:
        """Sent, unresolved intents of other references (stale entries are dropped)."""
        refs = [_text(r) for r in await self._redis.zrange(self._pending, 0, -1)]
        others = [r for r in refs if r is not None and r != reference]
        if not others:
            return []
        keys: list[str] = []
        for ref in others:
            keys += [self._key("checkout", ref), self._key("sent", ref)]
        values = await self._redis.mget(keys)
        intents: list[Intent] = []
        for n, ref in enumerate(others):
            raw, sent = values[2 * n], values[2 * n + 1]
            if raw is None:
                await self._redis.zrem(self._pending, ref)
                continue
            intent = Intent.from_json(ref, raw, sent)
            if intent.sent_at is not None:
                intents.append(intent)
        return intents

    async def cached_items(self, order_ids: Sequence[str]) -> dict[str, dict[str, int]]:
        """Units per product of the orders whose items were read before."""
        if not order_ids:
            return {}
        values = await self._redis.mget([self._key("items", i) for i in order_ids])
        return {
            i: {str(p): int(q) for p, q in json.loads(v).items()}
            for i, v in zip(order_ids, values, strict=True)
            if v is not None
        }

    async def cache_items(self, order_id: str, items: Mapping[str, int]) -> None:
        await self._redis.set(self._key("items", order_id), json.dumps(dict(items)), ex=self._ttl)


def _units(lines: Iterable[Mapping[str, Any]]) -> Counter[str]:
    counts: Counter[str] = Counter()
    for line in lines:
        counts[str(line["product_id"])] += int(line["quantity"])
    return counts


def _text(value: Any) -> str | None:
    if value is None:
        return None
    return value.decode() if isinstance(value, bytes) else str(value)
