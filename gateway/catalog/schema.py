"""The catalog's response shapes, as pydantic models for the OpenAPI document.

Handlers build plain dicts (a search answers thousands of times a second; validating
each summary through pydantic would cost more than the search), and a test checks that
real responses validate against these models, so the document cannot drift from what
is served.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class _Out(BaseModel):
    model_config = ConfigDict(extra="forbid")


class MoneyOut(_Out):
    amount: int = Field(description="Integer amount in the currency's minor units.")
    currency: str = Field(description="ISO 4217 code.")


class OfferOut(_Out):
    supplier: str | None = Field(
        description="The supplier; null when the gateway hides suppliers "
        "(catalog.show_offer_suppliers)."
    )
    product_id: str | None = Field(description="The supplier product id (null: hidden).")
    variant_id: str | None = Field(
        description="The supplier variant id; ordering it pins the order to this supplier "
        "(null: hidden)."
    )
    price: MoneyOut | None = Field(
        description="Your price for one unit from this offer (null for a face-value range)."
    )
    eligible: bool = Field(
        description="Priced in the variant's currency: only such offers can serve an order "
        "for the canonical variant (prices are never converted)."
    )
    in_stock: bool
    available: bool
    stock: int | None
    delivery_mode: Literal["code", "code_with_pin", "url"]
    delivery_time: Literal["instant", "delayed"]


class VariantOut(_Out):
    id: str = Field(
        description="Stable variant id, used when ordering: a canonical variant "
        "(<canonical product>:<variant>) is routed to its best offer, a supplier variant "
        "is pinned to its supplier."
    )
    name: str
    price: MoneyOut | None = Field(
        description="Your price for one unit; null for a face-value range (priced at "
        "order time from the face value you choose)."
    )
    face_value: MoneyOut | None
    face_min: MoneyOut | None
    face_max: MoneyOut | None
    offer_count: int = Field(description="Supplier variants behind this variant.")
    offers: list[OfferOut] | None = Field(
        default=None,
        description="The offers behind a canonical variant, best first by supplier order "
        "(detail of a canonical product only).",
    )


class ProductSummaryOut(_Out):
    id: str = Field(
        description="Stable product id: a canonical product id (no colon, e.g. "
        "gift-steam-wallet-usa-usd) or a supplier product id <supplier>:<upstream id>."
    )
    supplier: str | None = Field(
        description="The supplier when only one sells it; null for a canonical product "
        "with several, or when suppliers are hidden."
    )
    suppliers: list[str] = Field(
        description="Every supplier with an offer (empty when suppliers are hidden)."
    )
    offer_count: int = Field(
        description="How many suppliers have an offer behind this product (in stock or not)."
    )
    name: str
    brand: str | None
    category: str | None = Field(description="Unified category (after the taxonomy mapping).")
    sub_category: str | None
    country: str | None = Field(description="ISO 3166-1 alpha-3 when known.")
    currency: str
    image_url: str | None
    delivery_mode: Literal["code", "code_with_pin", "url"]
    delivery_time: Literal["instant", "delayed"]
    in_stock: bool
    stock: int | None = Field(description="Units in stock; null when the supplier does not say.")
    price: MoneyOut | None = Field(
        description="Your price of the cheapest variant (a range variant at its face_min)."
    )
    variants: list[VariantOut]


class Specification(_Out):
    key: str
    value: str


class ProductDetailOut(ProductSummaryOut):
    validity: str | None
    short_description: str | None
    description: str | None
    terms: str | None
    how_to_use: str | None
    activation_details: str | None
    specifications: list[Specification]
    stale: bool = Field(
        description="True when the supplier could not be reached and this is an older "
        "cached copy of the detail."
    )


Facets = dict[Literal["category", "brand", "supplier", "country"], dict[str, int]]


class ProductPage(_Out):
    products: list[ProductSummaryOut]
    total: int = Field(description="Products matching the filters, over all pages.")
    page: int
    page_size: int
    facets: Facets | None = Field(
        default=None,
        description="Counts per category, brand, supplier and country over the filtered "
        "set; present when facets=true.",
    )


class ProductPageResponse(_Out):
    data: ProductPage


class ProductDetailResponse(_Out):
    data: ProductDetailOut


class NamedCount(_Out):
    name: str
    product_count: int


class NamedCountsResponse(_Out):
    data: list[NamedCount]


class SupplierStatusOut(_Out):
    name: str
    display_name: str
    products: int | None = Field(description="Products in the published snapshot.")
    version: int | None = Field(description="Published snapshot version (null: none yet).")
    served_version: int | None = Field(description="Snapshot version this instance serves.")
    stale: bool = Field(
        description="The last sync failed (or none succeeded for far longer than the sync "
        "interval): the last good snapshot is still served."
    )
    syncing: bool = Field(description="A sync of this supplier is running now.")
    last_success_at: datetime | None
    last_attempt_at: datetime | None
    last_error: str | None
    last_error_at: datetime | None
    duration_seconds: float | None = Field(description="Duration of the last sync attempt.")
    pages: int | None
    circuit: Literal["closed", "open", "half_open"] = Field(
        description="This instance's circuit breaker towards the supplier."
    )


class SupplierStatusResponse(_Out):
    data: list[SupplierStatusOut]
