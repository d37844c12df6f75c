"""Turning a presented API key into a ``Credential``, without a Redis round trip per request.

Look-ups are cached in-process (``cachetools.TTLCache``) for ``key_cache_seconds``,
including "no such key" answers, so neither a busy reseller nor a flood of made-up keys
costs a Redis call per request. A presented key is checked against the stored digest
(SHA-256, constant-time comparison) the first time; once it matched a usable
credential, the exact key is remembered until that credential is ``key_cache_seconds``
old or the key expires, whichever comes first, so a busy reseller's requests skip the
parse, the hash and the status checks (the process holds the key in memory while
serving the request anyway; only keys that matched are kept, so made-up keys cannot
fill it; a refused key is not kept, and pays the hash each time).

Revocation: a revoked key, an expired one or a disabled reseller is written to Redis by
the CLI; every instance re-reads the record when its cache entry expires, so the change
reaches all instances within ``key_cache_seconds`` (5 s by default; 0 disables the
cache). The cache bounds the lag instead of a pub/sub invalidation because it needs no
subscriber connection per instance, cannot miss a message during a reconnect, and makes
the worst case a setting rather than a property of the network.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from cachetools import TTLCache
from redis.exceptions import RedisError

from adapters.ratelimit import RateLimit
from gateway.access import tokens
from gateway.access.client_ip import IPAddress, IPNetwork
from gateway.access.failures import FailedAuthentications
from gateway.access.metrics import AUTH_FAILURES
from gateway.access.models import ApiKey, Reseller
from gateway.access.store import KeyStore
from gateway.errors import Forbidden, Unauthenticated, Unavailable

_UNKNOWN = object()  # not in the cache (``None`` there means "no such key")


@dataclass(frozen=True, slots=True)
class Credential:
    """A key with its reseller and its limit, prepared once and cached."""

    key: ApiKey
    digest: str
    reseller: Reseller
    rate: RateLimit
    allowed_ips: tuple[IPNetwork, ...]
    expires_at: float | None  # Unix time
    loaded_at: float  # time.monotonic() when read from the store


class Authenticator:
    def __init__(
        self,
        store: KeyStore,
        *,
        cache_seconds: float,
        default_rate_limit: int,
        cache_size: int = 10_000,
        failures: FailedAuthentications | None = None,
    ) -> None:
        self._store = store
        self._failures = failures or FailedAuthentications(0, 1.0)
        self._default_rate_limit = default_rate_limit
        self._cache_seconds = cache_seconds
        self._cache_size = cache_size
        self._cache: TTLCache[str, Credential | None] | None = (
            TTLCache(maxsize=cache_size, ttl=cache_seconds) if cache_seconds > 0 else None
        )
        # Keys that matched a usable credential, to that credential and the monotonic time
        # until which it may be used without looking again: while it is fresh (so
        # revocation lags no more than the look-up cache says) and before the key expires.
        self._verified: dict[str, tuple[Credential, float]] = {}
        self._loading: dict[str, asyncio.Future[Credential | None]] = {}

    def known(self, token: str | None) -> Credential | None:
        """The credential of a key that matched recently and may still be used, answered
        from memory without a coroutine (the hot path of every request); ``None`` when
        ``authenticate`` must decide, refusals included."""
        remembered = self._verified.get(token) if token else None
        if remembered is None or time.monotonic() >= remembered[1]:
            return None
        return remembered[0]

    async def authenticate(self, token: str | None, client: IPAddress | None = None) -> Credential:
        """The credential of ``token``; ``Unauthenticated`` (none, or not a usable key),
        ``Forbidden`` (reseller disabled) or ``Unavailable`` (the store cannot answer)
        otherwise, and ``TooManyRequests`` while ``client`` (the caller's address) is over
        the failed-authentication limit."""
        if not token:
            AUTH_FAILURES.labels("missing").inc()
            raise Unauthenticated(
                "authentication_required",
                "send your API key as 'Authorization: Bearer <key>' or 'X-API-Key: <key>'",
            )
        credential = self.known(token)
        if credential is not None:
            return credential
        self._failures.check(client)  # before any parsing, hashing or Redis read
        key_id = tokens.key_id_of(token)
        credential = await self._credential(key_id) if key_id else None
        if credential is None or not tokens.matches(token, credential.digest):
            self._failures.failed(client)
            raise _invalid("the API key is not valid")
        refusal = _refusal(credential)
        if refusal == "revoked":
            self._failures.failed(client)
            raise _invalid("the API key has been revoked or has expired")
        if refusal == "reseller_disabled":
            AUTH_FAILURES.labels("reseller_disabled").inc()
            raise Forbidden("reseller_disabled", "the reseller account is disabled")
        self._remember(token, credential)
        return credential

    def _remember(self, token: str, credential: Credential) -> None:
        """Let ``known`` answer for ``token`` until ``credential`` is stale or expires."""
        if self._cache is None:
            return
        until = credential.loaded_at + self._cache_seconds
        if credential.expires_at is not None:
            until = min(until, time.monotonic() + credential.expires_at - time.time())
        if len(self._verified) >= self._cache_size:
            self._verified.clear()
        self._verified[token] = (credential, until)

    def forget(self, key_id: str | None = None) -> None:
        """Drop cached look-ups (one key, or all), e.g. after a change made in-process."""
        if key_id is None:
            self._verified.clear()
        else:
            for token in [t for t, (c, _) in self._verified.items() if c.key.id == key_id]:
                del self._verified[token]
        if self._cache is None:
            return
        if key_id is None:
            self._cache.clear()
        else:
            self._cache.pop(key_id, None)

    async def _credential(self, key_id: str) -> Credential | None:
        """The cached credential, else one read from the store. Concurrent misses of one
        key share that read: when a busy key's entry expires, its requests in flight
        wait for one look-up instead of each reading and parsing the record."""
        if self._cache is not None:
            cached = self._cache.get(key_id, _UNKNOWN)
            if cached is not _UNKNOWN:
                return cached  # type: ignore[return-value]
        while (pending := self._loading.get(key_id)) is not None:
            try:
                return await asyncio.shield(pending)
            except asyncio.CancelledError:
                task = asyncio.current_task()
                if task is None or task.cancelling() or not pending.cancelled():
                    raise
                # The request that was reading it was cancelled, not this one: read again.
        loading: asyncio.Future[Credential | None] = asyncio.get_running_loop().create_future()
        self._loading[key_id] = loading
        try:
            credential = await self._load(key_id)
        except Exception as exc:
            loading.set_exception(exc)
            loading.exception()  # marked retrieved: no warning when nobody else waited
            raise
        except BaseException:
            loading.cancel()
            raise
        else:
            loading.set_result(credential)
            return credential
        finally:
            del self._loading[key_id]

    async def _load(self, key_id: str) -> Credential | None:
        try:
            loaded = await self._store.load(key_id)
        except (RedisError, OSError) as exc:
            AUTH_FAILURES.labels("store_unavailable").inc()
            raise Unavailable(
                "service_unavailable",
                "API keys cannot be checked right now; retry shortly",
                retry_after=1,
            ) from exc
        credential = None
        stored, reseller = loaded if loaded is not None else (None, None)
        if stored is not None and reseller is not None:
            limit = stored.key.rate_limit or self._default_rate_limit
            credential = Credential(
                key=stored.key,
                digest=stored.digest,
                reseller=reseller,
                rate=RateLimit(limit=limit, period_seconds=60, burst=limit),
                allowed_ips=tuple(stored.key.allowed_ips),
                expires_at=stored.key.expires_at.timestamp() if stored.key.expires_at else None,
                loaded_at=time.monotonic(),
            )
        if self._cache is not None:
            self._cache[key_id] = credential
        return credential


def _refusal(credential: Credential) -> str | None:
    """Why a key that matched may not be used now (``None``: it may)."""
    if not credential.key.usable_at(time.time()):
        return "revoked"
    if not credential.reseller.active:
        return "reseller_disabled"
    return None


def _invalid(message: str) -> Unauthenticated:
    AUTH_FAILURES.labels("invalid").inc()
    return Unauthenticated("invalid_api_key", message)
