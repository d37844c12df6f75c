"""Building the orders service over the gateway's real catalog and reseller access."""

from __future__ import annotations

from typing import Any

from gateway.orders.crypto import cipher_from_settings
from gateway.orders.ports import PricedCatalog, WebhookTarget
from gateway.orders.service import OrdersService


class StoreResellerDirectory:
    """Webhook targets from the access layer's reseller records (read per delivery, so a
    changed URL or rotated secret applies to retries still pending)."""

    def __init__(self, store: Any) -> None:
        self._store = store

    async def webhook_target(self, reseller_id: str) -> WebhookTarget | None:
        reseller = await self._store.get_reseller(reseller_id)
        if reseller is None or not reseller.webhook_url or reseller.webhook_secret is None:
            return None
        return WebhookTarget(reseller.webhook_url, reseller.webhook_secret.get_secret_value())


def catalog_lookup(catalog: Any) -> PricedCatalog:
    """Orders priced exactly as the catalog shows them: the service's live index, price
    list and taxonomy, read at call time (a new snapshot applies at once)."""
    return PricedCatalog(
        find=lambda product_id: catalog.find(product_id),
        prices=catalog.prices,
        taxonomy=lambda supplier, category: catalog.taxonomy(supplier, category),
        ready=lambda: catalog.index is not None,
    )


def build_orders_service(gateway: Any) -> OrdersService:
    """The orders service of one ``Gateway`` (``gateway.bootstrap``). Raises
    ``EncryptionKeyError`` when codes could not be encrypted with a kept key."""
    settings = gateway.settings
    keys = [key.get_secret_value() for key in settings.orders.encryption_keys]
    cipher = cipher_from_settings(keys, embedded_store=settings.redis_url is None)
    return OrdersService(
        redis=gateway.redis,
        keys=gateway.keys,
        settings=settings.orders,
        adapters=gateway.adapters,
        catalog=catalog_lookup(gateway.services["catalog"]),
        resellers=StoreResellerDirectory(gateway.services["access"].store),
        cipher=cipher,
        http=gateway.http,
        accounts=gateway.services["accounts"].orders,
    )
