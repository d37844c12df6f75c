"""Rate limits shared by every gateway instance through Redis (one GCRA Lua script).

Upstream suppliers count requests per egress IP or per client account, not per process,
so a limiter held in process memory lets N instances send N times the allowed rate. The
bucket state lives in one Redis key per bucket, updated atomically by ``lua/gcra.lua``
using Redis server time (one clock for everybody), in one round trip.

Two modes share the script:

* ``reserve`` (upstream calls): take the next free slot and sleep until it comes, so
  callers queue rather than fail, and the upstream never sees a burst above its limit;
* ``deny`` (reseller limits in the gateway): refuse when over the limit and say when to
  come back.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any

from pydantic import BaseModel, Field
from redis.exceptions import NoScriptError

_GCRA = resources.files("adapters").joinpath("lua/gcra.lua").read_text()


class RateLimit(BaseModel):
    """``limit`` requests per ``period_seconds``, of which ``burst`` may go back to back."""

    limit: int = Field(gt=0)
    period_seconds: float = Field(gt=0)
    burst: int = Field(default=1, ge=1)

    def scaled(self, factor: float) -> RateLimit:
        """The same limit with the rate multiplied by ``factor`` (a safety margin < 1)."""
        return RateLimit(
            limit=max(1, int(self.limit * factor)),
            period_seconds=self.period_seconds,
            burst=self.burst,
        )


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    remaining: int
    wait_seconds: float
    reset_seconds: float


class RedisRateLimiter:
    """Issues GCRA decisions against one Redis (or Redis Cluster: one key per call)."""

    def __init__(self, redis: Any) -> None:
        self._redis = redis
        self._script = redis.register_script(_GCRA)

    async def decide(self, key: str, rate: RateLimit, *, mode: str, cost: int = 1) -> Decision:
        reply = await self._script(keys=[key], args=self._args(rate, mode, cost))
        return _decision(reply)

    async def decide_many(
        self, calls: Sequence[tuple[str, RateLimit]], *, mode: str, cost: int = 1
    ) -> list[Decision]:
        """Several decisions in one round trip: the same script, pipelined (not in one
        transaction: each decision stays atomic on its own). The gateway batches the
        reseller checks of concurrent requests this way, which costs far less client CPU
        than one command each. Not for Redis Cluster clients (use ``decide``)."""
        replies: list[Any] = [None] * len(calls)
        todo = list(range(len(calls)))
        for attempt in (1, 2):
            async with self._redis.pipeline(transaction=False) as pipe:
                for i in todo:
                    key, rate = calls[i]
                    pipe.evalsha(self._script.sha, 1, key, *self._args(rate, mode, cost))
                results = await pipe.execute(raise_on_error=False)
            for i, result in zip(todo, results, strict=True):
                replies[i] = result
            todo = [i for i in todo if isinstance(replies[i], NoScriptError)]
            if not todo:
                break
            if attempt == 1:  # a restarted or failed-over Redis forgot the script
                await self._redis.script_load(_GCRA)
        for reply in replies:
            if isinstance(reply, Exception):
                raise reply
        return [_decision(reply) for reply in replies]

    @staticmethod
    def _args(rate: RateLimit, mode: str, cost: int) -> list[Any]:
        return [rate.limit, int(rate.period_seconds * 1000), rate.burst, mode, cost]

    async def acquire(self, key: str, rate: RateLimit) -> float:
        """Reserve a slot, sleep until it is due, and return the seconds slept."""
        decision = await self.decide(key, rate, mode="reserve")
        if decision.wait_seconds > 0:
            await asyncio.sleep(decision.wait_seconds)
        return decision.wait_seconds


def _decision(reply: Sequence[Any]) -> Decision:
    allowed, remaining, wait_us, reset_us = reply
    return Decision(
        allowed=bool(int(allowed)),
        remaining=int(remaining),
        wait_seconds=int(wait_us) / 1_000_000,
        reset_seconds=int(reset_us) / 1_000_000,
    )
