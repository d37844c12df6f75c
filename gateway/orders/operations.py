"""Operator actions on orders: the review list, resolving a held part, key rotation.

A part is held for review when its outcome could not be settled safely (see
``processing``). Resolving it is a human decision, made with the supplier's own records
at hand; the gateway never re-sends an order of unknown outcome by itself:

* ``reconcile``: look the order up by its reference again (the supplier may answer now);
  found, it continues as placed (polled, delivered); absent, it stays held;
* ``retry``: send it again under the same reference. Safe when the supplier honours the
  reference (both built-in suppliers do: Gaming Goods' ``Idempotency-Key``, the voucher
  supplier's unique ``client_reference``), or after checking it has no such order;
* ``fail``: give up; its items fail (only when the supplier confirms nothing was bought,
  or the purchase was refunded).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

from gateway.orders.models import Attempt, Failure, HoldReason, Part, PartState, StoredOrder
from gateway.orders.queue import Job, JobKind
from gateway.orders.service import OrdersService
from gateway.orders.store import Effects
from gateway.orders.transitions import fail_part


class Resolution(enum.StrEnum):
    RECONCILE = "reconcile"
    RETRY = "retry"
    FAIL = "fail"


class ResolveError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class HeldPart:
    order_id: str
    part: int
    reseller_id: str
    supplier: str
    reference: str
    upstream_id: str | None
    reason: HoldReason | None
    last_error: str | None
    attempts: int
    held_since: float
    order_created_at: float
    #: Every supplier attempt of the part (``attempt_row``): where it was tried before.
    tries: list[dict[str, Any]]

    def as_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__dataclass_fields__}


def attempt_row(attempt: Attempt) -> dict[str, Any]:
    """One attempt as operators see it: supplier, supplier variant, reference, outcome,
    when, the refusal code and our error text (no codes, no credentials: the order
    record never holds them outside the encrypted ``codes``)."""
    return attempt.model_dump(mode="json", exclude_none=True)


def part_row(part: Part) -> dict[str, Any]:
    return {
        "part": part.n,
        "supplier": part.supplier,
        "reference": part.reference,
        "state": part.state.value,
        "routed": part.routed,
        "upstream_id": part.upstream_id,
        "review_reason": part.review_reason.value if part.review_reason else None,
        "last_error": part.last_error,
        "attempts": part.attempts,
        "tries": [attempt_row(t) for t in part.tries],
    }


def order_detail(order: StoredOrder) -> dict[str, Any]:
    """An order for ``gateway orders show``: items (never their codes), parts and every
    attempt of each part."""
    return {
        "id": order.id,
        "reseller_id": order.reseller_id,
        "reference": order.reference,
        "status": order.status.value,
        "created_at": order.created_at,
        "final_at": order.final_at,
        "items": [
            {
                "variant_id": item.variant_id,
                "canonical_variant_id": item.canonical_variant_id,
                "supplier": item.supplier,
                "quantity": item.quantity,
                "unit_price": item.unit_price.model_dump(),
                "status": item.status.value,
                "delivered_quantity": item.delivered_quantity,
                "failure": item.failure.model_dump() if item.failure else None,
            }
            for item in order.items
        ],
        "parts": [part_row(part) for part in order.parts],
        "holds": [hold.model_dump() for hold in order.holds],
    }


async def show(service: OrdersService, order_id: str) -> dict[str, Any] | None:
    loaded = await service.store.load(order_id)
    return None if loaded is None else order_detail(loaded.order)


async def held_parts(service: OrdersService) -> list[HeldPart]:
    rows: list[HeldPart] = []
    for order_id, n, since in await service.store.held_for_review():
        loaded = await service.store.load(order_id)
        if loaded is None:
            continue
        part = loaded.order.part(n)
        rows.append(
            HeldPart(
                order_id=order_id,
                part=n,
                reseller_id=loaded.order.reseller_id,
                supplier=part.supplier,
                reference=part.reference,
                upstream_id=part.upstream_id,
                reason=part.review_reason,
                last_error=part.last_error,
                attempts=part.attempts,
                held_since=since,
                order_created_at=loaded.order.created_at,
                tries=[attempt_row(t) for t in part.tries],
            )
        )
    return rows


async def resolve(service: OrdersService, order_id: str, n: int, action: Resolution) -> StoredOrder:
    problem: list[str] = []

    def change(order: StoredOrder, now: float) -> Effects | None:
        try:
            part = order.part(n)
        except KeyError:
            problem.append(f"order {order_id} has no part {n}")
            return None
        if part.state is not PartState.REVIEW:
            problem.append(f"part {n} of {order_id} is {part.state.value}, not held for review")
            return None
        effects = Effects()
        if action is Resolution.FAIL:
            failure = Failure(
                code="fulfilment_failed",
                message="the supplier could not fulfil this item; nothing was delivered",
            )
            fail_part(order, part, failure, now)
            return effects
        kind = JobKind.RECONCILE if action is Resolution.RECONCILE else JobKind.PLACE
        job = Job.new(kind, order.id, part.n)
        part.job = job.nonce
        effects.now.append(job)
        if action is Resolution.RETRY:
            part.state = PartState.PENDING
            part.review_reason = None
            part.first_attempt_at = None  # a fresh placement deadline
            part.reconciles = 0
        else:
            part.review_reason = HoldReason.RECONCILING
        return effects

    order = await service.processor.commit(order_id, None, change)
    if order is None:
        raise ResolveError(f"no order {order_id}")
    if problem:
        raise ResolveError(problem[0])
    return order


async def rotate_keys(service: OrdersService) -> tuple[int, int]:
    """Re-encrypt every stored code and stored answer under the newest key; returns
    (orders, stored answers) rewritten. Safe to run while the gateway serves."""
    cipher = service.cipher
    rewritten: set[str] = set()
    for order_id in await service.store.order_ids():

        def change(order: StoredOrder, now: float) -> Effects | None:
            touched = False
            for item in order.items:
                if item.codes is not None:
                    item.codes = cipher.rotate(item.codes)
                    touched = True
            if not touched:
                return None
            rewritten.add(order.id)
            return Effects()

        await service.processor.commit(order_id, None, change, touch=False)
    answers = 0
    redis = service.store.redis
    pattern = service.store.keys.order_idempotency("*", "*")
    async for key in redis.scan_iter(match=pattern, count=1000):
        body = await redis.hget(key, "body")
        if body is not None:
            await redis.hset(key, "body", cipher.rotate(body.decode()))
            answers += 1
    return len(rewritten), answers
