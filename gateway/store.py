"""Connecting to the store: real Redis when ``redis_url`` is set, else an embedded one.

The embedded store (``fakeredis``, with Lua) exists so that the demo runs on a machine
with nothing installed; it lives in the process and forgets everything on exit. When a
``redis_url`` is configured the gateway never falls back to it: an unreachable Redis is
a start-up error, because silently serving from memory would lose orders.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit, urlunsplit

import redis.asyncio as aioredis
from redis import exceptions as redis_errors
from redis.asyncio.cluster import RedisCluster

from gateway.errors import Unavailable
from gateway.settings import Settings


class StoreUnavailable(RuntimeError):
    pass


UNREACHABLE: tuple[type[Exception], ...] = (
    redis_errors.ConnectionError,  # down, refused, reset, loading its data, pool exhausted
    redis_errors.TimeoutError,
    redis_errors.ClusterDownError,  # a Redis Cluster without a majority or a master
    redis_errors.TryAgainError,  # a slot being migrated
    redis_errors.SlotNotCoveredError,
    redis_errors.ReadOnlyError,  # a replica answering during a failover
    redis_errors.OutOfMemoryError,  # full, and (noeviction) refusing writes
)
"""Errors that say Redis cannot serve *now*, not that a command was wrong."""

RETRY_AFTER_SECONDS = 1.0


def unavailable(exc: BaseException) -> Unavailable | None:
    """The domain error for a request that met an unreachable store (``None``: ``exc``
    is not one of those). Every request path answers it the same way, 503 with
    ``Retry-After``, from one place (the front door), instead of each call site guarding
    its own Redis calls and the unguarded ones answering 500."""
    if not isinstance(exc, UNREACHABLE):
        return None
    return Unavailable(
        "service_unavailable",
        "the gateway's store cannot be reached right now; retry shortly",
        retry_after=RETRY_AFTER_SECONDS,
    )


def display_url(url: str) -> str:
    """``url`` with any password replaced by ``***`` (a Redis URL may carry one)."""
    try:
        parts = urlsplit(url)
        if parts.password is None:
            return url
        netloc = f"{parts.username or ''}:***@{parts.hostname or ''}"
        if parts.port is not None:
            netloc += f":{parts.port}"
    except ValueError:
        return "<unparseable URL>"
    return urlunsplit(parts._replace(netloc=netloc))


def embedded_redis() -> Any:
    """An in-process Redis implementation for the demo (not durable, single process)."""
    import fakeredis

    return fakeredis.FakeAsyncRedis(decode_responses=False)


async def connect(settings: Settings) -> Any:
    """Return a connected client, checking reachability once with PING."""
    if settings.redis_url is None:
        return embedded_redis()
    if settings.redis_cluster:
        client: Any = RedisCluster.from_url(settings.redis_url, socket_timeout=5)
    else:
        client = aioredis.Redis.from_url(
            settings.redis_url, socket_timeout=5, socket_connect_timeout=3, health_check_interval=30
        )
    try:
        await client.ping()
    except Exception as exc:
        await client.aclose()
        raise StoreUnavailable(
            f"Redis at {display_url(settings.redis_url)} is not reachable "
            f"({type(exc).__name__}: {exc}); "
            "refusing to start without the configured store"
        ) from exc
    return client
