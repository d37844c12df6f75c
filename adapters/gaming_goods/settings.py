"""Settings of the Gaming Goods Partner API adapter.

The copied upstream page lost every Partner endpoint's method and path, so the defaults
below are the plain REST shapes the integration notes prescribe (relative to ``base_url``)::

    GET  /brands                      brands with product counts (limit/offset)
    GET  /brands/{brand}/categories   categories of one brand
    GET  /products                    product catalog (limit/offset, brand, category)
    GET  /products/{id}               product detail by UUID
    POST /checkout                    create an order ({"source": "lines", "lines": [...]})
    GET  /orders                      the partner's orders, newest first (limit/offset)
    GET  /orders/{id}                 order detail, codes in ``delivery.codes``

Each is a setting so a deployment can correct one without a code change
(``GATEWAY_SUPPLIERS__GAMING_GOODS__CHECKOUT_PATH=/orders/checkout``).
"""

from __future__ import annotations

from pydantic import Field, SecretStr, field_validator

from adapters.config import SupplierSettings

#: Largest page the Partner API serves (its documented ``limit`` maximum).
MAX_PAGE_SIZE = 100


class GamingGoodsSettings(SupplierSettings):
    """Credentials, endpoint paths (defaults: the REST shapes in the module docstring),
    paging and reconciliation knobs. No credential has a default: the sandbox's come from
    ``GamingGoodsAdapter.sandbox_settings``."""

    base_url: str = Field(
        description="Partner API base URL including its path prefix; production is "
        "https://gaming-goods.ru/api/partner/v1 (sandbox: see `gateway sandbox`)."
    )
    api_key: SecretStr = Field(
        description="Partner key sent as X-API-Key (production keys look like pk_live_...; "
        "request one from business@gaming-goods.com)."
    )

    brands_path: str = Field(default="/brands", description="GET: brand list.")
    brand_categories_path: str = Field(
        default="/brands/{brand}/categories", description="GET: one brand's categories."
    )
    products_path: str = Field(default="/products", description="GET: product catalog.")
    product_path: str = Field(default="/products/{id}", description="GET: product detail.")
    checkout_path: str = Field(default="/checkout", description="POST: create an order.")
    orders_path: str = Field(default="/orders", description="GET: order list, newest first.")
    order_path: str = Field(default="/orders/{id}", description="GET: order detail.")

    page_size: int = Field(
        default=MAX_PAGE_SIZE,
        ge=1,
        le=MAX_PAGE_SIZE,
        description="limit= sent when paging products and orders (the API caps it at 100).",
    )
    reconcile_skew_seconds: float = Field(
        default=2.0,
        ge=0,
        le=600,
        description="How far the upstream's clock may run behind ours: reconciliation never "
        "attributes an order created earlier than a checkout's first send minus this.",
    )
    idempotency_key_honoured: bool = Field(
        default=False,
        description="Set true only once the platform is known to honour Idempotency-Key on "
        "checkout (replaying the first answer): a checkout with an unknown outcome is then "
        "sent again under the same key instead of being matched against the order list. "
        "The Partner page does not promise it, so the default never relies on it.",
    )
    reconcile_max_pages: int = Field(
        default=20,
        ge=1,
        description="Order-list pages walked while reconciling before giving up and "
        "asking a human (the outcome stays unknown rather than risk a duplicate).",
    )
    order_state_ttl_seconds: int = Field(
        default=7 * 24 * 3600,
        ge=24 * 3600,
        description="How long checkout intents, reference -> order mappings and order "
        "claims are kept in Redis (must outlive any reconciliation of that order).",
    )

    @field_validator("brand_categories_path")
    @classmethod
    def _has_brand(cls, value: str) -> str:
        return _template(value, "{brand}")

    @field_validator("product_path", "order_path")
    @classmethod
    def _has_id(cls, value: str) -> str:
        return _template(value, "{id}")

    @field_validator("brands_path", "products_path", "checkout_path", "orders_path")
    @classmethod
    def _is_path(cls, value: str) -> str:
        return _template(value, None)


def _template(value: str, placeholder: str | None) -> str:
    if not value.startswith("/"):
        raise ValueError(f"path {value!r} must start with '/'")
    if placeholder is not None and placeholder not in value:
        raise ValueError(f"path {value!r} must contain {placeholder}")
    return value
