"""Orders in Redis: one hash per order, changed only by compare-and-set scripts.

Layout (every key under the ``{orders}`` hash tag, see ``gateway.redis_keys``)::

    <p>:{orders}:order:<id>                  hash {doc: JSON of StoredOrder, v: version}
    <p>:{orders}:by-reseller:<rid>           ZSET order id -> created ms (all statuses)
    <p>:{orders}:by-reseller:<rid>:<status>  ZSET order id -> created ms, per status
    <p>:{orders}:idem:<rid>:<sha256(key)>    hash, one per Idempotency-Key (TTL)
    <p>:{orders}:jobs                        stream of due jobs, group order-workers
    <p>:{orders}:schedule                    ZSET of delayed jobs -> due ms
    <p>:{orders}:review                      ZSET "<id>:<part>" held for review -> since
    <p>:{orders}:events                      pub/sub channel: id of an order made final

Every change is read → modify in Python → ``lua/order_update.lua`` with the version read:
two workers touching one order (a re-delivered job racing the original) cannot overwrite
each other; the loser re-reads and finds its work already done.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from gateway.accounts.holds import AccountMove, HoldPlan
from gateway.orders.models import OrderStatus, StoredOrder
from gateway.orders.queue import GROUP, Job
from gateway.orders.scripts import OrderScripts
from gateway.redis_keys import RedisKeys


@dataclass
class Effects:
    """What a committed change also does, atomically with it."""

    ack: str | None = None
    now: list[Job] = field(default_factory=list)
    later: list[tuple[float, Job]] = field(default_factory=list)
    review_add: list[str] = field(default_factory=list)
    review_rem: list[str] = field(default_factory=list)
    publish: bool = False
    #: Account captures/releases of parts that became final (``gateway.accounts.holds``).
    accounts: list[AccountMove] = field(default_factory=list)

    def encode(self, channel: str) -> str:
        out: dict[str, Any] = {}
        if self.accounts:  # their keys follow the six fixed ones, see ``OrderStore.commit``
            out["accounts"] = [m.encode(8 + 2 * i) for i, m in enumerate(self.accounts)]
        if self.ack:
            out["ack"] = self.ack
            out["group"] = GROUP
        if self.now:
            out["now"] = [job.encode() for job in self.now]
        if self.later:
            out["later"] = [[max(0, int(delay * 1000)), job.encode()] for delay, job in self.later]
        if self.review_add:
            out["review_add"] = self.review_add
        if self.review_rem:
            out["review_rem"] = self.review_rem
        if self.publish:
            out["publish"] = channel
        return json.dumps(out)


@dataclass(frozen=True, slots=True)
class Versioned:
    order: StoredOrder
    version: int


def review_member(order_id: str, part: int) -> str:
    return f"{order_id}:{part}"


def _ms(seconds: float) -> int:
    return int(seconds * 1000)


class OrderStore:
    def __init__(self, redis: Any, keys: RedisKeys, scripts: OrderScripts) -> None:
        self.redis = redis
        self.keys = keys
        self._scripts = scripts

    async def create(
        self,
        order: StoredOrder,
        *,
        idempotency_key: str,
        token: str,
        idempotency_ttl: int,
        jobs: Sequence[Job],
        holds: HoldPlan | None = None,
    ) -> str | list[Any]:
        """Write a new order with its first jobs and its account ``holds``; "ok", "lost",
        "exists", or the refusal of an account (a list, see ``OrderAccounts.check``)."""
        keys = self.keys
        result = await self._scripts.order_create(
            keys=[
                keys.order(order.id),
                keys.order_jobs(),
                keys.reseller_orders(order.reseller_id),
                keys.reseller_orders(order.reseller_id, order.status.value),
                idempotency_key,
                *(holds.keys if holds else ()),
            ],
            args=[
                token,
                order.model_dump_json(),
                order.id,
                _ms(order.created_at),
                idempotency_ttl,
                holds.spec if holds else "",
                *(job.encode() for job in jobs),
            ],
        )
        if isinstance(result, list):
            return result
        return result.decode() if isinstance(result, bytes) else str(result)

    async def load(self, order_id: str) -> Versioned | None:
        doc, version = await self.redis.hmget(self.keys.order(order_id), ["doc", "v"])
        if doc is None or version is None:
            return None
        return Versioned(StoredOrder.model_validate_json(doc), int(version))

    async def commit(
        self,
        order: StoredOrder,
        version: int,
        old_status: OrderStatus,
        effects: Effects | None = None,
    ) -> int:
        """Write ``order`` if it is still at ``version``; the new version, or 0."""
        keys = self.keys
        moves = effects.accounts if effects else []
        account_keys = [keys.account_holds()] if moves else []
        for move in moves:
            account_keys.append(keys.account(move.reseller_id, move.currency))
            account_keys.append(keys.account_ledger(move.reseller_id, move.currency))
        result = await self._scripts.order_update(
            keys=[
                keys.order(order.id),
                keys.order_jobs(),
                keys.order_schedule(),
                keys.order_review(),
                keys.reseller_orders(order.reseller_id, old_status.value),
                keys.reseller_orders(order.reseller_id, order.status.value),
                *account_keys,
            ],
            args=[
                version,
                order.model_dump_json(),
                order.id,
                _ms(order.created_at),
                (effects or Effects()).encode(keys.order_events()),
            ],
        )
        return int(result)

    async def list_for_reseller(
        self, reseller_id: str, status: OrderStatus | None, offset: int, limit: int
    ) -> tuple[int, list[StoredOrder]]:
        """A page of the reseller's orders, newest first, and how many there are."""
        index = self.keys.reseller_orders(reseller_id, status.value if status else None)
        pipe = self.redis.pipeline(transaction=False)
        pipe.zcard(index)
        pipe.zrevrange(index, offset, offset + limit - 1)
        total, ids = await pipe.execute()
        if not ids:
            return int(total), []
        pipe = self.redis.pipeline(transaction=False)
        for order_id in ids:
            pipe.hget(
                self.keys.order(order_id.decode() if isinstance(order_id, bytes) else order_id),
                "doc",
            )
        docs = await pipe.execute()
        orders = [StoredOrder.model_validate_json(doc) for doc in docs if doc is not None]
        return int(total), orders

    async def held_for_review(self) -> list[tuple[str, int, float]]:
        """Every part held for review: (order id, part, held since, Unix seconds)."""
        rows = await self.redis.zrange(self.keys.order_review(), 0, -1, withscores=True)
        held: list[tuple[str, int, float]] = []
        for member, since in rows:
            text = member.decode() if isinstance(member, bytes) else member
            order_id, _, part = text.rpartition(":")
            held.append((order_id, int(part), float(since)))
        return held

    async def review_count(self) -> int:
        return int(await self.redis.zcard(self.keys.order_review()))

    async def order_ids(self) -> list[str]:
        """Every stored order id (operator tools: key rotation)."""
        prefix = self.keys.order("")
        ids: list[str] = []
        async for key in self.redis.scan_iter(match=prefix + "*", count=1000):
            text = key.decode() if isinstance(key, bytes) else key
            ids.append(text[len(prefix) :])
        return ids
