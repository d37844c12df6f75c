"""What the HTTP benchmarks share: the gateway run as ``gateway serve`` runs it, other
servers, a catalog snapshot published into Redis, a reseller key, and the load.

``served_gateway`` starts the real command (``python -m gateway.cli serve``) with the
shipped defaults (INFO, JSON access log, inline order workers, metrics, authentication
and the per-key limiter) against a real Redis, under a throw-away key prefix; its output
goes to a file, as it would to a log collector's pipe. Only what a benchmark cannot do
without is set: the Redis URL and prefix, an encryption key (required with a real
Redis), the port, and one supplier (``vouchers``, pointed at a closed loopback port)
whose catalog is a synthetic snapshot published into Redis beforehand, with a sync
status saying it was synced just now, so the gateway loads it at start-up and no sync
runs during the benchmark.
"""

from __future__ import annotations

import asyncio
import bisect
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import httpx
from cryptography.fernet import Fernet

from adapters.models import Product
from gateway.observability.process_memory import memory_mb

CONNECTIONS = 32
SERVER_CPU, CLIENT_CPU = 0, 1
SUPPLIER = "vouchers"


def pinned(cpu: int, command: list[str]) -> list[str]:
    """``command`` bound to one CPU when the machine has two or more and ``taskset`` is
    there: server and client then never compete for a core or migrate between them,
    which is most of this benchmark's run-to-run noise on a small VM. Every server is
    pinned alike, so the ratios compare like with like (``BENCH_PIN=0``: not pinned)."""
    if os.environ.get("BENCH_PIN", "1") == "0" or (os.cpu_count() or 1) < 2:
        return command
    if shutil.which("taskset") is None:
        return command
    return ["taskset", "-c", str(cpu), *command]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def redis_url() -> str:
    return os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")


def new_prefix(name: str) -> str:
    return f"bench-{name}-{uuid.uuid4().hex[:8]}"


class Server:
    """One server process on loopback; ``log`` holds its standard output and error."""

    def __init__(self, command: list[str], env: dict[str, str], port: int) -> None:
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.log = Path(tempfile.mkstemp(prefix="bench-server-", suffix=".log")[1])
        # The caller's own gateway settings stay out: every server is configured here.
        base = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
        with self.log.open("wb") as out:
            self.process = subprocess.Popen(
                pinned(SERVER_CPU, command),
                env={**base, **env},
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    @classmethod
    def factory(cls, factory: str, env: dict[str, str]) -> Server:
        """A uvicorn process serving an app factory of ``bench._http_apps`` (lab rows)."""
        port = free_port()
        command = [
            sys.executable, "-m", "uvicorn", f"bench._http_apps:{factory}", "--factory",
            "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
            "--no-access-log", "--log-level", "warning",
        ]  # fmt: skip
        return cls(command, env, port)

    def wait(self, path: str, headers: dict[str, str], within: float = 300.0) -> None:
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                tail = self.log.read_text(errors="replace")[-2000:]
                raise RuntimeError(f"server {self.url} exited ({self.process.returncode}): {tail}")
            try:
                if httpx.get(self.url + path, headers=headers, timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"server {self.url} did not answer {path} in time")

    def rss_mb(self) -> dict[str, float]:
        """The server process's resident memory now and at its peak (``/proc``)."""
        memory = memory_mb(self.process.pid)  # taskset execs the command: the same pid
        return {"rss_mb": memory.get("VmRSS", 0.0), "peak_mb": memory.get("VmHWM", 0.0)}

    def lines(self) -> list[str]:
        return self.log.read_text(errors="replace").splitlines()

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def remove_log(self) -> None:
        self.log.unlink(missing_ok=True)


def served_gateway(prefix: str, extra_env: dict[str, str] | None = None) -> Server:
    """``gateway serve`` with the shipped defaults; ``extra_env`` for lab variants. Its
    standard output and error go to ``server.log`` (a file: not a terminal, so JSON)."""
    port = free_port()
    env = {
        "GATEWAY_REDIS_URL": redis_url(),
        "GATEWAY_KEY_PREFIX": prefix,
        "GATEWAY_HTTP__HOST": "127.0.0.1",
        "GATEWAY_HTTP__PORT": str(port),
        "GATEWAY_ORDERS__ENCRYPTION_KEYS": f'["{Fernet.generate_key().decode()}"]',
        "GATEWAY_SANDBOX": "off",
        f"GATEWAY_SUPPLIERS__{SUPPLIER.upper()}__BASE_URL": f"http://127.0.0.1:{free_port()}",
        f"GATEWAY_SUPPLIERS__{SUPPLIER.upper()}__API_KEY": "bench-unused",
        f"GATEWAY_SUPPLIERS__{SUPPLIER.upper()}__API_SECRET": "bench-unused",
        **(extra_env or {}),
    }
    # The installed ``gateway`` command, as an operator runs it.
    command = [str(Path(sys.executable).with_name("gateway")), "serve"]
    return Server(command, env, port)


async def stage_snapshot(
    prefix: str, products: Iterable[Product], version: int, *, supplier: str = SUPPLIER
) -> int:
    """Write ``products`` as ``supplier``'s version ``version``, not yet visible (the
    slow part of publishing: encoding); returns the number of products written."""
    import redis.asyncio as aioredis

    from gateway.catalog.snapshot import SnapshotStore
    from gateway.redis_keys import RedisKeys

    client = aioredis.Redis.from_url(redis_url())
    try:
        store = SnapshotStore(client, RedisKeys(prefix))
        writer = store.writer(supplier, version, staging_ttl_seconds=3600)
        await writer.add(products)
        meta = await writer.finish(pages=1)
        return meta.products
    finally:
        await client.aclose()


async def publish_staged(
    prefix: str, version: int, products: int, *, supplier: str = SUPPLIER
) -> None:
    """Make a staged version current, with a sync status saying it was synced now (no
    sync is then due for the sync interval)."""
    import redis.asyncio as aioredis

    from gateway.catalog.snapshot import SnapshotStore
    from gateway.redis_keys import RedisKeys

    client = aioredis.Redis.from_url(redis_url())
    try:
        keys = RedisKeys(prefix)
        store = SnapshotStore(client, keys)
        await client.set(keys.catalog_lock(supplier), str(version))  # the fence publish checks
        now = time.time()
        result = await store.publish(
            supplier,
            version,
            {
                "version": version,
                "products": products,
                "last_success_at": now,
                "last_attempt_at": now,
                "outcome": "ok",
                "stale": "0",
            },
        )
        await client.delete(keys.catalog_lock(supplier))
        if not result.published:
            raise RuntimeError(f"snapshot {version} not published: {result.reason}")
    finally:
        await client.aclose()


async def publish_snapshot(
    prefix: str, products: Iterable[Product], version: int, *, supplier: str = SUPPLIER
) -> int:
    """``stage_snapshot`` then ``publish_staged``."""
    count = await stage_snapshot(prefix, products, version, supplier=supplier)
    await publish_staged(prefix, version, count, supplier=supplier)
    return count


async def issue_key(prefix: str) -> str:
    """A reseller key whose rate limit is far above any load here."""
    import redis.asyncio as aioredis

    from gateway.access.store import KeyStore
    from gateway.redis_keys import RedisKeys

    client = aioredis.Redis.from_url(redis_url())
    try:
        store = KeyStore(client, RedisKeys(prefix))
        reseller = await store.create_reseller("HTTP benchmark")
        issued = await store.create_key(
            reseller.reseller.id, scopes=["catalog:read"], rate_limit=1_000_000_000
        )
        return issued.token.get_secret_value()
    finally:
        await client.aclose()


async def cleanup(prefix: str) -> None:
    import redis.asyncio as aioredis

    client = aioredis.Redis.from_url(redis_url())
    try:
        async for key in client.scan_iter(match=f"{prefix}:*"):
            await client.delete(key)
    finally:
        await client.aclose()


def run_async(coro: Any) -> Any:
    return asyncio.run(coro)


# --------------------------------------------------------------------------- load

_LATENCY = re.compile(r"^\s*(50|99)%\s+([\d.]+)(us|ms|s)\s*$", re.M)
_MAX = re.compile(r"^\s*Latency\s+\S+\s+\S+\s+([\d.]+)(us|ms|s)", re.M)
_UNIT_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0}
_TAIL = re.compile(r"^tail ([\d.]+) (\d+)$", re.M)
#: Percentiles a wrk window reports (its ``tail``): 0.1 to 99.9 by 0.1, 99.95, 99.99
#: (wrk 4.1 answers 0 for the 100th: the window's max is read from its summary).
TAIL_PERCENTILES = [round(k / 10, 1) for k in range(1, 1000)] + [99.95, 99.99]


def have_wrk() -> bool:
    return shutil.which("wrk") is not None


def wrk(url: str, paths: list[str], headers: dict[str, str], seconds: float) -> dict[str, Any]:
    """``wrk -t1 -c32`` rotating over ``paths``: req/s, p50/p99/max latency, non-2xx."""
    lines = ["local paths = {" + ",".join(f'"{p}"' for p in paths) + "}", "local i = 0"]
    lines += [f'wrk.headers["{k}"] = "{v}"' for k, v in headers.items()]
    lines += [
        "request = function()",
        "  i = i % #paths + 1",
        '  return wrk.format("GET", paths[i])',
        "end",
        # The latency distribution, for pooling windows (``pooled``).
        "done = function(summary, latency, requests)",
        "  for _, p in ipairs(TAIL) do",
        '    io.write(string.format("tail %g %d\\n", p, latency:percentile(p)))',
        "  end",
        "end",
    ]
    lines.insert(0, "TAIL = {" + ",".join(f"{p:g}" for p in TAIL_PERCENTILES) + "}")
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write("\n".join(lines))
    try:
        out = subprocess.run(
            pinned(CLIENT_CPU, ["wrk", "-t1", f"-c{CONNECTIONS}", f"-d{max(1, int(seconds))}s",
                                "--latency", "-s", script.name, url]),
            capture_output=True, text=True, check=True,
        ).stdout  # fmt: skip
    finally:
        os.unlink(script.name)
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    total = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    latency = {p: float(v) * _UNIT_MS[u] for p, v, u in _LATENCY.findall(out)}
    peak = _MAX.search(out)
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    errors = re.search(r"Socket errors:.*?timeout (\d+)", out)
    tail = [[float(p), int(us) / 1000] for p, us in _TAIL.findall(out)]
    return {
        "rps": rps,
        "requests": total,
        "tail": tail,
        "p50_ms": latency.get("50"),
        "p99_ms": latency.get("99"),
        "max_ms": float(peak.group(1)) * _UNIT_MS[peak.group(2)] if peak else None,
        "errors": (int(non_2xx.group(1)) if non_2xx else 0)
        + (int(errors.group(1)) if errors else 0),
    }


def pooled(windows: list[dict[str, Any]], percentile: float = 99.0) -> float:
    """The ``percentile`` of every request of ``windows`` together (not the worst of the
    windows' own): the smallest latency that at most ``100 - percentile`` % of all their
    requests exceed, from each window's distribution (``tail``, to 0.1 %) weighted by
    its requests."""
    total = sum(w["requests"] for w in windows)
    # A tail lists percentiles in order, so its latencies never decrease: the share of
    # a window at or under a latency is found by bisection, and the count above a
    # latency never grows with it, so the smallest latency within the allowance is too.
    tails = [([ms for _, ms in w["tail"]], [p for p, _ in w["tail"]], w["requests"])
             for w in windows]  # fmt: skip

    def above(latency: float) -> float:
        count = 0.0
        for latencies, percents, requests in tails:
            at = bisect.bisect_right(latencies, latency)
            below = percents[at - 1] if at else 0.0
            count += requests * (100 - below) / 100
        return count

    allowed = total * (100 - percentile) / 100
    candidates = sorted({ms for latencies, _, _ in tails for ms in latencies})
    lo, hi = 0, len(candidates) - 1  # the answer is in candidates[lo:hi + 1]
    while lo < hi:
        mid = (lo + hi) // 2
        if above(candidates[mid]) <= allowed:
            hi = mid
        else:
            lo = mid + 1
    return candidates[lo]


def python_load(
    url: str, paths: list[str], headers: dict[str, str], seconds: float
) -> dict[str, Any]:
    """Fallback load generator (an asyncio httpx client): far less efficient than wrk,
    so both servers may be capped by it and the ratio understated."""

    async def main() -> dict[str, Any]:
        latencies: list[float] = []
        errors = 0
        stop = time.perf_counter() + seconds
        limits = httpx.Limits(max_connections=CONNECTIONS)
        async with httpx.AsyncClient(base_url=url, headers=headers, limits=limits) as client:

            async def worker(offset: int) -> None:
                nonlocal errors
                i = offset
                while time.perf_counter() < stop:
                    started = time.perf_counter()
                    response = await client.get(paths[i % len(paths)])
                    latencies.append(time.perf_counter() - started)
                    errors += response.status_code != 200
                    i += 1

            began = time.perf_counter()
            await asyncio.gather(*(worker(k) for k in range(CONNECTIONS)))
            elapsed = time.perf_counter() - began
        latencies.sort()
        n = len(latencies)
        return {
            "rps": n / elapsed,
            "requests": n,
            "tail": [[p, latencies[min(n - 1, int(n * p / 100))] * 1000] for p in TAIL_PERCENTILES],
            "p50_ms": latencies[len(latencies) // 2] * 1000,
            "p99_ms": latencies[int(len(latencies) * 0.99)] * 1000,
            "max_ms": latencies[-1] * 1000,
            "errors": errors,
        }

    return asyncio.run(main())


def load(url: str, paths: list[str], headers: dict[str, str], seconds: float) -> dict[str, Any]:
    """``wrk`` when installed (``apt-get install -y wrk``), else the Python client."""
    return (wrk if have_wrk() else python_load)(url, paths, headers, seconds)
