"""What a worker does with each job: place, poll, reconcile (webhook jobs are handed to
``gateway.orders.webhook_delivery``).

Every handler follows the same shape, which is what makes re-delivery harmless:

1. read the order and check the job is still the part's live job (``Part.job`` equals
   the job's nonce) and the part is in the state the job expects; otherwise the work was
   done already (by this job's first delivery, or by another worker): acknowledge, stop;
2. call the supplier, always with the part's deterministic reference;
3. commit the outcome with compare-and-set, atomically with acknowledging the job and
   enqueueing the next one. If another worker committed first, re-read: step 1 decides.

Outcomes of a placement:

* an upstream order (any state): recorded; polled with backoff until final;
* ``RetriableError`` / ``CircuitOpenError`` (nothing was bought: connection refused, 429,
  an open circuit): retried later, never sooner than the supplier asked, for at most
  ``placement_timeout_seconds``; then looked up by reference and failed only if absent;
* ``FatalError`` (``RejectedError``, ``NotFoundError``, authentication): the part failed
  (a *routed* part fails over instead, see below);
* ``AmbiguousOutcomeError`` (the adapter's own reconciliation could not tell), a job
  cut off by ``job_timeout_seconds``, or any unexpected error: held for review. A held
  part is looked up by reference again later (``review_reconcile_seconds``, a few times):
  found, it continues; confirmed absent, it is sent again under the same reference (the
  adapter contract's rule); still unknown after the last look-up, it waits for an
  operator (``gateway orders review`` / ``resolve``). Never re-sent on a guess.

Routed parts (an item ordered by a canonical variant id) choose their supplier here
(``gateway.orders.router``), and fail over without ever buying twice:

* the choice is an *attempt* (supplier, supplier variant, reference
  ``attempt_reference(base, k)``), committed with compare-and-set **before** anything is
  sent. A worker that dies after the commit leaves the attempt open; whoever runs the job
  next sends that same attempt again, never a new choice;
* a definitive refusal (``FatalError``: out of stock, unavailable, invalid, not found;
  or ``_settle_unplaced`` finding the reference positively absent after the placement
  deadline) closes the attempt as refused: nothing was bought there, so the part is
  placed again at once, with the next eligible offer under the next reference. No offer
  left: the part fails with the last refusal's code;
* an unknown outcome never fails over: the part is held and reconciled *at the same
  supplier by the same reference*, and a verified absence resends it there under that
  reference. Moving on would be unsafe because "absent" can race with the request still
  in flight (a supplier that hung on it may commit it after answering the look-up); only
  the same reference, which the supplier keeps unique, makes that resend harmless. For
  the same reason a refusal of an attempt that was once unknown is not trusted as "nothing
  bought" either: it is held (``refused_after_unknown``) and looked up again.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import random
import time
import traceback
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, replace

from adapters.base import SupplierAdapter
from adapters.errors import (
    AmbiguousOutcomeError,
    CircuitOpenError,
    FatalError,
    NotFoundError,
    RateLimitedError,
    RetriableError,
    SupplierError,
    UpstreamBusyError,
)
from adapters.models import OrderLine, UpstreamOrder
from gateway.accounts.holds import observe as observe_accounts
from gateway.accounts.holds import settle as settle_accounts
from gateway.observability.logging import bind
from gateway.orders import backoff, metrics
from gateway.orders.crypto import CodeCipher
from gateway.orders.models import (
    AttemptOutcome,
    Failure,
    HoldReason,
    Part,
    PartState,
    StoredOrder,
    WebhookState,
)
from gateway.orders.notify import OrderNotifier
from gateway.orders.ports import ResellerDirectory
from gateway.orders.queue import Delivery, Job, JobKind, JobQueue
from gateway.orders.router import Decision, OfferRouter
from gateway.orders.store import Effects, OrderStore, Versioned, review_member
from gateway.orders.transitions import (
    apply_upstream,
    begin_attempt,
    current_attempt,
    fail_part,
    hold_part,
    recompute,
)
from gateway.orders.webhook_delivery import WebhookJobs
from gateway.orders.webhooks import EVENT_TYPES, WebhookSender
from gateway.settings import OrderSettings

log = logging.getLogger("gateway.orders.worker")

Change = Callable[[StoredOrder, float], Effects | None]
#: A job kind run by the order workers for another feature (``handlers``).
JobHandler = Callable[[Delivery, Job], Awaitable[None]]


class OrderConflict(RuntimeError):
    """An order kept changing under a commit (should not happen; the job is retried)."""


class OutcomeKind(enum.StrEnum):
    """What came of one supplier call for a part (also the ``result`` label of
    ``gateway_orders_jobs_total``)."""

    #: The supplier answered with the upstream order: recorded, polled until final.
    UPSTREAM = "upstream"
    #: Nothing was bought (or a read failed): the same job kind again, later.
    RETRY = "retry"
    #: The supplier refused: the part failed.
    FAIL = "fail"
    #: The outcome cannot be settled safely: held for review.
    HOLD = "hold"


@dataclass(frozen=True, slots=True)
class _Outcome:
    kind: OutcomeKind
    upstream: UpstreamOrder | None = None
    delay: float = 0.0
    failure: Failure | None = None
    reason: HoldReason | None = None  # set for HOLD
    error: str | None = None
    #: Set for a FAIL that is a definitive "nothing bought" (refused, verified absent):
    #: a routed part fails over instead of failing.
    refused: AttemptOutcome | None = None
    #: What the outcome says about the supplier's placements (``SuccessTracker``):
    #: None when nothing (our own throttles: open circuit, no rate slot).
    health: bool | None = None


def _hold(reason: HoldReason, error: str | None = None) -> _Outcome:
    return _Outcome(OutcomeKind.HOLD, reason=reason, error=error)


def _retry(error: str, delay: float = 0.0) -> _Outcome:
    return _Outcome(OutcomeKind.RETRY, delay=delay, error=error)


def _fail(failure: Failure, error: str | None, refused: AttemptOutcome | None = None) -> _Outcome:
    return _Outcome(OutcomeKind.FAIL, failure=failure, error=error, refused=refused)


def _upstream(order: UpstreamOrder) -> _Outcome:
    return _Outcome(OutcomeKind.UPSTREAM, upstream=order)


def _short(exc: BaseException) -> str:
    """An error for the order record and logs: class and our own message, bounded. Never
    the repr of upstream payloads (which could hold codes)."""
    text = exc.message if isinstance(exc, SupplierError) else type(exc).__name__
    return f"{type(exc).__name__}: {text}"[:300]


class OrderProcessor:
    def __init__(
        self,
        *,
        store: OrderStore,
        queue: JobQueue,
        adapters: Mapping[str, SupplierAdapter],
        cipher: CodeCipher,
        settings: OrderSettings,
        notifier: OrderNotifier,
        resellers: ResellerDirectory,
        webhooks: WebhookSender,
        clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
        handlers: Mapping[JobKind, JobHandler] | None = None,
        router: OfferRouter | None = None,
    ) -> None:
        self.handlers = dict(handlers or {})
        #: Chooses routed parts' offers; None: routed parts are held (no catalog here).
        self.router = router
        self.store = store
        self.queue = queue
        self.adapters = adapters
        self.cipher = cipher
        self.settings = settings
        self.notifier = notifier
        self.resellers = resellers
        self.webhooks = webhooks
        self.clock = clock
        self.rng = rng or random.Random()
        self.webhook_jobs = WebhookJobs(
            store=store,
            queue=queue,
            resellers=resellers,
            webhooks=webhooks,
            settings=settings,
            rng=self.rng,
            commit=self.commit,
        )

    # ------------------------------------------------------------- dispatch

    async def handle(self, delivery: Delivery) -> None:
        job = delivery.job
        if job is None:
            await self.queue.ack(delivery.entry_id)
            return
        other = self.handlers.get(job.kind)
        if other is not None:  # another feature's job (account notices): its own rules
            await other(delivery, job)
            return
        if delivery.deliveries > self.settings.job_max_deliveries:
            await self._poison(delivery, job)
            return
        if job.kind is JobKind.PLACE:
            await self._place(delivery, job)
        elif job.kind is JobKind.POLL:
            await self._poll(delivery, job)
        elif job.kind is JobKind.RECONCILE:
            await self._reconcile(delivery, job)
        else:
            await self.webhook_jobs.deliver(delivery, job)

    # ---------------------------------------------------------------- commit

    async def commit(
        self,
        order_id: str,
        delivery: Delivery | None,
        change: Change,
        *,
        touch: bool = True,
        loaded: Versioned | None = None,
    ) -> StoredOrder | None:
        """Apply ``change`` to the stored order with compare-and-set, acknowledging
        ``delivery`` in the same step. ``change`` returns None when there is nothing to do
        (the job is stale): the job is then just acknowledged. ``loaded``: the order as
        read by the caller, tried first (a stale copy only costs a retry)."""
        for _ in range(50):
            if loaded is None:
                loaded = await self.store.load(order_id)
            if loaded is None:
                if delivery is not None:
                    await self.queue.ack(delivery.entry_id)
                return None
            before = loaded.order
            order = before.model_copy(deep=True)
            now = self.clock()
            effects = change(order, now)
            if effects is None:
                if delivery is not None:
                    await self.queue.ack(delivery.entry_id)
                return before
            if touch:
                recompute(order, now)
            became_final = order.status.is_final and not before.status.is_final
            if became_final:
                effects.publish = True
                hook = order.webhook
                if hook is not None and hook.state is WebhookState.PENDING and hook.job is None:
                    job = Job.new(JobKind.WEBHOOK, order.id)
                    hook.job = job.nonce
                    hook.event_type = EVENT_TYPES[order.status.value]
                    effects.now.append(job)
            for old, new in zip(before.parts, order.parts, strict=True):
                member = review_member(order.id, new.n)
                if new.state is PartState.REVIEW and old.state is not PartState.REVIEW:
                    effects.review_add.append(member)
                elif old.state is PartState.REVIEW and new.state is not PartState.REVIEW:
                    effects.review_rem.append(member)
            effects.accounts.extend(settle_accounts(order))
            if delivery is not None:
                effects.ack = delivery.entry_id
            if await self.store.commit(order, loaded.version, before.status, effects):
                observe_accounts(effects.accounts)
                self._committed(before, order)
                return order
            loaded = None
        raise OrderConflict(f"order {order_id} kept changing")

    def _committed(self, before: StoredOrder, after: StoredOrder) -> None:
        for old, new in zip(before.parts, after.parts, strict=True):
            if new.state is old.state:
                continue
            if new.state.is_final:
                metrics.ORDERS_FINAL.labels(new.supplier, new.state.value).inc()
                if new.state is not PartState.FAILED and new.finished_at is not None:
                    metrics.DELIVERY_SECONDS.labels(new.supplier).observe(
                        max(0.0, new.finished_at - after.created_at)
                    )
            elif new.state is PartState.REVIEW:
                metrics.HELD_TOTAL.labels(new.supplier, new.review_reason or "unknown").inc()
                log.warning(
                    "upstream order held for review",
                    extra={
                        "order_id": after.id,
                        "part": new.n,
                        "supplier": new.supplier,
                        "reference": new.reference,
                        "reason": new.review_reason,
                    },
                )
        if after.status.is_final and not before.status.is_final:
            metrics.ORDERS_COMPLETED.labels(after.status.value).inc()
            self.notifier.notify(after.id, after)

    # ------------------------------------------------------------- placement

    async def _live_part(
        self, delivery: Delivery, job: Job, state: PartState
    ) -> tuple[Versioned, Part] | None:
        """The order and the job's part if the job is still live, else ack it (stale)."""
        loaded = await self.store.load(job.order_id)
        part = None
        if loaded is not None:
            try:
                part = loaded.order.part(job.part)
            except KeyError:
                part = None
        if loaded is None or part is None or part.job != job.nonce or part.state is not state:
            await self.queue.ack(delivery.entry_id)
            metrics.JOBS.labels(job.kind.value, "stale").inc()
            return None
        bind(supplier=part.supplier)  # the worker's log context names the order and part
        return loaded, part

    def _guard(self, job: Job, state: PartState) -> Callable[[StoredOrder], Part | None]:
        def live(order: StoredOrder) -> Part | None:
            part = order.part(job.part)
            return part if part.job == job.nonce and part.state is state else None

        return live

    def _adapter(self, part: Part) -> SupplierAdapter | None:
        return self.adapters.get(part.supplier)

    async def _place(self, delivery: Delivery, job: Job) -> None:
        live = await self._live_part(delivery, job, PartState.PENDING)
        if live is None:
            return
        loaded: Versioned | None
        loaded, part = live
        order = loaded.order
        if part.routed and part.current() is None:
            chosen = await self._choose(delivery, job, loaded, part)
            if chosen is None:  # failed, waiting, or the job went stale: committed
                return
            order, part = chosen
            loaded = None
        adapter = self._adapter(part)
        if adapter is None:
            outcome = _hold(HoldReason.SUPPLIER_NOT_CONFIGURED)
        elif (
            part.first_attempt_at is not None
            and self.clock() - part.first_attempt_at > self.settings.placement_timeout_seconds
        ):
            outcome = await self._settle_unplaced(adapter, part)
        else:
            outcome = await self._attempt_placement(adapter, order, part)
        await self._apply_placement(delivery, job, outcome, loaded)

    async def _choose(
        self, delivery: Delivery, job: Job, loaded: Versioned, part: Part
    ) -> tuple[StoredOrder, Part] | None:
        """Choose a routed part's next offer and commit it as an open attempt *before*
        anything is sent (so a replay sends this attempt, never a new choice). Returns
        the committed order and part, or None when nothing is to be sent now (no offer:
        failed or waiting, committed with the job's acknowledgement; or the job is stale)."""
        if self.router is None:
            outcome = _hold(HoldReason.SUPPLIER_NOT_CONFIGURED, "no offer router here")
            await self._apply_placement(delivery, job, outcome, loaded)
            return None
        item = loaded.order.items[part.items[0]]
        refused = {t.supplier for t in part.tries if not t.outcome.is_open}
        decision = self.router.choose(item, refused)
        live = self._guard(job, PartState.PENDING)
        if decision.choice is None:
            await self._no_offer(delivery, job, loaded, decision)
            return None
        choice = decision.choice
        product, variant = choice.offer
        bind(supplier=choice.supplier)
        committed: list[Part] = []

        def change(order: StoredOrder, now: float) -> Effects | None:
            committed.clear()
            part = live(order)
            if part is None or part.current() is not None:
                return None
            begin_attempt(order, part, (product, variant), choice.cost, now)
            committed.append(part)
            return Effects()

        order = await self.commit(job.order_id, None, change, loaded=loaded)
        if order is None:
            return None
        if not committed:
            # Another delivery of this job chose first (or the job is stale): whatever
            # is live now decides, read afresh.
            live_part = await self._live_part(delivery, job, PartState.PENDING)
            if live_part is None or live_part[1].current() is None:
                return None
            return live_part[0].order, live_part[1]
        previous = part.tries[-1] if part.tries else None
        if previous is not None:
            metrics.FAILOVERS.labels(previous.supplier, choice.supplier).inc()
            log.info(
                "routed part failed over",
                extra={
                    "order_id": job.order_id,
                    "part": part.n,
                    "from_supplier": previous.supplier,
                    "to_supplier": choice.supplier,
                    "reference": committed[0].reference,
                },
            )
        return order, order.part(part.n)

    async def _no_offer(
        self, delivery: Delivery, job: Job, loaded: Versioned, decision: Decision
    ) -> None:
        """No eligible offer now: wait when one is only skipped for a while (within the
        placement deadline), else fail with the last refusal (or "no eligible offer")."""
        live = self._guard(job, PartState.PENDING)
        s = self.settings
        wait = s.routing.no_offer_retry_seconds
        summary = decision.summary() or "no offer in the catalog"

        def change(order: StoredOrder, now: float) -> Effects | None:
            part = live(order)
            if part is None:
                return None
            effects = Effects()
            started = part.first_attempt_at
            if decision.waiting and (
                started is None or now - started <= s.placement_timeout_seconds
            ):
                part.attempts += 1
                if started is None:
                    part.first_attempt_at = now
                part.last_error = f"no offer eligible now ({summary})"[:300]
                self._next(order, part, JobKind.PLACE, wait, effects)
                return effects
            failure = part.refusal or Failure(
                code="no_eligible_offer",
                message="no supplier could sell this item at the accepted price; "
                "nothing was bought",
            )
            part.last_error = f"no eligible offer left ({summary})"[:300]
            fail_part(order, part, failure, now)
            return effects

        committed = await self.commit(job.order_id, delivery, change, loaded=loaded)
        if committed is not None and committed.part(job.part).state is PartState.FAILED:
            tries = committed.part(job.part).tries
            if tries:  # refused before, and nowhere left to go
                metrics.FAILOVERS.labels(tries[-1].supplier, "none").inc()
            metrics.JOBS.labels(job.kind.value, OutcomeKind.FAIL).inc()
        else:
            metrics.JOBS.labels(job.kind.value, OutcomeKind.RETRY).inc()

    async def _attempt_placement(
        self, adapter: SupplierAdapter, order: StoredOrder, part: Part
    ) -> _Outcome:
        items = [order.items[i] for i in part.items]
        current = part.current() if part.routed else None
        lines = [
            OrderLine(
                variant_id=item.variant_id,
                quantity=item.quantity,
                face_value=current.face_value if current is not None else item.face_value,
            )
            for item in items
        ]
        outcome = await self._send(adapter, part, lines)
        if self.router is not None and outcome.health is not None:
            self.router.tracker.record(part.supplier, outcome.health)
        return outcome

    async def _send(self, adapter: SupplierAdapter, part: Part, lines: list[OrderLine]) -> _Outcome:
        try:
            async with asyncio.timeout(self.settings.job_timeout_seconds):
                upstream = await adapter.place_order(part.reference, lines)
        except (CircuitOpenError, UpstreamBusyError, RateLimitedError) as exc:
            # Held back (by us or the supplier's rate limit): nothing was sent.
            delay = max(exc.retry_after or 0.0, self._retry_delay(part.attempts))
            return _retry(_short(exc), delay)
        except RetriableError as exc:
            delay = max(getattr(exc, "retry_after", None) or 0.0, self._retry_delay(part.attempts))
            return replace(_retry(_short(exc), delay), health=False)
        except AmbiguousOutcomeError as exc:
            return replace(_hold(HoldReason.OUTCOME_UNKNOWN, _short(exc)), health=False)
        except FatalError as exc:
            failure = Failure(
                code=exc.code, message=f"the supplier refused the order: {exc.message}"[:300]
            )
            return replace(_fail(failure, _short(exc), AttemptOutcome.REFUSED), health=False)
        except TimeoutError:
            return replace(_hold(HoldReason.PLACEMENT_TIMED_OUT), health=False)
        except Exception as exc:  # a bug or an unmapped failure: the outcome is unknown
            log.error(
                "placement failed unexpectedly",
                extra={
                    "reference": part.reference,
                    "supplier": part.supplier,
                    "error": type(exc).__name__,
                    "trace": "".join(traceback.format_tb(exc.__traceback__)),
                },
            )
            return _hold(HoldReason.UNEXPECTED_ERROR, type(exc).__name__)
        return replace(_upstream(upstream), health=True)

    async def _settle_unplaced(self, adapter: SupplierAdapter, part: Part) -> _Outcome:
        """The placement kept failing retriably for too long: stop, and fail the part only
        if the supplier positively has no order under its reference."""
        try:
            found = await adapter.find_order(part.reference)
        except Exception as exc:
            metrics.RECONCILIATIONS.labels(part.supplier, "error").inc()
            return _hold(HoldReason.PLACEMENT_UNSETTLED, _short(exc))
        if found is not None:
            metrics.RECONCILIATIONS.labels(part.supplier, "found").inc()
            return _upstream(found)
        metrics.RECONCILIATIONS.labels(part.supplier, "absent").inc()
        failure = Failure(
            code="supplier_unavailable",
            message="the supplier could not take the order in time; nothing was bought",
        )
        return _fail(failure, part.last_error, AttemptOutcome.ABSENT)

    async def _apply_placement(
        self, delivery: Delivery, job: Job, outcome: _Outcome, loaded: Versioned | None
    ) -> None:
        live = self._guard(job, PartState.PENDING)

        def change(order: StoredOrder, now: float) -> Effects | None:
            part = live(order)
            if part is None:
                return None
            part.attempts += 1
            if part.first_attempt_at is None:
                part.first_attempt_at = now
            return self._record(order, part, outcome, now)

        await self.commit(job.order_id, delivery, change, loaded=loaded)
        metrics.JOBS.labels(job.kind.value, outcome.kind).inc()

    def _record(self, order: StoredOrder, part: Part, outcome: _Outcome, now: float) -> Effects:
        """Write an outcome into the part (and its current attempt) and say which job
        follows."""
        effects = Effects()
        attempt = current_attempt(order, part, now)
        if outcome.kind is OutcomeKind.UPSTREAM:
            assert outcome.upstream is not None
            attempt.outcome, attempt.ended_at, attempt.error = AttemptOutcome.PLACED, now, None
            apply_upstream(order, part, outcome.upstream, self.cipher, now)
            if part.state is PartState.PLACED:
                self._next(order, part, JobKind.POLL, self._poll_delay(part.polls), effects)
        elif outcome.kind is OutcomeKind.RETRY:
            part.last_error = attempt.error = outcome.error
        elif outcome.kind is OutcomeKind.FAIL:
            assert outcome.failure is not None
            part.last_error = attempt.error = outcome.error
            if part.routed and outcome.refused is not None:
                if attempt.was_unknown:
                    attempt.outcome = AttemptOutcome.UNKNOWN
                    reason = HoldReason.REFUSED_AFTER_UNKNOWN
                    self._hold(order, part, reason, outcome.error, now, effects)
                    return effects
                # Nothing was bought at this supplier: the next offer, at once.
                attempt.outcome, attempt.ended_at = outcome.refused, now
                attempt.code = outcome.failure.code
                part.refusal = outcome.failure
                part.first_attempt_at = None  # each supplier gets its own deadline
                self._next(order, part, JobKind.PLACE, 0, effects)
                return effects
            attempt.code = outcome.failure.code
            fail_part(order, part, outcome.failure, now)
        else:
            assert outcome.reason is not None
            if outcome.reason.settled_by_lookup:
                attempt.outcome, attempt.was_unknown = AttemptOutcome.UNKNOWN, True
            attempt.error = outcome.error
            self._hold(order, part, outcome.reason, outcome.error, now, effects)
        if outcome.kind is OutcomeKind.RETRY:
            self._next(order, part, JobKind.PLACE, outcome.delay, effects)
        return effects

    def _hold(
        self,
        order: StoredOrder,
        part: Part,
        reason: HoldReason,
        error: str | None,
        now: float,
        effects: Effects,
    ) -> None:
        """Hold the part; when its outcome is merely unknown, schedule a later look-up by
        reference (safe: it only reads), never a new placement."""
        hold_part(part, reason, now)
        part.last_error = error
        s = self.settings
        if reason.settled_by_lookup and part.reconciles < s.review_reconcile_attempts:
            delay = backoff.exponential(
                s.review_reconcile_seconds, part.reconciles, max_exponent=20
            )
            self._next(order, part, JobKind.RECONCILE, delay, effects)

    @staticmethod
    def _next(
        order: StoredOrder, part: Part, kind: JobKind, delay: float, effects: Effects
    ) -> None:
        job = Job.new(kind, order.id, part.n)
        part.job = job.nonce
        if delay > 0:
            effects.later.append((delay, job))
        else:
            effects.now.append(job)

    def _retry_delay(self, attempts: int) -> float:
        s = self.settings
        ceiling = backoff.exponential(
            s.retry_initial_seconds, attempts, maximum=s.retry_max_seconds
        )
        return backoff.equal_jitter(ceiling, self.rng)

    def _poll_delay(self, polls: int) -> float:
        s = self.settings
        delay = backoff.exponential(s.poll_initial_seconds, polls, maximum=s.poll_max_seconds)
        return backoff.spread(delay, self.rng)

    # ---------------------------------------------------------------- polling

    async def _poll(self, delivery: Delivery, job: Job) -> None:
        live_part = await self._live_part(delivery, job, PartState.PLACED)
        if live_part is None:
            return
        loaded, part = live_part
        adapter = self._adapter(part)
        if adapter is None or part.upstream_id is None:
            outcome = _hold(HoldReason.SUPPLIER_NOT_CONFIGURED)
        else:
            try:
                upstream = await adapter.get_order(part.upstream_id)
            except NotFoundError as exc:
                outcome = _hold(HoldReason.UPSTREAM_ORDER_MISSING, _short(exc))
            except Exception as exc:  # reads are safe to repeat: poll again later
                outcome = _retry(_short(exc))
            else:
                outcome = _upstream(upstream)
        live = self._guard(job, PartState.PLACED)
        overdue_after = self.settings.fulfilment_timeout_seconds

        def change(order: StoredOrder, now: float) -> Effects | None:
            part = live(order)
            if part is None:
                return None
            part.polls += 1
            effects = Effects()
            if outcome.kind is OutcomeKind.HOLD:
                assert outcome.reason is not None
                hold_part(part, outcome.reason, now)
                part.last_error = outcome.error
                return effects
            if outcome.kind is OutcomeKind.UPSTREAM:
                assert outcome.upstream is not None
                apply_upstream(order, part, outcome.upstream, self.cipher, now)
            else:
                part.last_error = outcome.error
            if part.state is PartState.PLACED:
                started = part.placed_at or order.created_at
                if now - started > overdue_after:
                    hold_part(part, HoldReason.FULFILMENT_OVERDUE, now)
                else:
                    self._next(order, part, JobKind.POLL, self._poll_delay(part.polls), effects)
            return effects

        await self.commit(job.order_id, delivery, change, loaded=loaded)
        metrics.JOBS.labels(job.kind.value, outcome.kind).inc()

    # --------------------------------------------------------- reconciliation

    async def _reconcile(self, delivery: Delivery, job: Job) -> None:
        """Look a held part up by its reference (scheduled after an unknown outcome, or
        requested by an operator). Found: it continues as placed. The look-up failed:
        held, looked up again later while automatic attempts remain. Absent: after an
        automatic look-up it is placed again under the same reference (the adapter
        contract's rule: only a positively confirmed absence allows a resend, and the
        reference still guards it upstream); after an operator's look-up it stays held
        for the operator to decide (``retry`` or ``fail``)."""
        live_part = await self._live_part(delivery, job, PartState.REVIEW)
        if live_part is None:
            return
        loaded, part = live_part
        adapter = self._adapter(part)
        found: UpstreamOrder | None = None
        reason, error = HoldReason.ABSENT_UPSTREAM, None
        if adapter is None:
            reason = HoldReason.SUPPLIER_NOT_CONFIGURED
        else:
            try:
                found = await adapter.find_order(part.reference)
            except Exception as exc:
                reason, error = HoldReason.RECONCILE_FAILED, _short(exc)
                metrics.RECONCILIATIONS.labels(part.supplier, "error").inc()
            else:
                result = "found" if found is not None else "absent"
                metrics.RECONCILIATIONS.labels(part.supplier, result).inc()
        live = self._guard(job, PartState.REVIEW)

        def change(order: StoredOrder, now: float) -> Effects | None:
            part = live(order)
            if part is None:
                return None
            part.reconciles += 1
            operator = part.review_reason is HoldReason.RECONCILING
            if found is None:
                effects = Effects()
                if reason is HoldReason.ABSENT_UPSTREAM and not operator:
                    current = part.current()
                    if current is not None:  # the same attempt, sent again
                        current.outcome = AttemptOutcome.CHOSEN
                    part.state = PartState.PENDING
                    part.review_reason = None
                    part.last_error = "absent upstream after an unknown outcome: sent again"
                    self._next(order, part, JobKind.PLACE, 0, effects)
                    return effects
                self._hold(order, part, reason, error, now, effects)
                return effects
            return self._record(order, part, _upstream(found), now)

        await self.commit(job.order_id, delivery, change, loaded=loaded)
        metrics.JOBS.labels(job.kind.value, "found" if found else "absent").inc()

    # ----------------------------------------------------------------- poison

    async def _poison(self, delivery: Delivery, job: Job) -> None:
        """A job delivered too many times (every worker that took it died or failed):
        stop retrying it and hand the part to an operator."""
        log.error(
            "order job failed repeatedly; holding for review",
            extra={"order_id": job.order_id, "part": job.part, "kind": job.kind.value},
        )

        def change(order: StoredOrder, now: float) -> Effects | None:
            if job.kind is JobKind.WEBHOOK:
                hook = order.webhook
                if hook is None or hook.job != job.nonce:
                    return None
                hook.state = WebhookState.FAILED
                hook.last_error = "delivery job failed repeatedly"
                hook.job = None
                return Effects()
            try:
                part = order.part(job.part)
            except KeyError:
                return None
            if part.job != job.nonce or part.state.is_final:
                return None
            hold_part(part, HoldReason.JOB_FAILED_REPEATEDLY, now)
            return Effects()

        await self.commit(job.order_id, delivery, change, touch=job.kind is not JobKind.WEBHOOK)
        metrics.JOBS.labels(job.kind.value, "poisoned").inc()
