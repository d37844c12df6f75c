"""The order as stored: states, items, upstream parts, webhook delivery.

One reseller order becomes one or more *parts*, one upstream order each (one per supplier,
split further by the adapter's ``max_lines_per_order``). The reseller never sees parts: it
sees one order whose status sums them up, and a status per item.

Order status (what the reseller sees)::

    pending ──► processing ──► completed | partially_completed | failed
       └───────────────────────────────────────────▲ (a placement refused at once)

* ``pending``: accepted and stored; no supplier has been asked yet.
* ``processing``: at least one part is being placed, awaits fulfilment, is being retried,
  or is held for review after an unresolvable outcome.
* ``completed`` (final): every unit of every item was delivered.
* ``partially_completed`` (final): some units were delivered, others failed.
* ``failed`` (final): nothing was delivered (nothing is charged by the suppliers).

Item status: ``pending`` → ``processing`` → ``delivered`` | ``partially_delivered``
(``delivered_quantity`` < ``quantity``) | ``failed``; the last three are final.

Part state (internal, shown by ``gateway orders review``): ``pending`` (not yet accepted
upstream), ``placed`` (accepted, awaiting fulfilment), ``review`` (held: outcome unknown,
never re-sent blindly), and the final ``delivered``, ``partially_delivered``, ``failed``.

Codes are stored per item as one Fernet token (``codes``); see ``gateway.orders.crypto``.
"""

from __future__ import annotations

import enum

from pydantic import BaseModel, ConfigDict

from adapters.models import Money
from gateway.accounts.models import OrderHold


class OrderStatus(enum.StrEnum):
    PENDING = "pending"
    PROCESSING = "processing"
    COMPLETED = "completed"
    PARTIALLY_COMPLETED = "partially_completed"
    FAILED = "failed"

    @property
    def is_final(self) -> bool:
        return self in _FINAL_ORDER


_FINAL_ORDER = frozenset(
    {OrderStatus.COMPLETED, OrderStatus.PARTIALLY_COMPLETED, OrderStatus.FAILED}
)


class ItemStatus(enum.StrEnum):
    PENDING = "pending"
    PROCESSING = "processing"
    DELIVERED = "delivered"
    PARTIALLY_DELIVERED = "partially_delivered"
    FAILED = "failed"


class PartState(enum.StrEnum):
    PENDING = "pending"
    PLACED = "placed"
    REVIEW = "review"
    DELIVERED = "delivered"
    PARTIALLY_DELIVERED = "partially_delivered"
    FAILED = "failed"

    @property
    def is_final(self) -> bool:
        return self in _FINAL_PART


_FINAL_PART = frozenset({PartState.DELIVERED, PartState.PARTIALLY_DELIVERED, PartState.FAILED})


class HoldReason(enum.StrEnum):
    """Why a part is held for review (``Part.review_reason``; a metrics label and a log
    field): stored and shown as these exact strings."""

    #: The adapter's own reconciliation could not tell whether the order was placed.
    OUTCOME_UNKNOWN = "outcome_unknown"
    #: The placement outlived ``job_timeout_seconds``: it may have reached the supplier.
    PLACEMENT_TIMED_OUT = "placement_timed_out"
    #: Retried past ``placement_timeout_seconds``, and the look-up by reference failed.
    PLACEMENT_UNSETTLED = "placement_unsettled"
    #: The placement raised something unmapped (a bug): its outcome is unknown.
    UNEXPECTED_ERROR = "unexpected_error"
    #: A scheduled look-up by reference failed; looked up again while attempts remain.
    RECONCILE_FAILED = "reconcile_failed"
    #: Looked up and positively absent, after an operator's look-up: the operator decides.
    ABSENT_UPSTREAM = "absent_upstream"
    #: An operator asked for a look-up by reference (``gateway orders resolve``).
    RECONCILING = "reconciling"
    #: No adapter is configured for the part's supplier any more.
    SUPPLIER_NOT_CONFIGURED = "supplier_not_configured"
    #: The supplier no longer knows the upstream order it accepted.
    UPSTREAM_ORDER_MISSING = "upstream_order_missing"
    #: Placed, but not fulfilled within ``fulfilment_timeout_seconds``.
    FULFILMENT_OVERDUE = "fulfilment_overdue"
    #: The part's job was delivered ``job_max_deliveries`` times without finishing.
    JOB_FAILED_REPEATEDLY = "job_failed_repeatedly"

    @property
    def settled_by_lookup(self) -> bool:
        """Whether a later look-up by reference may settle the part by itself (its
        outcome is merely unknown); other holds wait for an operator."""
        return self in _LOOK_AGAIN


_LOOK_AGAIN = frozenset(
    {
        HoldReason.OUTCOME_UNKNOWN,
        HoldReason.PLACEMENT_TIMED_OUT,
        HoldReason.PLACEMENT_UNSETTLED,
        HoldReason.UNEXPECTED_ERROR,
        HoldReason.RECONCILE_FAILED,
    }
)


class WebhookState(enum.StrEnum):
    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"


class _Stored(BaseModel):
    model_config = ConfigDict(extra="ignore", validate_assignment=False)


class Failure(_Stored):
    """Why an item failed, for the reseller: a stable code and a readable message."""

    code: str
    message: str


class StoredItem(_Stored):
    variant_id: str
    product_id: str
    product_name: str
    variant_name: str
    supplier: str
    quantity: int
    face_value: Money | None = None
    unit_price: Money
    status: ItemStatus = ItemStatus.PENDING
    delivered_quantity: int = 0
    codes: str | None = None
    failure: Failure | None = None


class Part(_Stored):
    n: int
    supplier: str
    reference: str
    items: list[int]
    state: PartState = PartState.PENDING
    #: Nonce of the one live job for this part; a job carrying another nonce is stale.
    job: str | None = None
    upstream_id: str | None = None
    upstream_state: str | None = None
    attempts: int = 0
    polls: int = 0
    reconciles: int = 0
    first_attempt_at: float | None = None
    placed_at: float | None = None
    finished_at: float | None = None
    review_reason: HoldReason | None = None
    last_error: str | None = None
    #: Its account hold was captured/released (``gateway.accounts.holds.settle``).
    settled: bool = False


class WebhookDelivery(_Stored):
    state: WebhookState = WebhookState.PENDING
    event_id: str
    event_type: str | None = None
    job: str | None = None
    attempts: int = 0
    last_status: int | None = None
    last_error: str | None = None
    first_attempt_at: float | None = None
    last_attempt_at: float | None = None
    next_attempt_at: float | None = None
    delivered_at: float | None = None


class StoredOrder(_Stored):
    id: str
    reseller_id: str
    reference: str | None = None
    status: OrderStatus = OrderStatus.PENDING
    created_at: float
    updated_at: float
    final_at: float | None = None
    items: list[StoredItem]
    parts: list[Part]
    webhook: WebhookDelivery | None = None
    #: What the order holds on the reseller's accounts, per currency.
    holds: list[OrderHold] = []

    def part(self, n: int) -> Part:
        for part in self.parts:
            if part.n == n:
                return part
        raise KeyError(f"order {self.id} has no part {n}")
