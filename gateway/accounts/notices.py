"""``account.low_balance``: a signed webhook when an account's available funds fall below
the reseller's threshold, once per crossing.

The crossing is detected by the script that moves the money (a hold, a debit, a lower
limit: ``lib.lua``'s ``acct_low``), which marks the account low, records the event and
enqueues its delivery job in the same step; the mark is cleared when available is back
at or above the threshold (a top-up, a release), re-arming the notice. So one crossing
is one event, whatever the number of orders, instances or retries.

Delivery reuses the orders' job stream and workers, and their signed sender
(``gateway.orders.webhooks``): the same headers, signature and retry policy
(``orders.webhook_*`` settings) as order events; the event id is stable across attempts::

    {"id": "evt_low_...", "type": "account.low_balance", "created_at": "...",
     "data": {"account": {"currency": "EUR", "available": {...}, "threshold": {...},
                          "balance": {...}, "held": {...}, "credit_limit": {...}}}}
"""

from __future__ import annotations

import json
import logging
import random
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from gateway.accounts import metrics
from gateway.accounts.scripts import AccountScripts
from gateway.orders import backoff
from gateway.orders.ids import job_nonce
from gateway.orders.ports import ResellerDirectory
from gateway.orders.queue import GROUP, Delivery, Job, JobKind
from gateway.orders.webhooks import WebhookSender
from gateway.redis_keys import RedisKeys
from gateway.settings import OrderSettings

log = logging.getLogger("gateway.accounts")

EVENT_TYPE = "account.low_balance"


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def notice_body(event_id: str, record: str) -> bytes:
    """The event as sent: built from the record the script wrote at the crossing."""
    currency, available, threshold, balance, held, limit, created = record.split("|")

    def money(amount: str) -> dict[str, Any]:
        return {"amount": int(amount), "currency": currency}

    when = datetime.fromtimestamp(int(created), UTC).isoformat().replace("+00:00", "Z")
    account = {
        "currency": currency,
        "available": money(available),
        "threshold": money(threshold),
        "balance": money(balance),
        "held": money(held),
        "credit_limit": money(limit),
    }
    return json.dumps(
        {"id": event_id, "type": EVENT_TYPE, "created_at": when, "data": {"account": account}},
        separators=(",", ":"),
        sort_keys=True,
    ).encode()


class LowBalanceNotices:
    def __init__(
        self,
        redis: Any,
        keys: RedisKeys,
        resellers: ResellerDirectory,
        webhooks: WebhookSender,
        settings: OrderSettings,
        *,
        clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
    ) -> None:
        self.redis = redis
        self.keys = keys
        self.resellers = resellers
        self.webhooks = webhooks
        self.settings = settings
        self.clock = clock
        self.rng = rng or random.Random()
        self._scripts = AccountScripts.register(redis)

    async def handle(self, delivery: Delivery, job: Job) -> None:
        """Send one attempt of the event ``job`` names; record it with its job's ack."""
        reseller_id, currency, event_id = job.order_id.split("/", 2)
        events = self.keys.account_events(reseller_id, currency)
        record, nonce, attempts = await self.redis.hmget(
            events, [event_id, f"{event_id}:job", f"{event_id}:attempts"]
        )
        if record is None or nonce is None or _text(nonce) != job.nonce:
            await self._record(events, event_id, job, delivery, None, 0.0)
            return
        record_text = _text(record)
        created = int(record_text.rsplit("|", 1)[1])
        target = await self.resellers.webhook_target(reseller_id)
        error: str | None = "the reseller has no webhook URL"
        if target is not None and delivery.deliveries <= self.settings.job_max_deliveries:
            body = notice_body(event_id, record_text)
            _, error = await self.webhooks.send(target.url, target.secret, event_id, body)
        if error is None:
            metrics.LOW_BALANCE_NOTICES.labels("delivered").inc()
            await self._record(events, event_id, job, delivery, None, 0.0)
            return
        s = self.settings
        tried = int(attempts or 0) + 1
        ceiling = backoff.exponential(
            s.webhook_backoff_seconds, tried - 1, maximum=s.webhook_backoff_max_seconds
        )
        delay = backoff.equal_jitter(ceiling, self.rng)
        if target is None or self.clock() + delay - created > s.webhook_max_seconds:
            metrics.LOW_BALANCE_NOTICES.labels("failed").inc()
            log.warning(
                "low-balance notice given up",
                extra={"reseller_id": reseller_id, "currency": currency, "error": error},
            )
            await self._record(events, event_id, job, delivery, None, 0.0)
            return
        metrics.LOW_BALANCE_NOTICES.labels("retry").inc()
        retry = Job(JobKind.ACCOUNT_NOTICE, job.order_id, 0, job_nonce())
        await self._record(events, event_id, job, delivery, retry, delay)

    async def _record(
        self,
        events: str,
        event_id: str,
        job: Job,
        delivery: Delivery,
        retry: Job | None,
        delay: float,
    ) -> None:
        await self._scripts.notice(
            keys=[events, self.keys.order_jobs(), self.keys.order_schedule()],
            args=[
                event_id,
                job.nonce,
                delivery.entry_id,
                GROUP,
                retry.encode() if retry else "",
                retry.nonce if retry else "",
                int(delay * 1000),
            ],
        )
