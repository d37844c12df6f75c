"""Waking requests that wait for an order (``Prefer: wait``) the moment it is final.

Two paths, so that a waiter never polls: a worker in this process sets the waiter's
event directly (no round trip: a one-item instant order adds only the time of the
upstream call); a worker elsewhere commits the final state with a ``PUBLISH`` in the
same script, and every instance's one subscriber wakes its local waiters. A lost
message (subscriber reconnecting) costs a waiter at most its timeout, after which it
reads the order anyway: the notification is a hint, the stored order is the truth.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from gateway.observability.shutdown import cancel_and_wait

log = logging.getLogger("gateway.orders.notify")


@dataclass(eq=False)
class Waiter:
    """One waiting request: ``event`` is set on news; ``order`` holds the final order when
    a worker in this process announced it (no need to read it back from Redis)."""

    event: asyncio.Event = field(default_factory=asyncio.Event)
    order: Any = None


class OrderNotifier:
    def __init__(self, redis: Any, channel: str) -> None:
        self._redis = redis
        self._channel = channel
        self._waiters: dict[str, set[Waiter]] = defaultdict(set)
        self._task: asyncio.Task[None] | None = None
        self._subscribed = asyncio.Event()

    @contextlib.contextmanager
    def waiter(self, order_id: str) -> Iterator[Waiter]:
        """Register interest *before* reading the order, so a change between the read and
        the wait still wakes it."""
        waiter = Waiter()
        self._waiters[order_id].add(waiter)
        try:
            yield waiter
        finally:
            waiters = self._waiters.get(order_id)
            if waiters is not None:
                waiters.discard(waiter)
                if not waiters:
                    del self._waiters[order_id]

    def notify(self, order_id: str, order: Any = None) -> None:
        """Wake the waiters of ``order_id``; ``order``: its committed final state, when
        known here."""
        for waiter in self._waiters.get(order_id, ()):
            if order is not None:
                waiter.order = order
            waiter.event.set()

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._listen(), name="orders:notify")
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(2):
                    await self._subscribed.wait()

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            await cancel_and_wait([task], within=2.0, what="order notification listener")

    async def _listen(self) -> None:
        delay = 0.1
        client = _pubsub_client(self._redis)
        while True:
            pubsub = client.pubsub()
            try:
                await pubsub.subscribe(self._channel)
                self._subscribed.set()
                delay = 0.1
                while True:
                    message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=5)
                    if message is not None and message.get("type") == "message":
                        data = message["data"]
                        self.notify(data.decode() if isinstance(data, bytes) else str(data))
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # Redis restart, network: resubscribe with backoff
                log.warning("order notifications interrupted: %s", type(exc).__name__)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()


def _pubsub_client(redis: Any) -> Any:
    """A client that can subscribe. Redis Cluster broadcasts ``PUBLISH`` to every node, so
    with a cluster client any one node's connection hears every announcement."""
    if hasattr(redis, "pubsub"):
        return redis
    import redis.asyncio as aioredis

    node = redis.get_random_node()
    return aioredis.Redis(host=node.host, port=node.port)
