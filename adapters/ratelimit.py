"""Rate limits shared by every gateway instance through Redis (one GCRA Lua script).

Upstream suppliers count requests per egress IP or per client account, not per process,
so a limiter held in process memory lets N instances send N times the allowed rate. The
bucket state lives in one Redis key per bucket, updated atomically by ``lua/gcra.lua``
using Redis server time (one clock for everybody), in one round trip.

Two modes share the script:

* ``reserve`` (upstream order calls): take the next free slot and sleep until it comes, so
  callers queue rather than fail, and the upstream never sees a burst above its limit; a
  caller may cap the wait it accepts (a later slot is then not taken at all);
* ``deny`` (reseller limits in the gateway, and lower-priority upstream calls): take a slot
  only when one is free now, else refuse and say when to come back.

Upstream calls share their supplier's bucket by priority (``Priority``, ``Admission``):
order calls (placement, reconciliation, fulfilment polls) may use the whole bucket and
queue for the next slot; product-detail reads and catalog syncs may only take a slot
while ``reserve`` more are left for orders (they see the bucket with its normal burst,
orders see it with ``reserve`` extra slots) and never queue further than the next slot (a
slot queued further would sit ahead of later orders): orders keep ``reserve - 1`` slots
they can take at once however many reads arrive. A detail read takes such a slot or is
refused at once (the caller serves a cached copy or answers 503); a sync waits, without
holding a slot, until one is free. One caller's detail reads are also bounded to a share
of the rate (a second, per-caller key, with the bucket's burst scaled but at least 2, as
one read may take several calls); a call may wait for that share's next slot, never
queue beyond it.
"""

from __future__ import annotations

import asyncio
import enum
import math
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


class Priority(enum.StrEnum):
    """Who goes first on a supplier's shared budget."""

    #: Placement, reconciliation and fulfilment polls: queue for the next slot.
    ORDER = "order"
    #: Product detail on a reseller's request: a free slot now, or refused.
    DETAIL = "detail"
    #: Catalog syncs and anything unclassified: wait for a free slot, never queue.
    SYNC = "sync"


@dataclass(frozen=True, slots=True)
class Admission:
    """How one upstream call may take a slot of its bucket (see the module docstring)."""

    priority: Priority = Priority.SYNC
    #: Slots of the bucket, on top of its burst, that only ORDER calls may take.
    reserve: int = 0
    #: ORDER: the longest wait accepted for a slot (``None``: any).
    max_wait: float | None = None
    #: DETAIL: the caller whose reads are bounded to ``caller_share`` of the rate.
    caller: str | None = None
    caller_share: float = 1.0


class SlotRefused(Exception):
    """No slot was taken: the call must not be sent now. ``wait_seconds``: when to retry."""

    def __init__(self, message: str, *, wait_seconds: float) -> None:
        super().__init__(message)
        self.wait_seconds = wait_seconds


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

    async def decide(
        self,
        key: str,
        rate: RateLimit,
        *,
        mode: str,
        cost: int = 1,
        max_wait: float | None = None,
    ) -> Decision:
        args = self._args(rate, mode, cost)
        if max_wait is not None:
            args.append(int(max_wait * 1_000_000))
        reply = await self._script(keys=[key], args=args)
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

    async def acquire(self, key: str, rate: RateLimit, admission: Admission | None = None) -> float:
        """Take a slot of ``key`` as ``admission`` allows (default: an order call with no
        bound), sleeping until it is due; return the seconds waited. ``SlotRefused`` when
        no slot may be taken (nothing must be sent)."""
        admission = admission or Admission(priority=Priority.ORDER)
        if admission.priority is Priority.ORDER:
            whole = rate.model_copy(update={"burst": rate.burst + admission.reserve})
            decision = await self.decide(key, whole, mode="reserve", max_wait=admission.max_wait)
            if not decision.allowed:
                raise SlotRefused(
                    f"the next slot is {decision.wait_seconds:.1f} s away, more than the "
                    f"{admission.max_wait} s an order call waits",
                    wait_seconds=decision.wait_seconds,
                )
            if decision.wait_seconds > 0:
                await asyncio.sleep(decision.wait_seconds)
            return decision.wait_seconds
        # Lower classes may wait for the next slot at most, never queue further ahead:
        # orders keep ``reserve - 1`` slots they can take at once even under a flood.
        horizon = rate.period_seconds / rate.limit if admission.reserve >= 2 else 0.0
        if admission.priority is Priority.DETAIL:
            own_wait = 0.0
            if admission.caller is not None and admission.caller_share < 1:
                # The caller's own bucket keeps the bucket's burst (scaled, at least 2):
                # one detail read may take several calls (a voucher's product and its
                # stock), and a burst of 1 refused the second call of every read.
                share = RateLimit(
                    limit=max(1, int(rate.limit * admission.caller_share)),
                    period_seconds=rate.period_seconds,
                    burst=max(2, math.ceil(rate.burst * admission.caller_share)),
                )
                mine = await self.decide(
                    f"{key}:caller:{admission.caller}",
                    share,
                    mode="reserve",
                    max_wait=share.period_seconds / share.limit,  # its own next slot
                )
                if not mine.allowed:
                    raise SlotRefused(
                        "this caller's share of the supplier's rate is spent",
                        wait_seconds=mine.wait_seconds,
                    )
                own_wait = mine.wait_seconds
            decision = await self.decide(key, rate, mode="reserve", max_wait=horizon)
            if not decision.allowed:
                raise SlotRefused(
                    "the free part of the supplier's rate is spent; the rest is kept for orders",
                    wait_seconds=decision.wait_seconds,
                )
            # Both slots are taken: the call goes when the later of the two comes.
            wait = max(own_wait, decision.wait_seconds)
            if wait > 0:
                await asyncio.sleep(wait)
            return wait
        waited = 0.0
        while True:
            decision = await self.decide(key, rate, mode="reserve", max_wait=horizon)
            if decision.allowed:
                if decision.wait_seconds > 0:
                    await asyncio.sleep(decision.wait_seconds)
                return waited + decision.wait_seconds
            pause = max(0.001, decision.wait_seconds - horizon)
            if admission.max_wait is not None and waited + pause > admission.max_wait:
                raise SlotRefused(
                    "no free slot within the wait allowed", wait_seconds=decision.wait_seconds
                )
            # Wait without holding a slot: an order arriving meanwhile goes first.
            await asyncio.sleep(pause)
            waited += pause


def _decision(reply: Sequence[Any]) -> Decision:
    allowed, remaining, wait_us, reset_us = reply
    return Decision(
        allowed=bool(int(allowed)),
        remaining=int(remaining),
        wait_seconds=int(wait_us) / 1_000_000,
        reset_seconds=int(reset_us) / 1_000_000,
    )
