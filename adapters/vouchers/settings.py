"""Settings of the voucher products API adapter.

Validated once at start-up from ``GATEWAY_SUPPLIERS__VOUCHERS__<FIELD>`` or the config file's
``[suppliers.vouchers]`` table. Every path is a field so that a deployment can follow a
change of the upstream's routes without a code change; the defaults are the paths the
supplier documents.
"""

from __future__ import annotations

from pydantic import Field, SecretStr

from adapters.config import SupplierSettings


class VouchersSettings(SupplierSettings):
    """Credentials, paths and knobs of the voucher supplier."""

    api_key: SecretStr = Field(description="API key, sent as ``username`` to the login call.")
    api_secret: SecretStr = Field(description="API secret, sent as ``password`` to the login call.")
    wallet_id: int | None = Field(
        default=None,
        ge=1,
        description="Wallet orders are paid from; unset: the supplier's default for the "
        "product's currency. A wallet in another currency makes the supplier convert.",
    )

    login_path: str = Field(default="/auth/login", description="POST: api key/secret → tokens.")
    refresh_path: str = Field(
        default="/auth/refresh", description="POST: refresh token → new access token."
    )
    logout_path: str = Field(default="/auth/logout", description="POST: revoke our tokens.")
    products_path: str = Field(
        default="/api/v1/products", description="GET: paginated product list."
    )
    product_path: str = Field(
        default="/api/v1/products/{id}", description="GET: one product's detail."
    )
    charges_path: str = Field(
        default="/api/v1/products/{id}/charges", description="POST: price quote."
    )
    availability_path: str = Field(
        default="/api/v1/products/{id}/availability", description="GET: {is_available}."
    )
    create_order_path: str = Field(default="/api/v1/orders", description="POST: place an order.")
    orders_path: str = Field(
        default="/api/v1/orders", description="GET: our orders (filter ?client_reference=)."
    )
    order_path: str = Field(default="/api/v1/orders/{id}", description="GET: one order.")

    page_size: int = Field(
        default=500,
        ge=1,
        le=500,
        description="Products per list page (the upstream's maximum ``limit`` is 500).",
    )
    token_refresh_margin_seconds: float = Field(
        default=60.0,
        ge=0,
        description="Renew the access token this long before it expires (capped at half "
        "the token's lifetime, so a large margin cannot turn into a login per call).",
    )
