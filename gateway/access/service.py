"""``Access``: the one object that admits or refuses a request, built once per instance.

It runs the checks in the order that costs least and leaks least: credentials (no Redis
when cached), reseller status, IP allowlist, scope, and only then the rate limit, so a
refused request never spends the key's budget and an unauthenticated flood never
reaches the limiter.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from redis.asyncio.cluster import RedisCluster
from redis.exceptions import RedisError

from adapters.ratelimit import RedisRateLimiter
from gateway.access.authenticate import Authenticator, Credential
from gateway.access.client_ip import IPAddress, client_address, in_networks, parse_networks
from gateway.access.failures import FailedAuthentications
from gateway.access.metrics import AUTH_FAILURES
from gateway.access.models import ALL_SCOPES
from gateway.access.ratelimit import Quota, ResellerLimiter
from gateway.access.store import KeyStore
from gateway.errors import Forbidden
from gateway.redis_keys import RedisKeys
from gateway.settings import AccessSettings

log = logging.getLogger("gateway.access")

DEMO_RESELLER_ID = "rs_demo"
LOOPBACK = ("127.0.0.0/8", "::1/128")
"""Where a demo key written to a real Redis may be used from: the demo's own machine."""


class Access:
    def __init__(self, store: KeyStore, limiter: ResellerLimiter, settings: AccessSettings) -> None:
        self.store = store
        self.limiter = limiter
        self.authenticator = Authenticator(
            store,
            cache_seconds=settings.key_cache_seconds,
            default_rate_limit=settings.default_rate_limit,
            failures=FailedAuthentications(
                settings.failed_auth_limit, settings.failed_auth_window_seconds
            ),
        )
        self.trusted_proxies = parse_networks(settings.trusted_proxies)
        self._demo_key = settings.demo_key
        self._demo_in_redis = settings.demo_in_redis
        self._demo_key_ttl = settings.demo_key_ttl_seconds

    @classmethod
    def build(
        cls,
        redis: Any,
        keys: RedisKeys,
        settings: AccessSettings,
        *,
        limiter_redis: Any = None,
        allow_private_webhooks: bool = False,
    ) -> Access:
        """Wire the store and limiter to Redis (``limiter_redis``: a separate client, tests;
        ``allow_private_webhooks``: ``orders.webhook_allow_private_targets``)."""
        limiter_client = limiter_redis if limiter_redis is not None else redis
        limiter = ResellerLimiter(
            RedisRateLimiter(limiter_client),
            keys,
            settings,
            batch=not isinstance(limiter_client, RedisCluster),
        )
        store = KeyStore(redis, keys, allow_private_webhooks=allow_private_webhooks)
        return cls(store, limiter, settings)

    async def start(self) -> None:
        """Register the demo key when one is configured (``gateway serve`` in demo mode);
        without one, retire the keys of any earlier demo run against this store."""
        if self._demo_key is None:
            try:
                await retire_demo(self.store)
            except RedisError as exc:  # housekeeping: the next start tries again
                log.warning("could not check for demo keys to revoke: %s", type(exc).__name__)
        elif self._demo_in_redis:  # a store that outlives the run: scoped and expiring
            await register_demo(
                self.store,
                self._demo_key.get_secret_value(),
                expires_at=datetime.now(UTC) + timedelta(seconds=self._demo_key_ttl),
                allowed_ips=LOOPBACK,
            )
        else:  # the embedded store, gone with the process
            await register_demo(self.store, self._demo_key.get_secret_value())

    async def stop(self) -> None:
        """Nothing runs in the background."""

    def admitted(self, scope: Mapping[str, Any], required: str) -> tuple[Credential, Quota] | None:
        """``admit`` for the common case, without a coroutine: a key this instance matched
        recently, and a token from its lease on the key's budget. ``None`` when ``admit``
        must decide (a key not matched yet, a lease to refill, a key below the lease
        rate); refusals of a known key (``ip_not_allowed``, ``insufficient_scope``) are
        raised here as there."""
        token, forwarded = _presented(scope)
        credential = self.authenticator.known(token)
        if credential is None:
            return None
        self._check(credential, scope, forwarded, None, required)
        quota = self.limiter.held(credential)
        if quota is None:
            return None
        return credential, quota

    async def admit(self, scope: Mapping[str, Any], required: str) -> tuple[Credential, Quota]:
        """Admit one ASGI request needing scope ``required``: its credential and the key's
        quota after it. Refusals are domain errors: ``Unauthenticated`` (no key, or one
        that matches nothing), ``Forbidden`` (``reseller_disabled``, ``ip_not_allowed``,
        ``insufficient_scope``), ``RateLimited``, ``Unavailable`` (Redis, failing
        closed); the access guard (``gateway.api.guard``) adds the HTTP challenge."""
        token, forwarded = _presented(scope)
        address: IPAddress | None = None
        credential = self.authenticator.known(token)
        if credential is None:  # the address only when it is needed: not on the hot path
            address = self._client(scope, forwarded)
            credential = await self.authenticator.authenticate(token, address)
        self._check(credential, scope, forwarded, address, required)
        quota = self.limiter.held(credential)
        if quota is None:
            quota = await self.limiter.check(credential, required)
        return credential, quota

    def _check(
        self,
        credential: Credential,
        scope: Mapping[str, Any],
        forwarded: list[str],
        address: IPAddress | None,
        required: str,
    ) -> None:
        """The IP allowlist and the scope of an authenticated key."""
        if credential.allowed_ips:
            address = address or self._client(scope, forwarded)
            if address is None or not in_networks(address, credential.allowed_ips):
                AUTH_FAILURES.labels("ip_not_allowed").inc()
                raise Forbidden(
                    "ip_not_allowed",
                    f"this API key may not be used from {address or 'an unknown address'}",
                )
        if required not in credential.key.scopes:
            AUTH_FAILURES.labels("insufficient_scope").inc()
            raise Forbidden("insufficient_scope", f"this API key lacks the scope {required!r}")

    def _client(self, scope: Mapping[str, Any], forwarded: list[str]) -> IPAddress | None:
        peer = scope.get("client")
        return client_address(peer[0] if peer else None, forwarded, self.trusted_proxies)


def _presented(scope: Mapping[str, Any]) -> tuple[str | None, list[str]]:
    """The key a request presents (``Authorization: Bearer``, else ``X-API-Key``) and its
    ``X-Forwarded-For`` fields, in one pass over the headers."""
    bearer = api_key = None
    forwarded: list[str] = []
    for name, value in scope["headers"]:
        if name == b"authorization":
            scheme, _, credentials = value.decode("latin-1").strip().partition(" ")
            if scheme.lower() == "bearer":
                bearer = credentials.strip()
        elif name == b"x-api-key":
            api_key = value.decode("latin-1").strip()
        elif name == b"x-forwarded-for":
            forwarded.append(value.decode("latin-1"))
    return bearer or api_key, forwarded


async def register_demo(
    store: KeyStore,
    token: str,
    *,
    expires_at: datetime | None = None,
    allowed_ips: Sequence[str] = (),
) -> None:
    """The demo reseller with ``token`` as its only working key (idempotent: every
    worker of one ``gateway serve`` registers the same key)."""
    if await store.get_reseller(DEMO_RESELLER_ID) is None:
        with contextlib.suppress(ValueError):  # another worker created it first
            await store.create_reseller("Demo reseller", reseller_id=DEMO_RESELLER_ID)
    issued = await store.create_key(
        DEMO_RESELLER_ID,
        scopes=ALL_SCOPES,
        name="demo",
        token=token,
        expires_at=expires_at,
        allowed_ips=allowed_ips,
    )
    await retire_demo(store, keep=issued.key.id)  # keys of earlier demo runs
    log.info("demo reseller %s ready with key id %s", DEMO_RESELLER_ID, issued.key.id)


async def retire_demo(store: KeyStore, *, keep: str | None = None) -> None:
    """Revoke every active key of the demo reseller but ``keep``: a demo key never
    outlives its demo run into a gateway started without one."""
    if await store.get_reseller(DEMO_RESELLER_ID) is None:
        return
    for key in await store.list_keys(DEMO_RESELLER_ID):
        if key.id != keep and key.status == "active":
            await store.revoke_key(key.id)
            log.info("demo key %s revoked: this run has no demo key", key.id)
