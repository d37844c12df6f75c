"""The webhook job: send an order's final event to its reseller, retry until it lands.

The processor's dispatcher hands every ``JobKind.WEBHOOK`` job here. The job follows the
same shape as the part jobs (``gateway.orders.processing``): check the job is still the
order's live webhook job, do the I/O, then commit the attempt with compare-and-set
together with acknowledging the job and scheduling the next attempt. A re-delivered or
superseded job is only acknowledged.

An attempt that fails is tried again after an exponential delay with equal jitter
(``webhook_backoff_seconds`` doubling up to ``webhook_backoff_max_seconds``), while the
next attempt would still fall within ``webhook_max_seconds`` of the first; after that,
or when the reseller has no webhook URL any more, the delivery is ``failed``. Signing
and sending one attempt is ``gateway.orders.webhooks.WebhookSender``'s job.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Protocol

from gateway.orders import backoff, metrics
from gateway.orders.models import StoredOrder, WebhookState
from gateway.orders.ports import ResellerDirectory
from gateway.orders.queue import Delivery, Job, JobKind, JobQueue
from gateway.orders.store import Effects, OrderStore, Versioned
from gateway.orders.views import iso, render_order
from gateway.orders.webhooks import EVENT_TYPES, WebhookSender, event_body
from gateway.settings import OrderSettings

Change = Callable[[StoredOrder, float], Effects | None]


class Commit(Protocol):
    """``OrderProcessor.commit``: apply a change with compare-and-set, acknowledging the
    delivery in the same step."""

    async def __call__(
        self,
        order_id: str,
        delivery: Delivery | None,
        change: Change,
        *,
        touch: bool = True,
        loaded: Versioned | None = None,
    ) -> StoredOrder | None: ...


class WebhookJobs:
    """Runs webhook jobs; built by the processor, which passes its own ``commit``."""

    def __init__(
        self,
        *,
        store: OrderStore,
        queue: JobQueue,
        resellers: ResellerDirectory,
        webhooks: WebhookSender,
        settings: OrderSettings,
        rng: random.Random,
        commit: Commit,
    ) -> None:
        self.store = store
        self.queue = queue
        self.resellers = resellers
        self.webhooks = webhooks
        self.settings = settings
        self.rng = rng
        self.commit = commit

    def retry_delay(self, attempts: int) -> float:
        """The wait after the ``attempts``-th failed attempt."""
        s = self.settings
        ceiling = backoff.exponential(
            s.webhook_backoff_seconds, attempts - 1, maximum=s.webhook_backoff_max_seconds
        )
        return backoff.equal_jitter(ceiling, self.rng)

    async def deliver(self, delivery: Delivery, job: Job) -> None:
        loaded = await self.store.load(job.order_id)
        hook = loaded.order.webhook if loaded is not None else None
        if (
            loaded is None
            or hook is None
            or hook.job != job.nonce
            or hook.state is not WebhookState.PENDING
        ):
            await self.queue.ack(delivery.entry_id)
            metrics.JOBS.labels(job.kind.value, "stale").inc()
            return
        order = loaded.order
        target = await self.resellers.webhook_target(order.reseller_id)
        status: int | None = None
        error: str | None = "the reseller has no webhook URL any more"
        if target is not None:
            body = event_body(
                hook.event_id,
                hook.event_type or EVENT_TYPES[order.status.value],
                iso(order.final_at),
                render_order(order, None, codes=False, webhook=False),
            )
            status, error = await self.webhooks.send(target.url, target.secret, hook.event_id, body)
        s = self.settings
        outcome = "delivered" if error is None else "retry"

        def change(order: StoredOrder, now: float) -> Effects | None:
            nonlocal outcome
            hook = order.webhook
            if hook is None or hook.job != job.nonce or hook.state is not WebhookState.PENDING:
                return None
            effects = Effects()
            hook.attempts += 1
            hook.first_attempt_at = hook.first_attempt_at or now
            hook.last_attempt_at = now
            hook.last_status = status
            hook.last_error = error
            hook.next_attempt_at = None
            if error is None:
                hook.state = WebhookState.DELIVERED
                hook.delivered_at = now
                hook.job = None
                return effects
            delay = self.retry_delay(hook.attempts)
            if target is None or now + delay - hook.first_attempt_at > s.webhook_max_seconds:
                hook.state = WebhookState.FAILED
                hook.job = None
                outcome = "failed"
                return effects
            retry = Job.new(JobKind.WEBHOOK, order.id)
            hook.job = retry.nonce
            hook.next_attempt_at = now + delay
            effects.later.append((delay, retry))
            return effects

        await self.commit(job.order_id, delivery, change, touch=False)
        metrics.WEBHOOK_DELIVERIES.labels(outcome).inc()
        metrics.JOBS.labels(job.kind.value, outcome).inc()
