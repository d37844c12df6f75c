"""How results from suppliers change an order: pure functions over ``StoredOrder``.

Kept free of I/O so that every rule (how codes are matched to items, what makes an
order partially completed) is tested directly and reads in one place.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence

from adapters.models import Code, Product, UpstreamOrder, UpstreamOrderState, Variant
from gateway.orders.crypto import CodeCipher
from gateway.orders.ids import attempt_reference
from gateway.orders.models import (
    Attempt,
    AttemptOutcome,
    Failure,
    HoldReason,
    ItemStatus,
    OrderStatus,
    Part,
    PartState,
    StoredItem,
    StoredOrder,
)

log = logging.getLogger("gateway.orders")

_UPSTREAM_FAILURE = {
    UpstreamOrderState.FAILED: ("supplier_failed", "the supplier could not fulfil the order"),
    UpstreamOrderState.CANCELLED: ("supplier_cancelled", "the supplier cancelled the order"),
}


def recompute(order: StoredOrder, now: float) -> None:
    """Derive item statuses of unfinished parts and the order's status from its parts."""
    for part in order.parts:
        if part.state.is_final:
            continue
        started = part.state is not PartState.PENDING or part.attempts > 0
        status = ItemStatus.PROCESSING if started else ItemStatus.PENDING
        for index in part.items:
            order.items[index].status = status
    if all(part.state.is_final for part in order.parts):
        delivered = sum(item.delivered_quantity for item in order.items)
        if all(item.delivered_quantity >= item.quantity for item in order.items):
            order.status = OrderStatus.COMPLETED
        elif delivered == 0:
            order.status = OrderStatus.FAILED
        else:
            order.status = OrderStatus.PARTIALLY_COMPLETED
        if order.final_at is None:
            order.final_at = now
    elif any(item.status is ItemStatus.PROCESSING for item in order.items):
        order.status = OrderStatus.PROCESSING
    else:
        order.status = OrderStatus.PENDING
    order.updated_at = now


def assign_codes(
    items: Sequence[StoredItem], codes: Sequence[Code]
) -> tuple[list[list[Code]], int]:
    """Share an upstream order's codes among its items: a code naming its variant goes to
    that item, the others fill items in line order; never more than an item's quantity.
    Returns the codes per item and how many were left over (reported, never shown)."""
    buckets: list[list[Code]] = [[] for _ in items]
    loose: list[Code] = []
    for code in codes:
        target = None
        if code.variant_id is not None:
            for i, item in enumerate(items):
                if item.variant_id == code.variant_id and len(buckets[i]) < item.quantity:
                    target = i
                    break
        if target is None:
            loose.append(code)
        else:
            buckets[target].append(code)
    extra = 0
    for code in loose:
        for i, item in enumerate(items):
            if len(buckets[i]) < item.quantity:
                buckets[i].append(code)
                break
        else:
            extra += 1
    return buckets, extra


def _code_payload(code: Code) -> dict[str, object]:
    return code.model_dump(mode="json", exclude_none=True, exclude={"variant_id"})


def apply_upstream(
    order: StoredOrder, part: Part, upstream: UpstreamOrder, cipher: CodeCipher, now: float
) -> None:
    """Record the upstream order's state; once it is final, its codes and item outcomes."""
    part.upstream_id = upstream.upstream_id
    part.upstream_state = upstream.state.value
    part.review_reason = None
    part.last_error = None
    if part.placed_at is None:
        part.placed_at = now
    if not upstream.state.is_final:
        part.state = PartState.PLACED
        return
    items = [order.items[i] for i in part.items]
    buckets, extra = assign_codes(items, upstream.codes)
    if extra:
        log.warning(
            "supplier returned more codes than ordered",
            extra={"order_id": order.id, "reference": part.reference, "extra_codes": extra},
        )
    failure_code, failure_message = _UPSTREAM_FAILURE.get(
        upstream.state, ("supplier_short_delivery", "the supplier delivered fewer units")
    )
    for item, codes in zip(items, buckets, strict=True):
        item.delivered_quantity = len(codes)
        item.codes = (
            cipher.encrypt(json.dumps([_code_payload(c) for c in codes]).encode())
            if codes
            else None
        )
        if len(codes) >= item.quantity:
            item.status = ItemStatus.DELIVERED
            item.failure = None
        else:
            item.status = ItemStatus.PARTIALLY_DELIVERED if codes else ItemStatus.FAILED
            item.failure = Failure(
                code=failure_code,
                message=f"{failure_message}: {len(codes)} of {item.quantity} delivered",
            )
    delivered = sum(len(c) for c in buckets)
    wanted = sum(item.quantity for item in items)
    if delivered >= wanted:
        part.state = PartState.DELIVERED
    elif delivered == 0:
        part.state = PartState.FAILED
    else:
        part.state = PartState.PARTIALLY_DELIVERED
    part.finished_at = now
    part.job = None


def fail_part(order: StoredOrder, part: Part, failure: Failure, now: float) -> None:
    """Nothing of this part was bought: its items failed (and its attempt in progress,
    if any, with it)."""
    current = part.current()
    if current is not None:
        current.outcome, current.ended_at = AttemptOutcome.FAILED, now
        current.code = current.code or failure.code
    part.state = PartState.FAILED
    part.finished_at = now
    part.job = None
    part.review_reason = None
    for index in part.items:
        item = order.items[index]
        item.status = ItemStatus.FAILED
        item.delivered_quantity = 0
        item.failure = failure


def hold_part(part: Part, reason: HoldReason, now: float) -> None:
    """The outcome cannot be settled safely: stop all work on the part until an operator
    resolves it (``gateway orders review``)."""
    part.state = PartState.REVIEW
    part.review_reason = HoldReason(reason)  # a typo'd reason fails here, not in storage
    part.job = None
    if part.first_attempt_at is None:
        part.first_attempt_at = now


def begin_attempt(
    order: StoredOrder, part: Part, offer: tuple[Product, Variant], cost: int, now: float
) -> Attempt:
    """A routed part's next attempt at ``offer``: its own reference, its own placement
    deadline; the part and its item name the offer from now on (what the reseller sees
    while it is bought). Committed before anything is sent (``processing``)."""
    product, variant = offer
    n = len(part.tries) + 1
    reference = attempt_reference(part.base_reference or part.reference, n)
    face = order.items[part.items[0]].face_value if variant.is_range else variant.face_value
    attempt = Attempt(
        n=n,
        supplier=product.supplier,
        variant_id=variant.id,
        reference=reference,
        at=now,
        cost=cost,
        face_value=face,
    )
    part.tries.append(attempt)
    part.supplier, part.reference = product.supplier, reference
    part.first_attempt_at = None  # its own placement deadline, from its first send
    for index in part.items:
        item = order.items[index]
        item.variant_id, item.product_id = variant.id, product.id
        item.product_name, item.variant_name = product.name, variant.name
        item.supplier = product.supplier
    return attempt


def current_attempt(order: StoredOrder, part: Part, now: float) -> Attempt:
    """The part's attempt an outcome belongs to. A pinned part's one attempt is recorded
    on its first outcome (its supplier and reference never change)."""
    current = part.current()
    if current is not None:
        return current
    if part.tries and not part.routed:
        return part.tries[-1]
    attempt = Attempt(
        n=len(part.tries) + 1,
        supplier=part.supplier,
        variant_id=",".join(order.items[i].variant_id for i in part.items),
        reference=part.reference,
        at=now,
    )
    part.tries.append(attempt)
    return attempt
