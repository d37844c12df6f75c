"""Per-key rate limits, shared by every gateway instance, and the headers that report them.

Each key has one GCRA bucket in Redis (``adapters.ratelimit``, ``deny`` mode). One
script call per request, in one round trip (shared with concurrent requests when
batched, see ``DecisionBatcher``), decides and updates it atomically against Redis
server time, so three instances behind a load balancer admit a key's 100/min once, not
three times. The bucket holds ``limit`` requests (burst = limit) and refills
continuously at ``limit`` per minute: a reseller may spend its minute's budget at once,
then one request per ``60/limit`` seconds.

Every admission is reported as a ``Quota``: the decision's ``Window`` (limit and reset,
one object per Redis decision, shared by every request of a lease) and what remains.
The API layer turns it into the rate-limit headers of the answer
(``gateway.api.ratelimit_headers``); a refusal is a ``RateLimited`` error carrying its
``Quota`` and the seconds until one more request will be admitted.

Keys with a high rate lease a slice of their budget per instance: one script call takes
up to a quarter-second of the key's rate (``cost`` N, at most 1,000) and the instance
spends it locally for at most ``LEASE_SECONDS``. Tokens are taken from the shared bucket
before they are spent, so instances together never admit more than the limit; an
instance that stops receiving a key's traffic loses what it still holds (a brief
under-admission of at most a quarter-second of that key's rate per instance). Keys below
480 requests/min lease one token at a time, i.e. every request asks Redis, exactly as
without leases. ``remaining`` counts held tokens as remaining.

When Redis cannot answer, requests are admitted (fail open) or refused with 503 (fail
closed) according to ``fail_open_reads`` (catalog and order reads) and
``fail_open_writes`` (order writes), and a warning is logged at most every 10 s per scope.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from typing import NamedTuple

from redis.exceptions import RedisError

from adapters.ratelimit import Decision, RateLimit, RedisRateLimiter
from gateway.access.authenticate import Credential
from gateway.access.metrics import RATELIMIT_REJECTIONS, RATELIMIT_UNAVAILABLE
from gateway.access.models import WRITE_SCOPES
from gateway.errors import TooManyRequests, Unavailable
from gateway.redis_keys import RedisKeys
from gateway.settings import AccessSettings

log = logging.getLogger("gateway.access.ratelimit")

_WARN_EVERY_SECONDS = 10.0
LEASE_SECONDS = 1.0
MAX_LEASE = 1000


def lease_size(rate: RateLimit) -> int:
    """Tokens one Redis call may take for a key: a quarter-second of its rate."""
    per_second = rate.limit / rate.period_seconds
    return max(1, min(MAX_LEASE, int(per_second / 4), rate.burst))


class Window:
    """What one Redis decision says about a key's bucket, the same for every request it
    admits (one, or a whole lease). One object per decision, compared by identity, so
    whoever presents it may work out its constants once per decision, not per request."""

    __slots__ = ("limit", "reset_at", "reset_in")

    def __init__(self, limit: int, reset_at: int = 0, reset_in: int = 0) -> None:
        self.limit = limit  # requests per minute (also the bucket's size)
        self.reset_at = reset_at  # Unix time at which the bucket is full again
        self.reset_in = reset_in  # seconds until then


#: A key's budget after one request: the decision's window and the requests left (plus
#: the tokens this instance still holds); ``None`` left: unknown, because the limiter
#: could not answer and the request was admitted anyway. A plain pair, built per request.
Quota = tuple[Window, int | None]


class RateLimited(TooManyRequests):
    """Over the key's limit: ``quota`` as it stands, ``retry_after`` until one more
    request will be admitted (whole seconds, at least 1)."""

    def __init__(self, quota: Quota, retry_after: int) -> None:
        super().__init__(
            "rate_limited",
            f"rate limit of {quota[0].limit} requests per minute exceeded; "
            f"retry in {retry_after} s",
            retry_after=retry_after,
        )
        self.quota = quota


class _Plan(NamedTuple):
    rate: RateLimit  # the limit this plan was worked out for
    key: str  # the key's bucket in Redis
    lease: int  # tokens per Redis call


class _Decided(NamedTuple):
    """What one Redis decision says for every request it admits (one, or a whole
    lease): only ``remaining`` changes per request."""

    window: Window
    remaining: int  # in the bucket after the decision


class _Lease:
    __slots__ = ("decided", "decision", "expires", "tokens")

    def __init__(self, plan: _Plan, decision: Decision, tokens: int, expires: float) -> None:
        self.tokens = 0
        self.renew(plan, decision, tokens, expires)

    def renew(self, plan: _Plan, decision: Decision, tokens: int, expires: float) -> None:
        """Add ``tokens`` taken by ``decision`` to those still held, until ``expires``."""
        self.tokens += tokens
        self.decision = decision
        self.decided = _decided(plan, decision)
        self.expires = expires


class DecisionBatcher:
    """Coalesces the limiter decisions of concurrent requests into one pipeline.

    While no decision is in flight a request sends its own (one ``EVALSHA``, no added
    latency); requests that arrive while one is in flight queue up, and one flusher sends
    all of them in one pipelined round trip, repeating until the queue is empty. An idle
    gateway pays one round trip per request as before; a busy one pays one per batch,
    which cuts the client CPU per decision several times over, and each request still
    waits for exactly one round trip of its own. A failure reaches every request of the
    batch, each of which then fails open or closed by its own scope."""

    MAX_BATCH = 256

    def __init__(self, limiter: RedisRateLimiter) -> None:
        self._limiter = limiter
        self._busy = False
        self._pending: list[tuple[str, RateLimit, asyncio.Future[Decision]]] = []
        self._flusher: asyncio.Task[None] | None = None

    async def decide(self, key: str, rate: RateLimit) -> Decision:
        if not self._busy:
            self._busy = True
            try:
                return await self._limiter.decide(key, rate, mode="deny")
            finally:
                self._release()
        future: asyncio.Future[Decision] = asyncio.get_running_loop().create_future()
        self._pending.append((key, rate, future))
        return await future

    def _release(self) -> None:
        if self._pending:  # stay busy: the flusher takes over
            self._flusher = asyncio.create_task(self._flush(), name="ratelimit:flush")
        else:
            self._busy = False

    async def _flush(self) -> None:
        try:
            while self._pending:
                batch = self._pending[: self.MAX_BATCH]
                del self._pending[: self.MAX_BATCH]
                try:
                    decisions = await self._limiter.decide_many(
                        [(key, rate) for key, rate, _ in batch], mode="deny"
                    )
                except Exception as exc:  # each waiter decides what a failure means for it
                    for _, _, future in batch:
                        if not future.done():
                            future.set_exception(exc)
                else:
                    for (_, _, future), decision in zip(batch, decisions, strict=True):
                        if not future.done():
                            future.set_result(decision)
        finally:
            self._busy = False  # no await since the last look at the queue


class ResellerLimiter:
    def __init__(
        self,
        limiter: RedisRateLimiter,
        keys: RedisKeys,
        settings: AccessSettings,
        *,
        batch: bool = True,
    ) -> None:
        """``batch=False`` for Redis Cluster clients, whose pipelines split by slot."""
        self._limiter = limiter
        self._batcher = DecisionBatcher(limiter) if batch else None
        self._keys = keys
        self._fail_open_reads = settings.fail_open_reads
        self._fail_open_writes = settings.fail_open_writes
        self._last_warning: dict[str, float] = {}
        self._leases: dict[str, _Lease] = {}
        self._refills: dict[str, asyncio.Future[None]] = {}
        self._plans: dict[str, _Plan] = {}

    async def _leased(self, plan: _Plan) -> tuple[Decision, _Decided, int]:
        """A decision for one request from this instance's lease, refilled from Redis
        when empty or expired: (decision, its headers' constants, tokens still held after
        this request).

        Concurrent requests that find the lease empty wait for the one refill in flight
        (all woken at once by a shared future, not one by one as with a lock) instead of
        each taking a lease of their own; a refill that lands while tokens are still held
        adds to them, so no token is stranded."""
        key, rate, size = plan.key, plan.rate, plan.lease
        lease = self._take(key)
        if lease is None and (pending := self._refills.get(key)) is not None:
            await asyncio.shield(pending)
            lease = self._take(key)
        if lease is not None:
            return lease.decision, lease.decided, lease.tokens
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._refills[key] = done
        try:
            now = time.monotonic()
            decision = await self._limiter.decide(key, rate, mode="deny", cost=size)
            if not decision.allowed:
                # Not enough budget for a whole lease: exact one-by-one decisions.
                decision = await self._limiter.decide(key, rate, mode="deny")
                return decision, _decided(plan, decision), 0
            if len(self._leases) > 10_000:
                self._leases = {k: v for k, v in self._leases.items() if v.expires > now}
            lease = self._leases.get(key)
            if lease is not None and now < lease.expires:
                lease.renew(plan, decision, size - 1, now + LEASE_SECONDS)
            else:
                lease = self._leases[key] = _Lease(plan, decision, size - 1, now + LEASE_SECONDS)
            return decision, lease.decided, lease.tokens
        finally:
            if self._refills.get(key) is done:
                del self._refills[key]
            done.set_result(None)

    def _take(self, key: str) -> _Lease | None:
        """The lease on ``key`` after taking one token from it, if this instance holds
        one."""
        lease = self._leases.get(key)
        if lease is None or lease.tokens <= 0 or time.monotonic() >= lease.expires:
            return None
        lease.tokens -= 1
        return lease

    def _plan(self, credential: Credential) -> _Plan:
        """The per-key constants of ``check``, worked out once per key and limit rather
        than on every request (a reloaded credential carries an equal ``RateLimit``, so
        the plan is found again by one comparison)."""
        rate = credential.rate
        plan = self._plans.get(credential.digest)
        if plan is not None and plan.rate is rate:
            return plan
        if plan is not None and plan.rate == rate:
            plan = plan._replace(rate=rate)  # the same limit, reloaded: compare once
        else:
            if len(self._plans) > 10_000:
                self._plans.clear()
            plan = _Plan(rate, self._keys.reseller_rate(credential.key.id), lease_size(rate))
        self._plans[credential.digest] = plan
        return plan

    def held(self, credential: Credential) -> Quota | None:
        """The quota after one request admitted from this instance's lease, without a
        coroutine (the hot path of a busy key); ``None`` when ``check`` must decide."""
        plan = self._plan(credential)
        if plan.lease <= 1:
            return None
        lease = self._take(plan.key)
        if lease is None:
            return None
        return lease.decided.window, lease.decided.remaining + lease.tokens

    async def check(self, credential: Credential, scope: str) -> Quota:
        """Count one request against the key; return its quota, or raise ``RateLimited``
        (over the limit) or ``Unavailable`` (Redis cannot answer and the scope fails
        closed)."""
        rate = credential.rate
        plan = self._plan(credential)
        try:
            held = 0
            if plan.lease > 1:
                decision, decided, held = await self._leased(plan)
            else:
                if self._batcher is not None:
                    decision = await self._batcher.decide(plan.key, rate)
                else:
                    decision = await self._limiter.decide(plan.key, rate, mode="deny")
                decided = _decided(plan, decision)
        except (RedisError, OSError) as exc:
            return self._unavailable(credential, scope, exc)
        quota: Quota = (decided.window, decided.remaining + held)
        if not decision.allowed:
            RATELIMIT_REJECTIONS.labels(scope).inc()
            raise RateLimited(quota, max(1, math.ceil(decision.wait_seconds)))
        return quota

    def _unavailable(self, credential: Credential, scope: str, exc: Exception) -> Quota:
        fail_open = self._fail_open_writes if scope in WRITE_SCOPES else self._fail_open_reads
        RATELIMIT_UNAVAILABLE.labels(scope, "admitted" if fail_open else "refused").inc()
        now = time.monotonic()
        if now - self._last_warning.get(scope, -_WARN_EVERY_SECONDS) >= _WARN_EVERY_SECONDS:
            self._last_warning[scope] = now
            log.warning(
                "rate limiter unavailable (%s: %s); failing %s for %s requests",
                type(exc).__name__,
                exc,
                "open" if fail_open else "closed",
                scope,
            )
        if not fail_open:
            raise Unavailable(
                "rate_limiter_unavailable",
                "the request cannot be rate-limited right now and is refused; retry shortly",
                retry_after=1,
            )
        return Window(credential.rate.limit), None


def _decided(plan: _Plan, decision: Decision) -> _Decided:
    window = Window(
        plan.rate.limit,
        math.ceil(time.time() + decision.reset_seconds),
        max(1, math.ceil(decision.reset_seconds)),
    )
    return _Decided(window, max(0, decision.remaining))
