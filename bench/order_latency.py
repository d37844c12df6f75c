"""What a reseller waits for one instant order: through the gateway vs the supplier direct.

One voucher of a fixed face value (quantity 1: the voucher supplier delivers up to five
inline, in its create response), created

* through the gateway: ``POST /v1/orders`` with ``Prefer: wait=5`` and a new
  ``Idempotency-Key``, answered 201 with the codes (authentication, rate limit,
  idempotency claim, catalog validation, the durable write with its placement job and
  the hold on the reseller's funded account, the in-process worker's placement, the
  commit with the capture, the stored answer);
* directly: ``POST /api/v1/orders`` on the voucher sandbox with a new ``client_reference``
  (what the gateway's worker itself sends),

in the same run, alternating one call of each so both see the same machine. The gateway
is the real app (``gateway.app:create_app``) in its own uvicorn process, with its real
catalog synced from the sandbox, on the Redis at ``REDIS_URL`` (keys under a throw-away
prefix, deleted afterwards); the sandbox is served from this process on loopback. Both
clients are ``httpx.AsyncClient`` with keep-alive. ``BENCH_ORDERS`` sets the number of
measured orders per path (default 400, after 40 warm-up each).

Target (issue 5): the gateway adds at most 5 ms at p50.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import redis.asyncio as aioredis
from cryptography.fernet import Fernet

from adapters.ids import parse_variant_id
from adapters.models import OrderLine, currency_exponent
from adapters.sandbox_server import BackgroundServer
from adapters.vouchers import VouchersAdapter

TARGET_ADDED_P50_MS = 5.0
WARMUP = 40
GENEROUS = {"login": (10**6, 60.0), "reads": (10**6, 60.0), "orders": (10**6, 60.0),
            "charges": (10**6, 60.0)}  # fmt: skip
ROOT = Path(__file__).resolve().parents[1]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


def _environment(redis_url: str, prefix: str, sandbox_url: str) -> dict[str, str]:
    supplier = {
        **VouchersAdapter.sandbox_settings(sandbox_url),
        "rate_limits": {b: {"limit": 10**6, "period_seconds": 60} for b in GENEROUS},
    }
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    env.update(
        {
            "GATEWAY_REDIS_URL": redis_url,
            "GATEWAY_KEY_PREFIX": prefix,
            "GATEWAY_SANDBOX": "off",
            "GATEWAY_LOG_LEVEL": "WARNING",
            "GATEWAY_SUPPLIERS": json.dumps({"vouchers": supplier}),
            "GATEWAY_ORDERS": json.dumps({"encryption_keys": [Fernet.generate_key().decode()]}),
            "PYTHONPATH": str(ROOT),
        }
    )
    return env


async def _wait_ready(url: str, setup: _Setup) -> None:
    deadline = time.monotonic() + 60
    async with httpx.AsyncClient() as client:
        while time.monotonic() < deadline:
            if setup.process.poll() is not None:
                raise RuntimeError(f"the gateway exited: {setup.failure()}")
            with contextlib.suppress(httpx.HTTPError):
                if (await client.get(url + "/readyz")).status_code == 200:
                    return
            await asyncio.sleep(0.2)
    raise RuntimeError("the gateway did not become ready (catalog not loaded?)")


async def _reseller_key(redis: Any, prefix: str) -> tuple[str, str]:
    """A bench reseller and its key: (reseller id, key)."""
    from gateway.access.store import KeyStore
    from gateway.redis_keys import RedisKeys

    store = KeyStore(redis, RedisKeys(prefix))
    created = await store.create_reseller("bench")
    issued = await store.create_key(
        created.reseller.id,
        scopes=["catalog:read", "orders:write", "orders:read"],
        rate_limit=10**6,
    )
    return created.reseller.id, issued.token.get_secret_value()


async def _fund(redis: Any, prefix: str, reseller_id: str, currency: str) -> None:
    """Fund the reseller's account: every bench order is held and captured on it (the
    default, ``accounts.enforce``), as a production order is."""
    from gateway.accounts.models import EntryKind
    from gateway.accounts.store import AccountStore
    from gateway.redis_keys import RedisKeys

    store = AccountStore(redis, RedisKeys(prefix))
    await store.post(reseller_id, currency, EntryKind.TOPUP, 10**14, "bench-funding")


async def _pick_voucher(gateway: httpx.AsyncClient, headers: dict[str, str]) -> dict[str, Any]:
    """A fixed-face voucher variant from the gateway's own catalog."""
    page = 1
    while True:
        response = await gateway.get(
            "/v1/products", params={"supplier": "vouchers", "page": page, "page_size": 100},
            headers=headers,
        )  # fmt: skip
        products = response.json()["data"]["products"]
        if not products:
            raise RuntimeError("no fixed-face voucher in the catalog")
        for product in products:
            if not product["in_stock"]:
                continue
            for variant in product["variants"]:
                if variant["face_value"] is not None and variant["price"] is not None:
                    return variant
        page += 1


class _Setup:
    """The sandbox (a thread here) and the gateway (its own process), started and stopped
    outside the event loop that measures."""

    def __init__(self) -> None:
        self.redis_url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
        self.prefix = f"bench-{secrets.token_hex(4)}"
        self.sandbox = BackgroundServer(
            VouchersAdapter.create_sandbox(catalog_size=200, seed=3, rate_limits=GENEROUS)
        ).start()
        self.url = f"http://127.0.0.1:{_free_port()}"
        self.log = Path(tempfile.mkstemp(prefix="order-latency-", suffix=".log")[1])
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "uvicorn", "gateway.app:create_app", "--factory",
                 "--host", "127.0.0.1", "--port", self.url.rsplit(":", 1)[1],
                 "--log-level", "warning", "--no-access-log"],
                env=_environment(self.redis_url, self.prefix, self.sandbox.url),
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=ROOT,
            )  # fmt: skip

    def close(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(15)
        except subprocess.TimeoutExpired:
            self.process.kill()
        self.sandbox.stop()
        self.log.unlink(missing_ok=True)

    def failure(self) -> str:
        return self.log.read_text()[-2000:]


async def _measure(setup: _Setup, n: int) -> dict[str, Any]:
    redis = aioredis.Redis.from_url(setup.redis_url)
    sandbox, url = setup.sandbox, setup.url
    try:
        await _wait_ready(url, setup)
        reseller_id, token = await _reseller_key(redis, setup.prefix)
        auth = {"Authorization": f"Bearer {token}"}
        limits = httpx.Limits(max_keepalive_connections=4)
        async with (
            httpx.AsyncClient(base_url=url, limits=limits, timeout=30) as gateway,
            httpx.AsyncClient(base_url=sandbox.url, limits=limits, timeout=30) as direct,
        ):
            variant = await _pick_voucher(gateway, auth)
            await _fund(redis, setup.prefix, reseller_id, variant["price"]["currency"])
            credentials = VouchersAdapter.sandbox_settings(sandbox.url)
            login = await direct.post(
                "/auth/login",
                json={"username": credentials["api_key"], "password": credentials["api_secret"]},
            )
            bearer = {"Authorization": f"Bearer {login.json()['access_token']}"}
            face = variant["face_value"]
            denomination = Decimal(face["amount"]).scaleb(-currency_exponent(face["currency"]))
            ref = parse_variant_id(variant["id"])
            assert ref is not None, variant["id"]
            upstream_id = int(ref.upstream_id)
            gateway_body = {"items": [{"variant_id": variant["id"], "quantity": 1}]}

            async def via_gateway() -> float:
                headers = {**auth, "Idempotency-Key": str(uuid.uuid4()), "Prefer": "wait=5"}
                started = time.perf_counter()
                response = await gateway.post("/v1/orders", json=gateway_body, headers=headers)
                elapsed = time.perf_counter() - started
                data = response.json().get("data", {})
                if response.status_code != 201 or not data["items"][0].get("codes"):
                    raise RuntimeError(f"gateway answered {response.status_code}: {response.text}")
                return elapsed

            async def via_supplier() -> float:
                body = {"product_id": upstream_id, "denomination": float(denomination),
                        "quantity": 1, "client_reference": uuid.uuid4().hex}  # fmt: skip
                started = time.perf_counter()
                response = await direct.post("/api/v1/orders", json=body, headers=bearer)
                elapsed = time.perf_counter() - started
                if response.status_code != 201 or not response.json().get("vouchers"):
                    raise RuntimeError(f"sandbox answered {response.status_code}")
                return elapsed

            adapter = VouchersAdapter(
                VouchersAdapter.settings_model.model_validate(
                    {
                        **credentials,
                        "rate_limits": {
                            b: {"limit": 10**6, "period_seconds": 60} for b in GENEROUS
                        },
                    }
                ),
                http=direct,
                redis=redis,
                key_prefix=setup.prefix,
            )
            line = OrderLine(variant_id=variant["id"], quantity=1)

            async def via_adapter() -> float:
                started = time.perf_counter()
                placed = await adapter.place_order(uuid.uuid4().hex[:32], [line])
                elapsed = time.perf_counter() - started
                if not placed.codes:
                    raise RuntimeError("the adapter's order has no codes")
                return elapsed

            for _ in range(WARMUP):
                await via_gateway()
                await via_supplier()
                await via_adapter()
            stats_before = (await direct.get("/_sandbox/stats")).json()["requests"]
            through: list[float] = []
            for _ in range(n):
                through.append(await via_gateway())
            stats_after = (await direct.get("/_sandbox/stats")).json()["requests"]
            straight: list[float] = []
            adapted: list[float] = []
            for _ in range(n):
                through.append(await via_gateway())
                straight.append(await via_supplier())
                adapted.append(await via_adapter())
    finally:
        async for key in redis.scan_iter(match=f"{setup.prefix}:*", count=1000):
            await redis.delete(key)
        await redis.aclose()

    def summary(samples: list[float]) -> dict[str, float]:
        ms = [s * 1000 for s in samples]
        return {
            "p50_ms": statistics.median(ms),
            "p99_ms": _percentile(ms, 0.99),
            "mean_ms": statistics.fmean(ms),
        }

    return {
        "orders": n,
        "gateway": summary(through[n:]),
        "direct": summary(straight),
        "adapter": summary(adapted),
        "upstream_requests_per_gateway_order": (stats_after - stats_before) / n,
    }


def run() -> dict[str, Any]:
    n = int(os.environ.get("BENCH_ORDERS", "400"))
    setup = _Setup()
    try:
        result = asyncio.run(_measure(setup, n))
    finally:
        setup.close()
    gateway, direct = result["gateway"], result["direct"]
    added = gateway["p50_ms"] - direct["p50_ms"]
    verdict = "PASS" if added <= TARGET_ADDED_P50_MS else "MISS"
    print(f"one instant voucher order, {n} each, alternating (ms):")
    print(f"{'path':<34} {'p50':>8} {'p99':>8} {'mean':>8}")
    print(f"{'gateway (Prefer: wait=5, 201)':<34} {gateway['p50_ms']:>8.2f} "
          f"{gateway['p99_ms']:>8.2f} {gateway['mean_ms']:>8.2f}")  # fmt: skip
    print(f"{'voucher sandbox directly':<34} {direct['p50_ms']:>8.2f} "
          f"{direct['p99_ms']:>8.2f} {direct['mean_ms']:>8.2f}")  # fmt: skip
    adapter = result["adapter"]
    print(f"{'  (adapter.place_order alone)':<34} {adapter['p50_ms']:>8.2f} "
          f"{adapter['p99_ms']:>8.2f} {adapter['mean_ms']:>8.2f}")  # fmt: skip
    print(
        f"added at p50: {added:.2f} ms (target <= {TARGET_ADDED_P50_MS} ms) -> {verdict}; "
        f"added at p99: {gateway['p99_ms'] - direct['p99_ms']:.2f} ms"
    )
    by_adapter = adapter["p50_ms"] - direct["p50_ms"]
    print(
        f"of which the voucher adapter (its own calls before the order): {by_adapter:.2f} ms; "
        f"the gateway around it: {added - by_adapter:.2f} ms; upstream requests per gateway "
        f"order: {result['upstream_requests_per_gateway_order']:.1f} (direct: 1)"
    )
    result.update(
        added_p50_ms=added,
        added_by_adapter_p50_ms=by_adapter,
        target_added_p50_ms=TARGET_ADDED_P50_MS,
        verdict=verdict,
    )
    return result
