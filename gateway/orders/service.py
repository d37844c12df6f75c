"""The orders service: taking an order, answering for it, and running its workers.

Creating an order, in order:

1. claim the reseller's ``Idempotency-Key`` (``gateway.orders.idempotency``);
2. validate every item against the live catalog and price it for the reseller
   (``gateway.orders.validation``): a refusal here buys nothing and frees the key;
3. split it into upstream parts with deterministic references (``routing``);
4. write the order, its indexes, the key's link to it and one placement job per part in
   one script: from here on the order cannot be lost, whatever crashes;
5. with ``Prefer: wait=N``, wait (without polling) until the workers make it final or N
   seconds pass; answer 201 when final, 202 otherwise. A retry with the same key after
   that answer replays the order as it is at the time of the retry (``_replay``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from adapters.base import SupplierAdapter
from gateway.accounts.holds import OrderAccounts
from gateway.errors import Conflict, Internal, NotFound, Unprocessable
from gateway.orders import metrics
from gateway.orders.crypto import CodeCipher
from gateway.orders.idempotency import Claim, IdempotencyStore, fingerprint
from gateway.orders.ids import event_id, is_order_id, new_order_id
from gateway.orders.models import OrderStatus, StoredOrder, WebhookDelivery
from gateway.orders.notify import OrderNotifier
from gateway.orders.ports import CatalogLookup, ResellerDirectory, ResellerLike
from gateway.orders.processing import OrderProcessor
from gateway.orders.queue import Job, JobKind, JobQueue
from gateway.orders.router import OfferRouter
from gateway.orders.routing import plan_parts
from gateway.orders.schemas import CreateOrderRequest
from gateway.orders.scripts import OrderScripts
from gateway.orders.store import OrderStore
from gateway.orders.validation import validate_order
from gateway.orders.views import render_order
from gateway.orders.webhooks import WebhookSender
from gateway.orders.worker import OrderWorker
from gateway.redis_keys import RedisKeys
from gateway.settings import OrderSettings

log = logging.getLogger("gateway.orders")


@dataclass(frozen=True, slots=True)
class CreateAnswer:
    status: int
    body: bytes
    order_id: str | None
    replayed: bool


def _not_found(order_id: str) -> NotFound:
    return NotFound("order_not_found", f"no order {order_id!r}")


class OrdersService:
    def __init__(
        self,
        *,
        redis: Any,
        keys: RedisKeys,
        settings: OrderSettings,
        adapters: Mapping[str, SupplierAdapter],
        catalog: CatalogLookup,
        resellers: ResellerDirectory,
        cipher: CodeCipher,
        accounts: OrderAccounts | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.accounts = accounts
        self.adapters = adapters
        self.catalog = catalog
        self.cipher = cipher
        self.clock = clock
        scripts = OrderScripts.register(redis)
        self.store = OrderStore(redis, keys, scripts)
        self.queue = JobQueue(redis, keys, scripts)
        self.idempotency = IdempotencyStore(redis, keys, scripts, cipher)
        self.notifier = OrderNotifier(redis, keys.order_events())
        webhooks = WebhookSender(
            timeout=settings.webhook_timeout_seconds,
            allow_private=settings.webhook_allow_private_targets,
        )
        self.processor = OrderProcessor(
            store=self.store,
            queue=self.queue,
            adapters=adapters,
            cipher=cipher,
            settings=settings,
            notifier=self.notifier,
            resellers=resellers,
            webhooks=webhooks,
            clock=clock,
            handlers=accounts.job_handlers(resellers, webhooks, settings) if accounts else None,
            # The catalog is read at each choice (a test or a new snapshot may swap it).
            router=OfferRouter(
                catalog=lambda: self.catalog, adapters=adapters, settings=settings.routing
            ),
        )
        self.worker: OrderWorker | None = None
        self._started = False

    # -------------------------------------------------------------- lifecycle

    async def start(self, *, workers: bool | None = None, notifications: bool = True) -> None:
        """Subscribe to order notifications (for ``Prefer: wait``) and, when ``workers``
        (default: ``inline_workers``), run a worker in this process. Idempotent."""
        if self._started:
            return
        self._started = True
        await self.queue.ensure_group()
        if notifications:
            await self.notifier.start()
        if self.settings.inline_workers if workers is None else workers:
            self.worker = OrderWorker(
                queue=self.queue,
                store=self.store,
                processor=self.processor,
                settings=self.settings,
            )
            await self.worker.start()

    async def stop(self) -> None:
        if self.worker is not None:
            await self.worker.stop()
            self.worker = None
        await self.notifier.stop()
        await self.processor.webhooks.aclose()
        self._started = False

    aclose = stop

    # ----------------------------------------------------------------- create

    async def create(
        self,
        reseller: ResellerLike,
        idempotency_key: str,
        request: CreateOrderRequest,
        wait: float,
    ) -> CreateAnswer:
        lease = self.settings.max_wait_seconds + self.settings.idempotency_lease_seconds
        claim = await self.idempotency.begin(
            reseller.id, idempotency_key, fingerprint(request), lease
        )
        if claim.kind == "mismatch":
            metrics.IDEMPOTENCY_CONFLICTS.labels("mismatch").inc()
            raise Unprocessable(
                "idempotency_key_reuse",
                "this Idempotency-Key was used with a different request body; use a new key "
                "for a new order",
            )
        if claim.kind == "busy":
            metrics.IDEMPOTENCY_CONFLICTS.labels("in_progress").inc()
            raise Conflict(
                "idempotency_request_in_progress",
                "a request with this Idempotency-Key is still being processed; retry shortly",
                retry_after=1,
            )
        if claim.kind == "done":
            metrics.IDEMPOTENT_REPLAYS.inc()
            return await self._replay(claim, wait)
        if claim.kind == "takeover":
            assert claim.order_id is not None
            loaded = await self.store.load(claim.order_id)
            if loaded is None:  # cannot happen: the order is written before the link
                raise Internal("order_missing", "the order of this key is missing")
            metrics.IDEMPOTENT_REPLAYS.inc()
            return await self._answer(claim, loaded.order, wait, replayed=True)
        order = await self._create(claim, reseller, request)
        return await self._answer(claim, order, wait, replayed=False)

    async def _create(
        self, claim: Claim, reseller: ResellerLike, request: CreateOrderRequest
    ) -> StoredOrder:
        try:
            order, jobs = self._build(reseller, request)
            holds = await self.accounts.plan(order) if self.accounts else None
            result = await self.store.create(
                order,
                idempotency_key=claim.key,
                token=claim.token,
                idempotency_ttl=self.settings.idempotency_ttl_seconds,
                jobs=jobs,
                holds=holds,
            )
            OrderAccounts.check(result, order)  # an account refused: 402, nothing written
        except BaseException:
            # Nothing was created: give the key back so that the same request may be sent
            # again (after fixing what was refused).
            with contextlib.suppress(Exception):
                await asyncio.shield(self.idempotency.release(claim))
            raise
        if result != "ok":
            # "lost": our lease ran out and another request took the key over.
            raise Conflict(
                "idempotency_request_in_progress",
                "another request with this Idempotency-Key took over; retry shortly",
                retry_after=1,
            )
        metrics.ORDERS_CREATED.inc()
        log.info(
            "order created",
            extra={
                "order_id": order.id,
                "reseller_id": order.reseller_id,
                "items": len(order.items),
                "parts": len(order.parts),
            },
        )
        return order

    def _build(
        self, reseller: ResellerLike, request: CreateOrderRequest
    ) -> tuple[StoredOrder, list[Job]]:
        items = validate_order(request, self.catalog, reseller, self.settings, self.adapters)
        now = self.clock()
        order_id = new_order_id(int(now * 1000))
        parts = plan_parts(
            order_id,
            items,
            lambda supplier: self.adapters[supplier].max_lines_per_order,
        )
        jobs = []
        for part in parts:
            job = Job.new(JobKind.PLACE, order_id, part.n)
            part.job = job.nonce
            jobs.append(job)
        order = StoredOrder(
            id=order_id,
            reseller_id=reseller.id,
            reference=request.reference,
            status=OrderStatus.PENDING,
            created_at=now,
            updated_at=now,
            items=items,
            parts=parts,
            webhook=WebhookDelivery(event_id=event_id(order_id)) if reseller.webhook_url else None,
        )
        return order, jobs

    async def _answer(
        self, claim: Claim, order: StoredOrder, wait: float, *, replayed: bool
    ) -> CreateAnswer:
        if wait > 0 and not order.status.is_final:
            try:
                order = await self.wait_final(order.id, wait) or order
            except Exception as exc:  # the order exists: answer with what we know
                log.warning("waiting for order failed: %s", type(exc).__name__)
        status = 201 if order.status.is_final else 202
        body = self.render(order, codes=True)
        try:
            await asyncio.shield(self.idempotency.finish(claim, status, body))
        except Exception as exc:  # a retry after the lease rebuilds the answer
            log.warning("storing the idempotent answer failed: %s", type(exc).__name__)
        return CreateAnswer(status, body, order.id, replayed=replayed)

    async def _replay(self, claim: Claim, wait: float) -> CreateAnswer:
        """A finished request's order as it is now, not as it was answered: a reseller
        retrying after a lost answer learns in that one call whether it completed (201,
        codes included) or is still running (202). The stored answer is the fallback
        when the order can no longer be read (it outlived the order's record)."""
        assert claim.status is not None and claim.body is not None
        loaded = await self.store.load(claim.order_id) if claim.order_id else None
        if loaded is None:
            return CreateAnswer(claim.status, claim.body, claim.order_id, replayed=True)
        order = loaded.order
        if wait > 0 and not order.status.is_final:
            order = await self.wait_final(order.id, wait) or order
        status = 201 if order.status.is_final else 202
        return CreateAnswer(status, self.render(order, codes=True), order.id, replayed=True)

    def render(self, order: StoredOrder, *, codes: bool) -> bytes:
        return json.dumps(
            {"data": render_order(order, self.cipher, codes=codes)}, separators=(",", ":")
        ).encode()

    # ------------------------------------------------------------------- read

    async def get(self, reseller_id: str, order_id: str, wait: float = 0.0) -> StoredOrder:
        """The reseller's order (another reseller's is "not found": its existence is not
        revealed), after waiting up to ``wait`` seconds for a final state."""
        if not is_order_id(order_id):
            raise _not_found(order_id)
        loaded = await self.store.load(order_id)
        if loaded is None or loaded.order.reseller_id != reseller_id:
            raise _not_found(order_id)
        order = loaded.order
        if wait > 0 and not order.status.is_final:
            order = await self.wait_final(order_id, wait) or order
        return order

    async def wait_final(self, order_id: str, seconds: float) -> StoredOrder | None:
        """The order once final, or as it is after ``seconds``."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        with self.notifier.waiter(order_id) as waiter:
            event = waiter.event
            while True:
                event.clear()  # before reading: a change during the read still wakes us
                if waiter.order is not None:  # committed final by a worker in this process
                    return waiter.order  # type: ignore[no-any-return]
                loaded = await self.store.load(order_id)
                if loaded is None:
                    return None
                remaining = deadline - loop.time()
                if loaded.order.status.is_final or remaining <= 0:
                    return loaded.order
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(remaining):
                        await event.wait()

    async def list(
        self, reseller_id: str, status: OrderStatus | None, page: int, page_size: int
    ) -> tuple[int, list[StoredOrder]]:
        return await self.store.list_for_reseller(
            reseller_id, status, (page - 1) * page_size, page_size
        )
