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
from redis.asyncio.cluster import RedisCluster

from gateway.settings import Settings


class StoreUnavailable(RuntimeError):
    pass


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
