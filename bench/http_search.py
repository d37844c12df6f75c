"""HTTP throughput of ``GET /v1/search?q=...`` over 100k products, against a bare endpoint.

Three servers, each one uvicorn worker in its own process on loopback (``bench._http_apps``):

* ``gateway``: the real app, authentication and the Redis-shared per-key rate limiter
  switched on (a reseller key with a limit far above the load, so every request pays
  the check but none is refused), searching an index of 100k synthetic products;
* ``catalog only``: the same routes and index without middleware or access guard;
* ``catalog, no cache``: the same with the page caches off (``gateway.catalog.pages``):
  every request searches, renders and serialises, as a query seen for the first time;
* ``bare``: a Starlette endpoint returning a pre-serialised search page of the same size
  (a real answer of the gateway, of median size over the query mix).

The load comes from a separate client process: ``wrk`` when installed
(``apt-get install -y wrk``), else a Python client (httpx, asyncio) whose own cost caps
what it can measure (it says so). Queries rotate over one-word, two-word and
prefix/typo searches (``bench.search_latency.queries``), a page of 20, no facets. The
servers are measured one after another, ``BENCH_ROUNDS`` times (default 5) in the same
run, each round in a rotated order; the table shows each server's best round, and the
verdict uses the median over rounds of gateway ÷ bare within one round (two figures
taken seconds apart, so a slow phase of the machine affects both). With two CPUs or more
and ``taskset``, the server runs on CPU 0 and ``wrk`` on CPU 1 (``BENCH_PIN=0``: not
pinned). Target: the gateway serves at least 0.6 of the bare endpoint's requests per
second.

    python -m bench http_search
    BENCH_PRODUCTS=10000 BENCH_SECONDS=5 python -m bench http_search   # quicker

Uses Redis at ``REDIS_URL`` under a throw-away key prefix, removed afterwards.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

TARGET_RATIO = 0.6
CONNECTIONS = 32
SERVER_CPU, CLIENT_CPU = 0, 1


def _pinned(cpu: int, command: list[str]) -> list[str]:
    """``command`` bound to one CPU when the machine has two or more and ``taskset`` is
    there: server and client then never compete for a core or migrate between them,
    which is most of this benchmark's run-to-run noise on a small VM. Every server is
    pinned alike, so the ratios compare like with like."""
    if os.environ.get("BENCH_PIN", "1") == "0" or (os.cpu_count() or 1) < 2:
        return command
    if shutil.which("taskset") is None:
        return command
    return ["taskset", "-c", str(cpu), *command]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Server:
    """One uvicorn process serving an app factory of ``bench._http_apps``."""

    def __init__(self, factory: str, env: dict[str, str]) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        command = [
            sys.executable, "-m", "uvicorn", f"bench._http_apps:{factory}", "--factory",
            "--host", "127.0.0.1", "--port", str(self.port), "--workers", "1",
            "--no-access-log", "--log-level", "warning",
        ]  # fmt: skip
        self.process = subprocess.Popen(_pinned(SERVER_CPU, command), env={**os.environ, **env})

    def wait(self, path: str, headers: dict[str, str], within: float = 180.0) -> None:
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server {self.url} exited with {self.process.returncode}")
            try:
                if httpx.get(self.url + path, headers=headers, timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"server {self.url} did not answer {path} in time")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()


async def _issue_key(redis_url: str, prefix: str) -> str:
    import redis.asyncio as aioredis

    from gateway.access.store import KeyStore
    from gateway.redis_keys import RedisKeys

    client = aioredis.Redis.from_url(redis_url)
    try:
        store = KeyStore(client, RedisKeys(prefix))
        reseller = await store.create_reseller("HTTP benchmark")
        issued = await store.create_key(
            reseller.reseller.id, scopes=["catalog:read"], rate_limit=1_000_000_000
        )
        return issued.token.get_secret_value()
    finally:
        await client.aclose()


async def _cleanup(redis_url: str, prefix: str) -> None:
    import redis.asyncio as aioredis

    client = aioredis.Redis.from_url(redis_url)
    try:
        async for key in client.scan_iter(match=f"{prefix}:*"):
            await client.delete(key)
    finally:
        await client.aclose()


_LATENCY = re.compile(r"^\s*(50|99)%\s+([\d.]+)(us|ms|s)\s*$", re.M)
_UNIT_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def _wrk(url: str, paths: list[str], headers: dict[str, str], seconds: float) -> dict[str, Any]:
    lines = ["local paths = {" + ",".join(f'"{p}"' for p in paths) + "}", "local i = 0"]
    lines += [f'wrk.headers["{k}"] = "{v}"' for k, v in headers.items()]
    lines += [
        "request = function()",
        "  i = i % #paths + 1",
        '  return wrk.format("GET", paths[i])',
        "end",
    ]
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write("\n".join(lines))
    try:
        out = subprocess.run(
            _pinned(CLIENT_CPU, ["wrk", "-t1", f"-c{CONNECTIONS}", f"-d{int(seconds)}s",
                                 "--latency", "-s", script.name, url]),
            capture_output=True, text=True, check=True,
        ).stdout  # fmt: skip
    finally:
        os.unlink(script.name)
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    latency = {p: float(v) * _UNIT_MS[u] for p, v, u in _LATENCY.findall(out)}
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    return {
        "rps": rps,
        "p50_ms": latency.get("50"),
        "p99_ms": latency.get("99"),
        "errors": int(non_2xx.group(1)) if non_2xx else 0,
    }


def _python_load(
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
        return {
            "rps": len(latencies) / elapsed,
            "p50_ms": latencies[len(latencies) // 2] * 1000,
            "p99_ms": latencies[int(len(latencies) * 0.99)] * 1000,
            "errors": errors,
        }

    return asyncio.run(main())


def run() -> dict[str, Any]:
    from bench.search_latency import queries

    redis_url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
    products = int(os.environ.get("BENCH_PRODUCTS", 100_000))
    seconds = float(os.environ.get("BENCH_SECONDS", 6))
    n_rounds = max(1, int(os.environ.get("BENCH_ROUNDS", 5)))
    load = _wrk if shutil.which("wrk") else _python_load
    prefix = f"bench-http-{uuid.uuid4().hex[:8]}"
    texts = [t for kind in queries(products).values() for t in kind[:40]]
    paths = [f"/v1/search?q={quote(t)}&page_size=20" for t in texts]
    env = {"BENCH_PRODUCTS": str(products), "BENCH_PREFIX": prefix, "REDIS_URL": redis_url}
    key = asyncio.run(_issue_key(redis_url, prefix))
    auth = {"Authorization": f"Bearer {key}"}
    servers: dict[str, Server] = {}
    body_file = Path(tempfile.mkstemp(suffix=".json")[1])
    try:
        print(f"building {products:,} synthetic products in three servers ...", flush=True)
        servers["gateway"] = Server("gateway_app", env)
        servers["catalog only"] = Server("catalog_only_app", env)
        servers["catalog, no cache"] = Server("catalog_only_app", {**env, "BENCH_PAGE_CACHE": "0"})
        servers["gateway"].wait(paths[0], auth)
        servers["catalog only"].wait(paths[0], {})
        servers["catalog, no cache"].wait(paths[0], {})
        bodies = [httpx.get(servers["gateway"].url + p, headers=auth).content for p in paths]
        body = sorted(bodies, key=len)[len(bodies) // 2]
        body_file.write_bytes(body)
        servers["bare"] = Server("bare_app", {**env, "BENCH_BODY_FILE": str(body_file)})
        servers["bare"].wait("/v1/search", {})
        headers = {"gateway": auth, "catalog only": {}, "catalog, no cache": {}, "bare": {}}
        for name, server in servers.items():  # warm-up: caches, JIT-less but lazy paths
            load(server.url, paths, headers[name], 2)
        rounds: dict[str, list[dict[str, Any]]] = {name: [] for name in servers}
        names = list(servers)
        for turn in range(n_rounds):
            for name in names[turn % len(names) :] + names[: turn % len(names)]:
                rounds[name].append(load(servers[name].url, paths, headers[name], seconds))
    finally:
        for server in servers.values():
            server.stop()
        body_file.unlink(missing_ok=True)
        asyncio.run(_cleanup(redis_url, prefix))
    best = {name: max(results, key=lambda r: r["rps"]) for name, results in rounds.items()}
    bare_rps = best["bare"]["rps"]
    print(
        f"client: {'wrk' if load is _wrk else 'python httpx (caps the figures)'}, "
        f"{CONNECTIONS} connections, {seconds:.0f} s per run, best of {n_rounds} rounds; "
        f"page of 20, body {len(body):,} bytes (median of the query mix)"
    )
    print(f"{'server':<18} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'ratio':>6} {'errors':>7}")
    for name, r in best.items():
        print(
            f"{name:<18} {r['rps']:>9.0f} {r['p50_ms']:>8.2f} {r['p99_ms']:>8.2f} "
            f"{r['rps'] / bare_rps:>6.2f} {r['errors']:>7}"
        )
    per_round = [
        g["rps"] / b["rps"] for g, b in zip(rounds["gateway"], rounds["bare"], strict=True)
    ]
    ratio = statistics.median(per_round)
    verdict = "PASS" if ratio >= TARGET_RATIO else "MISS"
    print("gateway / bare per round: " + ", ".join(f"{r:.2f}" for r in per_round))
    print(
        f"target: gateway (auth + rate limit on) >= {TARGET_RATIO} of bare -> median "
        f"{ratio:.2f} {verdict} (best / best: {best['gateway']['rps'] / bare_rps:.2f})"
    )
    return {
        "products": products,
        "body_bytes": len(body),
        "client": "wrk" if load is _wrk else "httpx",
        "rounds": rounds,
        "best": best,
        "ratio": round(ratio, 3),
        "ratio_per_round": [round(r, 3) for r in per_round],
        "ratio_catalog_only": round(best["catalog only"]["rps"] / bare_rps, 3),
        "ratio_catalog_no_cache": round(best["catalog, no cache"]["rps"] / bare_rps, 3),
        "target_ratio": TARGET_RATIO,
        "verdict": verdict,
        "spread": {
            name: round(statistics.pstdev(r["rps"] for r in results), 1)
            for name, results in rounds.items()
        },
    }


if __name__ == "__main__":  # pragma: no cover
    run()
