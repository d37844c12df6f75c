"""Shared pieces of the order tests: sandboxes on loopback, settings pointing at them, a
catalog over the sandboxes' real products, gateways (in-process or as subprocesses).

The catalog the order tests validate against is ``PricedCatalog`` (the same pricing code
the gateway wires to its catalog service) over the products the adapters read from the
sandboxes, so the tests do not depend on a catalog sync having run.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from adapters.base import SupplierAdapter
from adapters.models import Product, Variant
from adapters.registry import discover
from adapters.sandbox_server import BackgroundServer
from gateway.catalog.canonical import Collected, offer_book
from gateway.catalog.matching import Matcher
from gateway.orders.ports import PricedCatalog
from gateway.pricing import MarkupRule, PriceList
from gateway.settings import AccountSettings, OrderSettings, Settings
from tests.support.net import free_port
from tests.support.settings import ENCRYPTION_KEY, gateway_settings

ROOT = Path(__file__).resolve().parents[2]
SUPPLIERS = ("gaming_goods", "vouchers")
GENEROUS_LIMITS = {
    "gaming_goods": {"default": (1_000_000, 60.0)},
    "vouchers": {
        "login": (1_000_000, 60.0),
        "reads": (1_000_000, 60.0),
        "orders": (1_000_000, 60.0),
        "charges": (1_000_000, 60.0),
    },
}


@dataclass
class Sandboxes:
    servers: dict[str, BackgroundServer]

    def url(self, name: str) -> str:
        return self.servers[name].url

    async def purchases(self, name: str) -> list[dict[str, Any]]:
        async with httpx.AsyncClient() as client:
            response = await client.get(self.url(name) + "/_sandbox/orders")
            return list(response.json()["orders"])

    async def set_faults(self, name: str, **faults: Any) -> None:
        async with httpx.AsyncClient() as client:
            response = await client.put(self.url(name) + "/_sandbox/faults", json=faults)
            response.raise_for_status()

    async def reset(self) -> None:
        async with httpx.AsyncClient() as client:
            for name in self.servers:
                await client.post(self.url(name) + "/_sandbox/reset")

    def stop(self) -> None:
        for server in self.servers.values():
            server.stop()

    def record_paths(self, name: str, monkeypatch: pytest.MonkeyPatch) -> list[str]:
        """The paths of the upstream calls sandbox ``name`` receives from now on, until
        the test ends, each noted as it arrives: before the sandbox's injected latency,
        so a test can wait until a call is *in flight* instead of sleeping and hoping.

        The sandboxes run in this process (``BackgroundServer``): the recorder wraps the
        check every non-control request passes once (``SandboxControl.applies``)."""
        control = self.servers[name].app.state.control  # type: ignore[attr-defined]
        seen: list[str] = []
        applies = control.applies

        def recording(path: str) -> bool:
            seen.append(path)  # from the sandbox's thread; list.append is atomic
            return bool(applies(path))

        monkeypatch.setattr(control, "applies", recording)
        return seen


def start_sandboxes(*, catalog_size: int = 60, fulfil_delay: float = 0.05) -> Sandboxes:
    adapters = discover()
    servers = {
        name: BackgroundServer(
            adapters[name].create_sandbox(
                catalog_size=catalog_size,
                seed=7,
                fulfil_delay=fulfil_delay,
                rate_limits=GENEROUS_LIMITS[name],
            )
        ).start()
        for name in SUPPLIERS
    }
    return Sandboxes(servers)


def supplier_settings(sandboxes: Sandboxes, **overrides: Any) -> dict[str, dict[str, Any]]:
    """Each supplier pointed at its sandbox, with fast retries and short timeouts so that
    faults resolve within a test's time, and no client-side rate limiting to speak of."""
    adapters = discover()
    values: dict[str, dict[str, Any]] = {}
    for name in SUPPLIERS:
        limits = {
            bucket: {"limit": 1_000_000, "period_seconds": 60}
            for bucket in adapters[name].rate_limits
        }
        values[name] = {
            **adapters[name].sandbox_settings(sandboxes.url(name)),
            "timeouts": {"connect": 1.0, "read": 1.0, "total": 2.0},
            "retries": {
                "max_attempts": 3,
                "max_total_seconds": 3.0,
                "backoff_base": 0.02,
                "backoff_max": 0.1,
            },
            "breaker": {"failure_threshold": 1000, "reset_timeout": 1.0},
            "rate_limits": limits,
            "reconcile_attempts": 3,
            "reconcile_delay": 0.05,
            **overrides,
        }
    return values


def order_settings(**overrides: Any) -> OrderSettings:
    values: dict[str, Any] = {
        "encryption_keys": [ENCRYPTION_KEY],
        "job_lease_seconds": 1.0,
        "schedule_poll_seconds": 0.02,
        "poll_initial_seconds": 0.05,
        "poll_max_seconds": 0.3,
        "retry_initial_seconds": 0.05,
        "retry_max_seconds": 0.3,
        "webhook_backoff_seconds": 0.05,
        "webhook_backoff_max_seconds": 0.3,
        "webhook_allow_private_targets": True,  # the receivers listen on loopback
        "shutdown_grace_seconds": 1.0,
        "worker_concurrency": 16,
    }
    values.update(overrides)
    return OrderSettings(**values)


def make_settings(
    redis_url: str,
    key_prefix: str,
    sandboxes: Sandboxes,
    *,
    orders: OrderSettings | None = None,
    suppliers: dict[str, dict[str, Any]] | None = None,
    accounts: AccountSettings | None = None,
) -> Settings:
    """Settings for order tests. Accounts are not enforced unless ``accounts`` says so:
    these tests are about orders; tests/orders/test_accounts_*.py enforce them."""
    return gateway_settings(
        redis_url,
        key_prefix,
        accounts=accounts or AccountSettings(enforce=False),
        log_json=True,
        suppliers=suppliers or supplier_settings(sandboxes),
        orders=orders or order_settings(),
    )


async def load_products(adapters: dict[str, SupplierAdapter]) -> list[Product]:
    products: list[Product] = []
    for adapter in adapters.values():
        async for page in adapter.iter_catalog():
            products.extend(page.products)
    return products


@functools.cache
def _matcher() -> Matcher:
    """The shipped brand table, no overrides (read once per test session)."""
    return Matcher.from_files(None, None)


def static_catalog(products: Iterable[Product], prices: PriceList | None = None) -> PricedCatalog:
    """The products as the orders service sees a catalog, canonical variants included:
    their offers come from the catalog's own matcher and offer book over ``products``
    (shipped brand table, no overrides), as ``CatalogService`` builds them."""
    by_id = {product.id: product for product in products}
    prices = prices or PriceList(MarkupRule(percent=10))
    collected = Collected(_matcher())  # the index build's own pass, without the index
    for product in by_id.values():
        collected.see(product)
    book = offer_book(collected)

    def offers(variant_id: str) -> list[tuple[Product, Variant]] | None:
        return book.live_offers(variant_id, by_id.get)

    return PricedCatalog(
        find=by_id.get,
        prices=prices,
        offers=offers,
        match_key=book.key,
    )


@dataclass
class Picks:
    """Products the tests order, chosen from the sandbox catalogs."""

    voucher_fixed: str = ""
    voucher_range: str = ""
    voucher_range_min: int = 0
    voucher_range_max: int = 0
    voucher_range_currency: str = ""
    game_key: str = ""
    game_keys: list[str] = field(default_factory=list)


def pick(products: list[Product]) -> Picks:
    picks = Picks()
    games: list[tuple[int, str]] = []
    for product in products:
        if not product.available:
            continue
        for variant in product.variants:
            if product.supplier == "vouchers":
                if variant.is_range and not picks.voucher_range:
                    assert variant.face_min is not None and variant.face_max is not None
                    picks.voucher_range = variant.id
                    picks.voucher_range_min = variant.face_min.amount
                    picks.voucher_range_max = variant.face_max.amount
                    picks.voucher_range_currency = variant.face_min.currency
                elif not variant.is_range and not picks.voucher_fixed:
                    picks.voucher_fixed = variant.id
            elif product.stock is None or product.stock >= 10:
                games.append((product.stock or 1000, variant.id))
    picks.game_keys = [variant for _, variant in sorted(games, reverse=True)]
    picks.game_key = picks.game_keys[0]
    return picks


# --------------------------------------------------------------- subprocesses


def settings_environment(settings: Settings) -> dict[str, str]:
    """The environment a gateway or worker subprocess reads the same settings from."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    env.update(
        {
            "GATEWAY_REDIS_URL": settings.redis_url or "",
            "GATEWAY_KEY_PREFIX": settings.key_prefix,
            "GATEWAY_SANDBOX": "off",
            "GATEWAY_LOG_LEVEL": "WARNING",
            "GATEWAY_SUPPLIERS": json.dumps(settings.suppliers),
            "GATEWAY_ORDERS": json.dumps(
                {
                    **settings.orders.model_dump(mode="json", exclude={"encryption_keys"}),
                    "encryption_keys": [
                        k.get_secret_value() for k in settings.orders.encryption_keys
                    ],
                }
            ),
            "GATEWAY_ACCOUNTS": settings.accounts.model_dump_json(),
            "PYTHONPATH": f"{ROOT}{os.pathsep}{ROOT / 'tests' / 'orders'}",
        }
    )
    return env


@dataclass
class Process:
    popen: subprocess.Popen[bytes]
    url: str | None = None

    def kill(self) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGKILL)
            self.popen.wait(10)

    def terminate(self) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()


async def cli(settings: Settings, *args: str) -> Any:
    """``gateway <args>`` through click's runner, with the environment a subprocess of
    ``settings`` would read (a ``click.testing.Result``)."""
    from click.testing import CliRunner

    from gateway.cli import main

    env = {k: v for k, v in settings_environment(settings).items() if k.startswith("GATEWAY_")}
    return await asyncio.to_thread(CliRunner().invoke, main, list(args), env=env)


def start_worker(settings: Settings, log_path: Path) -> Process:
    """``gateway worker`` as its own process."""
    log = log_path.open("ab")
    popen = subprocess.Popen(
        [sys.executable, "-c", "from gateway.cli import main; main()", "worker"],
        env=settings_environment(settings),
        stdout=log,
        stderr=log,
        cwd=ROOT,
    )
    return Process(popen)


async def start_gateway(settings: Settings, log_path: Path) -> Process:
    """A gateway instance as its own uvicorn process (``instance_app.create``: the real
    app, with the catalog over the sandboxes' products)."""
    port = free_port()
    log = log_path.open("ab")
    popen = subprocess.Popen(  # noqa: ASYNC220 - started once, before the test's traffic
        [
            sys.executable,
            "-m",
            "uvicorn",
            "instance_app:create",
            "--factory",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--log-level",
            "warning",
            "--no-access-log",
        ],
        env=settings_environment(settings),
        stdout=log,
        stderr=log,
        cwd=ROOT,
    )
    process = Process(popen, f"http://127.0.0.1:{port}")
    deadline = time.monotonic() + 30
    async with httpx.AsyncClient() as client:
        while time.monotonic() < deadline:
            if popen.poll() is not None:
                raise RuntimeError(f"gateway process exited: see {log_path}")
            with contextlib.suppress(httpx.HTTPError):
                if (await client.get(process.url + "/healthz")).status_code == 200:
                    ready = await client.get(process.url + "/_test/ready")
                    if ready.status_code == 200:
                        return process
            await asyncio.sleep(0.1)
    process.kill()
    raise RuntimeError(f"gateway process did not start: see {log_path}")


async def wait_until(predicate: Any, seconds: float, interval: float = 0.05) -> Any:
    deadline = time.monotonic() + seconds
    while True:
        value = await predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            return value
        await asyncio.sleep(interval)


@contextlib.asynccontextmanager
async def client_for(url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        yield client


# ----------------------------------------------------------------- webhooks


@dataclass
class WebhookReceiver:
    """A reseller's webhook endpoint on loopback: records every request; answers the
    statuses in ``script`` in turn (then 200)."""

    server: BackgroundServer
    received: list[tuple[dict[str, str], bytes]]
    script: list[int]

    @property
    def url(self) -> str:
        return self.server.url + "/hooks/orders"


def start_receiver(script: Iterable[int] = ()) -> WebhookReceiver:
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    received: list[tuple[dict[str, str], bytes]] = []
    statuses = list(script)

    async def hook(request: Request) -> Response:
        received.append((dict(request.headers), await request.body()))
        return Response(status_code=statuses.pop(0) if statuses else 200)

    app = Starlette(routes=[Route("/hooks/orders", hook, methods=["POST"])])
    return WebhookReceiver(BackgroundServer(app).start(), received, statuses)
