"""Building the orders service over the gateway's real catalog and reseller access."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from adapters.base import SupplierAdapter
from gateway.access.service import Access
from gateway.access.store import KeyStore
from gateway.accounts.service import AccountsService
from gateway.catalog.service import CatalogService
from gateway.orders.crypto import cipher_from_settings
from gateway.orders.ports import PricedCatalog, WebhookTarget
from gateway.orders.service import OrdersService
from gateway.redis_keys import RedisKeys
from gateway.settings import Settings


class StoreResellerDirectory:
    """Webhook targets from the access layer's reseller records (read per delivery, so a
    changed URL or rotated secret applies to retries still pending)."""

    def __init__(self, store: KeyStore) -> None:
        self._store = store

    async def webhook_target(self, reseller_id: str) -> WebhookTarget | None:
        reseller = await self._store.get_reseller(reseller_id)
        if reseller is None or not reseller.webhook_url or reseller.webhook_secret is None:
            return None
        return WebhookTarget(reseller.webhook_url, reseller.webhook_secret.get_secret_value())


def catalog_lookup(catalog: CatalogService) -> PricedCatalog:
    """Orders priced exactly as the catalog shows them: the service's live index, price
    list and taxonomy, read at call time (a new snapshot applies at once)."""
    return PricedCatalog(
        find=lambda product_id: catalog.find(product_id),
        prices=catalog.prices,
        taxonomy=lambda supplier, category: catalog.taxonomy(supplier, category),
        ready=lambda: catalog.index is not None,
        offers=catalog.offers,
        match_key=lambda variant_id: (
            catalog.index.offers.key(variant_id) if catalog.index is not None else None
        ),
    )


def build_orders_service(
    settings: Settings,
    *,
    redis: Any,
    keys: RedisKeys,
    adapters: Mapping[str, SupplierAdapter],
    catalog: CatalogService,
    access: Access,
    accounts: AccountsService,
) -> OrdersService:
    """The orders service of one gateway (``gateway.bootstrap``), over its catalog and
    the resellers of its access layer. Raises ``EncryptionKeyError`` when codes could not
    be encrypted with a kept key."""
    secrets = [key.get_secret_value() for key in settings.orders.encryption_keys]
    cipher = cipher_from_settings(secrets, embedded_store=settings.redis_url is None)
    return OrdersService(
        redis=redis,
        keys=keys,
        settings=settings.orders,
        adapters=adapters,
        catalog=catalog_lookup(catalog),
        resellers=StoreResellerDirectory(access.store),
        cipher=cipher,
        accounts=accounts.orders,
    )
