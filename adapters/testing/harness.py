"""The pieces the contract suite is built from, usable on their own in an adapter's tests.

``SandboxClient`` drives a running sandbox's ``/_sandbox`` control endpoints over HTTP;
``RequestLog`` and ``RecordingSleep`` record what an adapter sent and how long it waited;
``ContractHarness`` builds adapters against the sandbox with the suite's settings; the
``check_*`` functions are the unified-model rules every adapter's output must satisfy.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Mapping
from decimal import Decimal
from typing import TYPE_CHECKING, Any, get_args

import httpx
import pytest
from pydantic import SecretStr

from adapters.base import SupplierAdapter
from adapters.config import SupplierSettings
from adapters.iso4217 import ISO_4217
from adapters.models import (
    CatalogPage,
    Money,
    OrderLine,
    Product,
    UpstreamOrder,
    Variant,
)

if TYPE_CHECKING:
    from adapters.testing.contract import AdapterContract


# --------------------------------------------------------------------- helpers


class SandboxClient:
    """Drives a running sandbox through its ``/_sandbox`` control endpoints (real HTTP)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._http = httpx.Client(base_url=url, timeout=10.0)
        #: Products some test of this sandbox already ordered: each order test buys a
        #: product of its own, so an order left by another test (whose adapter state lived
        #: under another key prefix) can never look like this test's lost order.
        self.ordered_products: set[str] = set()

    def reset(self) -> None:
        """Clear faults, rate windows and stats (not the order log)."""
        self._http.post("/_sandbox/reset").raise_for_status()

    def set_faults(self, **faults: Any) -> None:
        self._http.put("/_sandbox/faults", json=faults).raise_for_status()

    def stats(self) -> dict[str, Any]:
        response = self._http.get("/_sandbox/stats")
        response.raise_for_status()
        return dict(response.json())

    def order_count(self) -> int:
        response = self._http.get("/_sandbox/orders")
        response.raise_for_status()
        return int(response.json()["count"])

    def close(self) -> None:
        self._http.close()


class RequestLog:
    """Every request an adapter's HTTP client sent and every response it got, in order
    (httpx event hooks): lets tests see *how* an adapter reached its result."""

    def __init__(self) -> None:
        self.events: list[tuple[str, str, str, httpx.Response | None]] = []

    async def on_request(self, request: httpx.Request) -> None:
        self.events.append(("request", request.method, request.url.path, None))

    async def on_response(self, response: httpx.Response) -> None:
        request = response.request
        self.events.append(("response", request.method, request.url.path, response))

    def clear(self) -> None:
        self.events.clear()

    def requests(self, method: str | None = None) -> list[str]:
        return [p for kind, m, p, _ in self.events if kind == "request" and method in (None, m)]

    def responses(self, status: int | None = None) -> list[httpx.Response]:
        return [
            r
            for kind, _, _, r in self.events
            if kind == "response" and r is not None and status in (None, r.status_code)
        ]


class RecordingSleep:
    """An adapter ``sleep=`` that records each delay and really sleeps it."""

    def __init__(self) -> None:
        self.calls: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)
        await asyncio.sleep(seconds)


def merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """``base`` updated by ``override``, nested dicts merged key by key."""
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def secret_fields(model: type[SupplierSettings]) -> list[str]:
    return [
        name
        for name, info in model.model_fields.items()
        if info.annotation is SecretStr or SecretStr in get_args(info.annotation)
    ]


def new_reference() -> str:
    return f"contract-{uuid.uuid4().hex[:20]}"


async def collect_catalog(adapter: SupplierAdapter) -> list[CatalogPage]:
    return [page async for page in adapter.iter_catalog()]


async def first_product(adapter: SupplierAdapter) -> Product:
    async with contextlib.aclosing(adapter.iter_catalog()) as pages:
        async for page in pages:
            if page.products:
                return page.products[0]
    pytest.fail("the sandbox catalog yielded no product")


async def orderable_line(
    adapter: SupplierAdapter, sandbox: SandboxClient
) -> tuple[Product, OrderLine]:
    """An in-stock product no earlier test of this sandbox ordered, and a one-unit line
    for it: a fixed variant when there is one, else a range variant at its ``face_min``.
    The best-stocked candidate of the first page that has one is chosen."""
    async with contextlib.aclosing(adapter.iter_catalog()) as pages:
        async for page in pages:
            candidates = [
                p
                for p in page.products
                if p.available
                and p.variants
                and (p.stock is None or p.stock >= 1)
                and p.id not in sandbox.ordered_products
            ]
            if not candidates:
                continue
            product = max(candidates, key=lambda p: 10**9 if p.stock is None else p.stock)
            sandbox.ordered_products.add(product.id)
            fixed = [v for v in product.variants if not v.is_range]
            if fixed:
                return product, OrderLine(variant_id=fixed[0].id, quantity=1)
            variant = product.variants[0]
            return product, OrderLine(
                variant_id=variant.id, quantity=1, face_value=variant.face_min
            )
    pytest.fail("no in-stock product in the sandbox catalog")


async def wait_until_final(
    adapter: SupplierAdapter, upstream_id: str, *, within: float
) -> UpstreamOrder:
    deadline = time.monotonic() + within
    while True:
        order = await adapter.get_order(upstream_id)
        if order.state.is_final:
            return order
        if time.monotonic() > deadline:
            pytest.fail(f"order {upstream_id} still {order.state} after {within} s")
        await asyncio.sleep(0.05)


def unknown_id_like(sample: str, known: set[str]) -> str:
    """An upstream id shaped like ``sample`` (so it passes format checks) that is not one."""
    if sample.isdigit():
        candidate = 987_654_321
        while str(candidate) in known:
            candidate += 1
        return str(candidate)
    try:
        uuid.UUID(sample)
    except ValueError:
        return f"{sample}zz" if f"{sample}zz" not in known else f"{sample}zzz"
    return str(uuid.uuid4())


def check_money(money: Money | None, where: str) -> None:
    if money is None:
        return
    assert type(money.amount) is int, f"{where}: amount {money.amount!r} is not an integer"
    assert money.amount >= 0, f"{where}: negative amount {money.amount}"
    assert money.currency in ISO_4217, f"{where}: {money.currency!r} is not an ISO 4217 code"


def check_variant(variant: Variant, product: Product) -> None:
    where = f"variant {variant.id}"
    assert variant.id.startswith(product.id + ":"), f"{where}: not under {product.id}"
    assert variant.id[len(product.id) + 1 :], f"{where}: empty variant key"
    for money in (variant.cost, variant.face_value, variant.face_min, variant.face_max):
        check_money(money, where)
    if variant.face_min is not None or variant.face_max is not None:
        assert variant.is_range, f"{where}: face_min and face_max go together"
        assert variant.face_min is not None and variant.face_max is not None
        assert variant.face_min.currency == variant.face_max.currency, where
        assert variant.face_min.amount <= variant.face_max.amount, where
    if variant.discount_percent is not None:
        assert Decimal(0) <= variant.discount_percent <= Decimal(100), where


def check_product(product: Product, name: str) -> None:
    assert product.supplier == name, f"{product.id}: supplier {product.supplier!r}"
    assert product.id == f"{name}:{product.upstream_id}", (
        f"product id {product.id!r} is not '{name}:<upstream id>'"
    )
    assert product.currency in ISO_4217, f"{product.id}: currency {product.currency!r}"
    assert product.variants, f"{product.id}: no variants"
    ids = [v.id for v in product.variants]
    assert len(ids) == len(set(ids)), f"{product.id}: duplicate variant ids"
    for variant in product.variants:
        check_variant(variant, product)


# -------------------------------------------------------------------- harness


class ContractHarness:
    """One test's view: the sandbox, a Redis client and key prefix, adapter factories."""

    def __init__(
        self,
        contract: type[AdapterContract],
        sandbox: SandboxClient,
        redis: Any,
        key_prefix: str,
    ) -> None:
        self.contract = contract
        self.adapter_class = contract.adapter_class
        self.sandbox = sandbox
        self.redis = redis
        self.key_prefix = key_prefix
        self.prefixes = {key_prefix}
        self._adapters: list[SupplierAdapter] = []
        self._clients: list[httpx.AsyncClient] = []

    def settings_values(self, **overrides: Any) -> dict[str, Any]:
        values = merge(
            self.adapter_class.sandbox_settings(self.sandbox.url), self.contract.contract_settings()
        )
        values = merge(values, self.contract.settings_overrides)
        return merge(values, overrides)

    def settings(self, **overrides: Any) -> SupplierSettings:
        return self.adapter_class.settings_model.model_validate(self.settings_values(**overrides))

    def adapter(
        self,
        settings: SupplierSettings | None = None,
        *,
        sleep: RecordingSleep | None = None,
        log: RequestLog | None = None,
        key_prefix: str | None = None,
    ) -> SupplierAdapter:
        """A fresh adapter with its own ``httpx.AsyncClient`` (closed after the test)."""
        hooks: dict[str, list[Any]] = {"request": [], "response": []}
        if log is not None:
            hooks = {"request": [log.on_request], "response": [log.on_response]}
        http = httpx.AsyncClient(event_hooks=hooks)
        self._clients.append(http)
        prefix = key_prefix or self.key_prefix
        self.prefixes.add(prefix)
        adapter = self.adapter_class(
            settings or self.settings(),
            http=http,
            redis=self.redis,
            key_prefix=prefix,
            sleep=sleep or asyncio.sleep,
        )
        self._adapters.append(adapter)
        return adapter

    def bad_credentials(self) -> dict[str, Any]:
        if self.contract.bad_credentials is not None:
            return dict(self.contract.bad_credentials)
        good = self.adapter_class.sandbox_settings(self.sandbox.url)
        wrong = {
            name: "wrong-" + (v.get_secret_value() if isinstance(v, SecretStr) else str(v))
            for name, v in good.items()
            if name in secret_fields(self.adapter_class.settings_model)
        }
        if not wrong:
            pytest.fail(
                f"{self.adapter_class.__name__}.sandbox_settings() has no SecretStr credential "
                "field to falsify: declare credentials as SecretStr, or set bad_credentials"
            )
        return wrong

    async def aclose(self) -> None:
        for adapter in self._adapters:
            await adapter.aclose()
        for http in self._clients:
            await http.aclose()
        for prefix in self.prefixes:
            batch = [key async for key in self.redis.scan_iter(match=f"{prefix}:*", count=1000)]
            if batch:
                await self.redis.delete(*batch)
