"""Helpers for tests of any ``/v1`` feature: a reseller with a key.

    caller = await issue_key(gw, scopes=["catalog:read"])
    response = await client.get("/v1/products", headers=caller.headers)

(``gateway.api.testing.serve_in_process`` runs the app in-process.)
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from gateway.access.models import ALL_SCOPES, ApiKey, Reseller, Scope
from gateway.access.store import KeyStore
from gateway.pricing import MarkupRule


@dataclass(frozen=True)
class TestCaller:
    __test__ = False  # not a pytest test class

    reseller: Reseller
    key: ApiKey
    token: str
    webhook_secret: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


def store_of(gateway: Any) -> KeyStore:
    """The key store of a ``Gateway`` (its access service's), or of anything with
    ``redis`` and ``keys`` (tests that run no gateway; ``settings``, when it has them, say
    whether private webhook targets are allowed)."""
    services = getattr(gateway, "services", None)
    if services is not None:
        store: KeyStore = services.access.store
        return store
    settings = getattr(gateway, "settings", None)
    allow = settings is not None and settings.orders.webhook_allow_private_targets
    return KeyStore(gateway.redis, gateway.keys, allow_private_webhooks=allow)


async def issue_key(
    gateway: Any,
    *,
    scopes: Iterable[Scope] = ALL_SCOPES,
    rate_limit: int | None = None,
    allowed_ips: Iterable[str] = (),
    markup: MarkupRule | None = None,
    webhook_url: str | None = None,
    name: str = "test reseller",
) -> TestCaller:
    """A new reseller with one key, written to the gateway's Redis."""
    store = store_of(gateway)
    created = await store.create_reseller(name, markup=markup, webhook_url=webhook_url)
    issued = await store.create_key(
        created.reseller.id, scopes=scopes, rate_limit=rate_limit, allowed_ips=list(allowed_ips)
    )
    return TestCaller(
        reseller=created.reseller,
        key=issued.key,
        token=issued.token.get_secret_value(),
        webhook_secret=created.webhook_secret.get_secret_value(),
    )
