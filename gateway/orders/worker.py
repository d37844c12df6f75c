"""The worker loop: reads order jobs from the stream and runs them, a few at a time.

One worker per process (inside the gateway by default, or ``gateway worker``), with
``worker_concurrency`` jobs in flight. Alongside the reader run:

* the promoter, moving due delayed jobs into the stream;
* the reclaimer, taking over entries other workers stopped renewing (they died);
* the lease renewer, resetting the idle time of the entries this worker is running, so a
  slow but alive job (a placement waiting on a rate-limited supplier) is not taken over;
* a stats loop for the backlog and review gauges.

Stopping (SIGTERM, app shutdown) stops reading, lets running jobs finish for
``shutdown_grace_seconds``, cancels the rest and marks their entries idle so that another
worker takes them over on its next sweep. Nothing is acknowledged that was not done.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket

from gateway.observability.logging import log_context
from gateway.observability.shutdown import cancel_and_wait
from gateway.orders import metrics
from gateway.orders.processing import OrderProcessor
from gateway.orders.queue import Delivery, JobQueue
from gateway.orders.store import OrderStore
from gateway.settings import OrderSettings

log = logging.getLogger("gateway.orders.worker")

_BLOCK_MS = 1000
_PRUNE_EVERY = 600.0
_STATS_EVERY = 5.0


def consumer_name() -> str:
    return f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"


class OrderWorker:
    def __init__(
        self,
        *,
        queue: JobQueue,
        store: OrderStore,
        processor: OrderProcessor,
        settings: OrderSettings,
        name: str | None = None,
    ) -> None:
        self.queue = queue
        self.store = store
        self.processor = processor
        self.settings = settings
        self.name = name or consumer_name()
        self._running: dict[str, asyncio.Task[None]] = {}
        self._loops: list[asyncio.Task[None]] = []
        self._slot_free = asyncio.Event()
        self._stopping = False

    @property
    def lease_ms(self) -> int:
        return int(self.settings.job_lease_seconds * 1000)

    async def start(self) -> None:
        if self._loops:
            return
        self._stopping = False
        await self.queue.ensure_group()
        for name, loop in (
            ("read", self._read_loop),
            ("promote", self._promote_loop),
            ("reclaim", self._reclaim_loop),
            ("renew", self._renew_loop),
            ("stats", self._stats_loop),
        ):
            self._loops.append(asyncio.create_task(loop(), name=f"orders:{name}"))
        log.info("order worker started", extra={"worker": self.name})

    async def stop(self) -> None:
        """Stop reading, give running jobs the grace period, leave the rest for others.

        Every wait here is bounded: redis-py can swallow the cancellation of a task that
        is mid-command (seen with socket_timeout set), so a loop may outlive ``cancel()``
        for a moment; the loops also check ``_stopping`` each turn, and a loop that still
        has not ended after a short wait is abandoned rather than waited on forever."""
        self._stopping = True
        loops, self._loops = self._loops, []
        await cancel_and_wait(loops, within=2.0, what=f"order worker {self.name}'s loops")
        running = list(self._running.values())
        if running:
            await asyncio.wait(running, timeout=self.settings.shutdown_grace_seconds)
        unfinished = [entry for entry, task in self._running.items() if not task.done()]
        for entry in unfinished:
            self._running[entry].cancel()
        cancelled = [task for task in self._running.values() if not task.done()]
        if cancelled:
            await asyncio.wait(cancelled, timeout=2.0)
        if unfinished:
            with contextlib.suppress(Exception):
                await self.queue.release(self.name, unfinished, self.lease_ms + 1)
            log.info(
                "order worker stopped with unfinished jobs left for other workers",
                extra={"worker": self.name, "jobs": len(unfinished)},
            )

    # ------------------------------------------------------------------ loops

    def _free(self) -> int:
        return self.settings.worker_concurrency - len(self._running)

    def _spawn(self, delivery: Delivery) -> None:
        if delivery.entry_id in self._running:
            return
        task = asyncio.create_task(self._run(delivery), name=f"orders:job:{delivery.entry_id}")
        self._running[delivery.entry_id] = task

    async def _run(self, delivery: Delivery) -> None:
        job = delivery.job
        kind = job.kind.value if job else "unknown"
        # Every line written while the job runs (the processor's, the adapter's upstream
        # calls) carries the order, its part and the job kind; the processor adds the
        # supplier once it has read the part.
        context = (
            log_context(order_id=job.order_id, part=job.part, job=kind)
            if job is not None
            else log_context(job=kind)
        )
        try:
            with context:
                try:
                    await self.processor.handle(delivery)
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # left pending: reclaimed after the lease, retried
                    metrics.JOBS.labels(kind, "error").inc()
                    log.error(
                        "order job failed; it will be retried",
                        extra={
                            "entry": delivery.entry_id,
                            "order_id": job.order_id if job else None,
                            "kind": kind,
                            "error": type(exc).__name__,
                        },
                    )
        finally:
            self._running.pop(delivery.entry_id, None)
            self._slot_free.set()

    async def _read_loop(self) -> None:
        delay = 0.1
        while not self._stopping:
            free = self._free()
            if free <= 0:
                self._slot_free.clear()
                await self._slot_free.wait()
                continue
            try:
                deliveries = await self.queue.read(self.name, free, _BLOCK_MS)
                delay = 0.1
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("reading order jobs failed: %s", type(exc).__name__)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
                continue
            for delivery in deliveries:
                self._spawn(delivery)

    async def _promote_loop(self) -> None:
        poll = self.settings.schedule_poll_seconds
        while not self._stopping:
            try:
                wait = await self.queue.promote()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("moving delayed order jobs failed: %s", type(exc).__name__)
                wait = poll
            pause = poll if wait is None else min(poll, wait)
            await asyncio.sleep(max(0.005, pause))

    async def _reclaim_loop(self) -> None:
        interval = max(0.1, self.settings.job_lease_seconds / 2)
        loop = asyncio.get_running_loop()
        last_prune = loop.time()
        while not self._stopping:
            await asyncio.sleep(interval)
            try:
                free = self._free()
                if free > 0:
                    for delivery in await self.queue.reclaim(self.name, self.lease_ms, free):
                        metrics.JOBS_RECLAIMED.inc()
                        self._spawn(delivery)
                if loop.time() - last_prune > _PRUNE_EVERY:
                    last_prune = loop.time()
                    await self.queue.prune_consumers(idle_ms=int(_PRUNE_EVERY * 1000))
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("reclaiming order jobs failed: %s", type(exc).__name__)

    async def _renew_loop(self) -> None:
        interval = max(0.1, self.settings.job_lease_seconds / 3)
        while not self._stopping:
            await asyncio.sleep(interval)
            entries = list(self._running)
            if not entries:
                continue
            try:
                await self.queue.renew(self.name, entries)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("renewing order job leases failed: %s", type(exc).__name__)

    async def _stats_loop(self) -> None:
        while not self._stopping:
            try:
                metrics.HELD_FOR_REVIEW.set(await self.store.review_count())
                backlog = await self.queue.backlog()
                metrics.BACKLOG.labels("stream").set(backlog["stream"])
                metrics.BACKLOG.labels("scheduled").set(backlog["scheduled"])
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.debug("order stats failed: %s", type(exc).__name__)
            await asyncio.sleep(_STATS_EVERY)
