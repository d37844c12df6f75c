"""A complete, deliberately small reference adapter for the invented "Example" upstream.

It exists so the shared machinery and the contract suite can be tested without a real
supplier, and so a developer writing a new adapter can read one end to end in a single
file (a real supplier splits it into ``settings.py``, ``client.py`` and ``mapping.py``; see
``docs/adding-a-supplier.md``). It is not registered as an entry point.

Money: the upstream already sends integer minor units, so no rounding happens here; the
cost of a discounted face value uses ``adapters.models.discounted_cost`` (rounded up).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any, ClassVar
from urllib.parse import quote

import httpx
from pydantic import Field, SecretStr

from adapters.base import SupplierAdapter
from adapters.config import SupplierSettings
from adapters.errors import RejectedError, SupplierError
from adapters.http_errors import read_error
from adapters.models import (
    CatalogPage,
    Code,
    Money,
    OrderLine,
    Product,
    ProductDetail,
    UpstreamOrder,
    UpstreamOrderState,
    Variant,
    discounted_cost,
)
from adapters.ratelimit import RateLimit
from adapters.testing import example_sandbox

_STATES = {
    "processing": UpstreamOrderState.PENDING,
    "completed": UpstreamOrderState.DELIVERED,
    "failed": UpstreamOrderState.FAILED,
}


class ExampleSettings(SupplierSettings):
    api_key: SecretStr
    products_path: str = Field(default="/products", description="Product list.")
    product_path: str = Field(default="/products/{id}", description="Product detail.")
    orders_path: str = Field(default="/orders", description="Create (POST) and find (GET).")
    order_path: str = Field(default="/orders/{id}", description="One order.")
    page_size: int = Field(default=100, ge=1, le=100)


class ExampleAdapter(SupplierAdapter):
    name = "example"
    display_name = "Example supplier (reference adapter)"
    capabilities = frozenset({"async_fulfilment", "range_denominations", "stock_levels"})
    settings_model = ExampleSettings
    rate_limits: ClassVar[dict[str, RateLimit]] = {
        bucket: RateLimit(limit=limit, period_seconds=60.0)
        for bucket, limit in example_sandbox.DOCUMENTED_LIMITS.items()
    }
    max_lines_per_order = 1
    settings: ExampleSettings

    @classmethod
    def create_sandbox(cls, **options: Any) -> Any:
        return example_sandbox.create_app(**options)

    @classmethod
    def sandbox_settings(cls, base_url: str) -> dict[str, Any]:
        return {"base_url": base_url, "api_key": example_sandbox.API_KEY}

    async def auth_headers(self, *, refresh: bool = False) -> dict[str, str]:
        return {"X-Api-Key": self.settings.api_key.get_secret_value()}

    def classify_response(self, response: httpx.Response) -> SupplierError | None:
        answer = read_error(response, self.name)
        if answer is None:
            return None
        if answer.status in (409, 422):
            return answer.error(RejectedError, "order refused")
        return super().classify_response(response)

    async def _iter_catalog(self) -> AsyncIterator[CatalogPage]:
        offset, page = 0, 1
        while True:
            response = await self.request(
                "GET",
                self.settings.products_path,
                operation="list_products",
                bucket="reads",
                params={"offset": offset, "limit": self.settings.page_size},
            )
            body = response.json()
            items = body["items"]
            if not items:
                return
            products = tuple(self._product(item) for item in items)
            yield CatalogPage(products=products, page=page, total=body.get("total"))
            offset, page = offset + len(items), page + 1
            if offset >= body["total"]:
                return

    async def _get_product(self, upstream_id: str) -> ProductDetail:
        path = self.settings.product_path.format(id=quote(upstream_id, safe=""))
        item = (await self.request("GET", path, operation="get_product", bucket="reads")).json()
        return ProductDetail(
            **self._product(item).model_dump(), description=item.get("description")
        )

    async def _place_order(self, reference: str, lines: Sequence[OrderLine]) -> UpstreamOrder:
        if len(lines) != 1:
            raise RejectedError("one line per order", supplier=self.name)
        line = lines[0]
        upstream_id, key = self.split_variant_id(line.variant_id)
        face: int | None = None
        if key.startswith("fv"):
            face = int(key[2:])
        elif key.startswith("r"):
            if line.face_value is None:
                raise RejectedError("a range variant needs a face value", supplier=self.name)
            face = line.face_value.amount
        response = await self.request(
            "POST",
            self.settings.orders_path,
            operation="create_order",
            bucket="orders",
            idempotent=False,
            headers={"Idempotency-Key": reference},
            json={"product_id": upstream_id, "quantity": line.quantity, "face_value": face},
        )
        return self._order(response.json())

    async def _get_order(self, upstream_id: str) -> UpstreamOrder:
        path = self.settings.order_path.format(id=quote(upstream_id, safe=""))
        response = await self.request("GET", path, operation="get_order", bucket="reads")
        return self._order(response.json())

    async def _find_order(self, reference: str) -> UpstreamOrder | None:
        response = await self.request(
            "GET",
            self.settings.orders_path,
            operation="find_order",
            bucket="reads",
            params={"reference": reference},
        )
        items = response.json()["items"]
        return self._order(items[0]) if items else None

    # ------------------------------------------------------------ mapping

    def _product(self, item: dict[str, Any]) -> Product:
        currency = item["currency"]
        uid = item["id"]
        variants: list[Variant] = []
        if item["kind"] == "key":
            variants.append(
                Variant(
                    id=self.variant_id(uid, "std"),
                    name=item["title"],
                    cost=Money(amount=item["price"], currency=currency),
                )
            )
        elif item["kind"] == "voucher":
            for face in item["faces"]:
                variants.append(
                    Variant(
                        id=self.variant_id(uid, f"fv{face}"),
                        name=f"{item['title']} {face}",
                        face_value=Money(amount=face, currency=currency),
                        cost=Money(
                            amount=discounted_cost(face, item["discount"]), currency=currency
                        ),
                        discount_percent=Decimal(item["discount"]),
                    )
                )
        else:
            variants.append(
                Variant(
                    id=self.variant_id(uid, f"r{item['min']}-{item['max']}"),
                    name=item["title"],
                    face_min=Money(amount=item["min"], currency=currency),
                    face_max=Money(amount=item["max"], currency=currency),
                    discount_percent=Decimal(item["discount"]),
                )
            )
        return Product(
            id=self.product_id(uid),
            supplier=self.name,
            upstream_id=uid,
            name=item["title"],
            brand=item.get("brand"),
            currency=currency,
            stock=item["stock"],
            available=item["stock"] > 0,
            variants=tuple(variants),
        )

    def _order(self, item: dict[str, Any]) -> UpstreamOrder:
        return UpstreamOrder(
            supplier=self.name,
            upstream_id=item["id"],
            reference=item.get("reference"),
            state=_STATES.get(item["status"], UpstreamOrderState.PENDING),
            total=Money(amount=item["total"], currency=item["currency"]),
            codes=tuple(Code(code=c) for c in item.get("codes", ())),
            created_at=datetime.fromisoformat(item["created_at"]),
        )
