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
from gateway.pricing import MarkupRule


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
    #: A routed attempt whose outcome was once unknown was then refused (or found
    #: absent after the placement deadline): the earlier request may still be in flight,
    #: so it is not failed over; looked up again like an unknown outcome.
    REFUSED_AFTER_UNKNOWN = "refused_after_unknown"

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
        HoldReason.REFUSED_AFTER_UNKNOWN,
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
    #: The supplier variant bought (for a routed item: the offer of its part's current
    #: attempt, the cheapest at acceptance until the part is placed).
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
    #: Set when the reseller ordered a canonical variant (``gift-...:fv5000``): the item is
    #: *routed*, its supplier chosen when its part is placed. None: pinned to ``supplier``.
    canonical_variant_id: str | None = None
    #: The reseller's own markup rule as at acceptance (None: the price list's rule), so
    #: an offer chosen later is priced by the same rule and compared with ``unit_price``.
    markup: MarkupRule | None = None


class AttemptOutcome(enum.StrEnum):
    """What came of one attempt of a part (``Part.tries``)."""

    #: Chosen and committed; being sent, or sent again (retriable failures, a resend
    #: after a verified absence). The part's current attempt.
    CHOSEN = "chosen"
    #: Sent and its outcome unknown: the part is held, reconciled at this supplier by
    #: this attempt's reference. Still the part's current attempt.
    UNKNOWN = "unknown"
    #: The supplier took the order (the part is then polled to its end).
    PLACED = "placed"
    #: The supplier definitively refused it: nothing was bought.
    REFUSED = "refused"
    #: Retried past the placement deadline and positively absent upstream.
    ABSENT = "absent"
    #: Given up (an operator failed it, or it failed without a purchase).
    FAILED = "failed"

    @property
    def is_open(self) -> bool:
        return self in (AttemptOutcome.CHOSEN, AttemptOutcome.UNKNOWN)


class Attempt(_Stored):
    """One supplier a part was sent to, under which reference, and what came of it.
    Shown to operators (``gateway orders show``); never holds codes or credentials."""

    n: int
    supplier: str
    variant_id: str
    reference: str
    outcome: AttemptOutcome = AttemptOutcome.CHOSEN
    at: float
    ended_at: float | None = None
    #: The supplier's unit cost when chosen (minor units, in the accepted currency).
    cost: int | None = None
    #: The face value sent with the line: the item's for a range offer, the offer's own
    #: (possibly none) for a fixed one.
    face_value: Money | None = None
    #: A stable code for a refusal (``supplier_rejected_order``, ``not_found``...).
    code: str | None = None
    error: str | None = None
    #: The attempt's outcome was unknown at least once: a later refusal under its
    #: reference may race with the earlier request, so it never fails over.
    was_unknown: bool = False


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
    #: Its supplier is chosen at placement among the offers of its (one) canonical item;
    #: ``supplier`` and ``reference`` are then those of the current attempt.
    routed: bool = False
    #: The reference of the first attempt; attempt k > 1 sends ``<base>.<k>``.
    base_reference: str | None = None
    #: Every attempt, in order (``gateway.orders.router``).
    tries: list[Attempt] = []
    #: The last definitive refusal of a routed part: its items fail with it when no
    #: eligible offer is left.
    refusal: Failure | None = None

    def current(self) -> Attempt | None:
        """The attempt still in progress (chosen or of unknown outcome), if any."""
        if self.tries and self.tries[-1].outcome.is_open:
            return self.tries[-1]
        return None


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
