"""Fixtures for the catalog service tests: both supplier sandboxes on real loopback ports
(shared by the session, faults reset around every test), adapters pointed at them with
fast retries and a generous client-side rate limit, and catalog services over the
test's own Redis key prefix."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from adapters.base import SupplierAdapter
from adapters.registry import discover
from adapters.sandbox_kit import Faults, SandboxControl
from adapters.sandbox_server import BackgroundServer
from gateway.catalog.service import CatalogService
from gateway.pricing import MarkupRule
from gateway.redis_keys import RedisKeys
from gateway.settings import CatalogSettings, Settings
from tests.support.keys import issue_key_in
from tests.support.settings import gateway_settings

GG = "gaming_goods"
VO = "vouchers"
#: Products per sandbox: several pages each at the page sizes below, yet fast.
SIZES = {GG: 120, VO: 70}
PAGE_SIZES = {GG: 20, VO: 25}
UNLIMITED = 1_000_000


@dataclass
class Sandbox:
    name: str
    server: BackgroundServer
    control: SandboxControl

    @property
    def url(self) -> str:
        return self.server.url

    def faults(self, **values: Any) -> None:
        self.control.set_faults(Faults(**values))

    @property
    def requests(self) -> int:
        return self.control.stats["requests"]


def start_sandbox(name: str, **options: Any) -> Sandbox:
    cls = discover()[name]
    limits = {bucket: (UNLIMITED, 60.0) for bucket in cls.rate_limits}
    options.setdefault("rate_limits", limits)
    options.setdefault("catalog_size", SIZES[name])
    app = cls.create_sandbox(**options)
    return Sandbox(name, BackgroundServer(app).start(), app.state.control)


@pytest.fixture(scope="session")
def sandbox_servers() -> Iterator[dict[str, Sandbox]]:
    boxes = {name: start_sandbox(name, seed=7) for name in (GG, VO)}
    yield boxes
    for box in boxes.values():
        box.server.stop()


@pytest.fixture
def sandboxes(sandbox_servers: dict[str, Sandbox]) -> Iterator[dict[str, Sandbox]]:
    for box in sandbox_servers.values():
        box.control.reset()
    yield sandbox_servers
    for box in sandbox_servers.values():
        box.control.reset()


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as client:
        yield client


AdapterFactory = Callable[..., SupplierAdapter]


@pytest.fixture
def make_adapter(http: httpx.AsyncClient, redis: Any, key_prefix: str) -> AdapterFactory:
    """``make_adapter(name, url, **settings)``: a real adapter against a sandbox URL."""

    def make(name: str, url: str, **overrides: Any) -> SupplierAdapter:
        cls = discover()[name]
        settings = cls.settings_model.model_validate(adapter_values(name, url, **overrides))
        return cls(settings, http=http, redis=redis, key_prefix=key_prefix)

    return make


@pytest.fixture
def adapters(
    sandboxes: dict[str, Sandbox], make_adapter: AdapterFactory
) -> dict[str, SupplierAdapter]:
    return {name: make_adapter(name, box.url) for name, box in sandboxes.items()}


def catalog_settings(**overrides: Any) -> CatalogSettings:
    values: dict[str, Any] = {
        "snapshot_poll_seconds": 0.05,
        "sync_interval_seconds": 3600,
        "sync_lock_seconds": 30,
        **overrides,
    }
    return CatalogSettings(**values)


ServiceFactory = Callable[..., CatalogService]


@pytest.fixture
async def make_service(redis: Any, key_prefix: str) -> AsyncIterator[ServiceFactory]:
    """``make_service(adapters, settings=None, **kw)``; every service is stopped after."""
    made: list[CatalogService] = []

    def make(
        adapters: dict[str, SupplierAdapter],
        settings: CatalogSettings | None = None,
        **kwargs: Any,
    ) -> CatalogService:
        kwargs.setdefault("sync_enabled", False)
        service = CatalogService(
            redis=redis,
            keys=RedisKeys(key_prefix),
            adapters=adapters,
            settings=settings or catalog_settings(),
            **kwargs,
        )
        made.append(service)
        return service

    yield make
    for service in made:
        await service.stop()


def adapter_values(name: str, url: str, **overrides: Any) -> dict[str, Any]:
    """Raw supplier settings (as in the config file) for a sandbox at ``url``."""
    cls = discover()[name]
    return {
        **cls.sandbox_settings(url),
        "page_size": PAGE_SIZES[name],
        "retries": {
            "max_attempts": 2,
            "backoff_base": 0.01,
            "backoff_max": 0.02,
            "max_total_seconds": 1.0,
        },
        "timeouts": {"connect": 1.0, "read": 2.0, "total": 3.0},
        "rate_limits": {
            bucket: {"limit": UNLIMITED, "period_seconds": 60} for bucket in cls.rate_limits
        },
        **overrides,
    }


def catalog_gateway_settings(
    sandboxes: dict[str, Sandbox], key_prefix: str, redis_url: str, **catalog: Any
) -> Settings:
    """Full gateway settings pointing at the sandboxes, for apps built by ``create_app``."""
    return gateway_settings(
        redis_url,
        key_prefix,
        log_json=False,
        log_level="WARNING",
        suppliers={name: adapter_values(name, box.url) for name, box in sandboxes.items()},
        catalog=catalog_settings(**catalog),
        orders={"inline_workers": False},  # the catalog tests place no orders
    )


async def reader_token(redis: Any, key_prefix: str, *, markup: MarkupRule | None = None) -> str:
    """A reseller (with ``markup``) and a ``catalog:read`` key for it; returns the key.
    Its rate limit is far above anything a test sends."""
    caller = await issue_key_in(
        redis, key_prefix, scopes=["catalog:read"], rate_limit=UNLIMITED, markup=markup
    )
    return caller.token


def in_process_app(
    redis: Any,
    key_prefix: str,
    adapters: dict[str, SupplierAdapter],
    service: CatalogService,
    http: httpx.AsyncClient,
) -> Any:
    """The real app (access guard, error face, catalog routes) over a gateway holding
    ``service``, for ``httpx.ASGITransport`` (which runs no lifespan: the state the
    lifespan would set is set here; the test starts ``service`` itself)."""
    from gateway.access.service import Access
    from gateway.accounts.service import AccountsService
    from gateway.app import create_app
    from gateway.bootstrap import Gateway, Services
    from gateway.orders.wiring import build_orders_service

    settings = gateway_settings("redis://in-process", key_prefix)
    keys = RedisKeys(key_prefix)
    access = Access.build(redis, keys, settings.access)
    accounts = AccountsService(redis, keys, settings)
    orders = build_orders_service(
        settings,
        redis=redis,
        keys=keys,
        adapters=adapters,
        catalog=service,
        access=access,
        accounts=accounts,
    )
    gateway = Gateway(
        settings=settings,
        redis=redis,
        keys=keys,
        http=http,
        adapters=adapters,
        services=Services(access=access, catalog=service, accounts=accounts, orders=orders),
        _owns_http=False,
    )
    app = create_app(gateway=gateway)
    app.state.gateway = gateway
    app.state.access = gateway.services.access
    return app
