"""HTTP throughput of ``GET /v1/search?q=...`` over 100k products, against a bare endpoint.

The gateway runs as it ships (``bench._serve.served_gateway``): the ``gateway serve``
command with its default settings (INFO level, one JSON access-log line per request to
its output, here a file; inline order workers; metrics), a real Redis, authentication
and the per-key rate limiter on (a reseller key whose limit is far above the load, so
every request pays the check and none is refused). Its catalog, 100k synthetic products,
is a snapshot published into Redis and loaded at start-up.

Compared with, in the same run:

* ``bare``: a Starlette endpoint returning a pre-serialised search page of the same
  size (a real answer of the gateway, of median size over the query mix): the ceiling;
* lab rows (``BENCH_LAB=0`` leaves them out), labelled as such, to say where the time
  goes: the same ``gateway serve`` at ``GATEWAY_LOG_LEVEL=WARNING`` (no access log),
  then also without inline workers; the catalog routes alone without middleware or
  access guard (``bench._http_apps``), and those with the page caches off (every
  request searches, renders and serialises, as a query seen for the first time).

The load comes from a separate client process: ``wrk -t1 -c32`` when installed
(``apt-get install -y wrk``), else a Python client (httpx, asyncio) whose own cost caps
what it can measure (it says so). Queries rotate over one-word, two-word and
prefix/typo searches (``bench.search_latency.queries``), a page of 20, no facets. Every
server is measured ``BENCH_ROUNDS`` times (default 5) in the same run, each round in a
rotated order; the table shows each server's median round, and the verdicts use, per
round, the gateway's figure over the bare endpoint's measured seconds apart in that
round (a slow phase of the machine affects both), as the median over rounds. With two
CPUs or more and ``taskset``, servers run on CPU 0 and ``wrk`` on CPU 1.

Targets (issue 14): the shipped gateway serves at least 0.6 of the bare endpoint's
requests per second, and its p99 latency is at most 2x the bare endpoint's. The
benchmark also checks that the access log wrote one line per request answered.

    python -m bench http_search
    BENCH_PRODUCTS=10000 BENCH_SECONDS=3 BENCH_ROUNDS=3 BENCH_LAB=0 python -m bench http_search

Uses Redis at ``REDIS_URL`` under throw-away key prefixes, removed afterwards.
"""

from __future__ import annotations

import json
import os
import statistics
import tempfile
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

from bench import synthetic
from bench._serve import (
    CONNECTIONS,
    Server,
    cleanup,
    have_wrk,
    issue_key,
    load,
    new_prefix,
    publish_snapshot,
    redis_url,
    run_async,
    served_gateway,
)

TARGET_RATIO = 0.6
TARGET_P99_FACTOR = 2.0
SHIPPED = "gateway serve (defaults)"
BARE = "bare endpoint"
LAB_WARNING = "lab: serve, log level WARNING"
LAB_NO_WORKERS = "lab: serve, WARNING, no inline workers"
LAB_CATALOG = "lab: catalog routes only"
LAB_NO_CACHE = "lab: catalog routes, no page cache"


def _access_lines(server: Server) -> int:
    count = 0
    for line in server.lines():
        if line.startswith("{") and '"logger":"gateway.http"' in line:
            count += 1
    return count


def run() -> dict[str, Any]:
    from bench.search_latency import queries

    products = int(os.environ.get("BENCH_PRODUCTS", 100_000))
    seconds = float(os.environ.get("BENCH_SECONDS", 6))
    n_rounds = max(1, int(os.environ.get("BENCH_ROUNDS", 5)))
    lab = os.environ.get("BENCH_LAB", "1") != "0"
    texts = [t for kind in queries(products).values() for t in kind[:40]]
    paths = [f"/v1/search?q={quote(t)}&page_size=20" for t in texts]
    prefix = new_prefix("http")
    env = {"BENCH_PRODUCTS": str(products), "BENCH_PREFIX": prefix, "REDIS_URL": redis_url()}
    servers: dict[str, Server] = {}
    body_file = Path(tempfile.mkstemp(suffix=".json")[1])
    rounds: dict[str, list[dict[str, Any]]] = {}
    try:
        print(f"publishing {products:,} synthetic products as a snapshot ...", flush=True)
        run_async(publish_snapshot(prefix, synthetic.products(products), version=1))
        key = run_async(issue_key(prefix))
        auth = {"Authorization": f"Bearer {key}"}
        headers: dict[str, dict[str, str]] = {SHIPPED: auth}
        servers[SHIPPED] = served_gateway(prefix)
        if lab:
            servers[LAB_WARNING] = served_gateway(prefix, {"GATEWAY_LOG_LEVEL": "WARNING"})
            servers[LAB_NO_WORKERS] = served_gateway(
                prefix,
                {"GATEWAY_LOG_LEVEL": "WARNING", "GATEWAY_ORDERS__INLINE_WORKERS": "false"},
            )
            servers[LAB_CATALOG] = Server.factory("catalog_only_app", env)
            servers[LAB_NO_CACHE] = Server.factory(
                "catalog_only_app", {**env, "BENCH_PAGE_CACHE": "0"}
            )
            headers.update({LAB_WARNING: auth, LAB_NO_WORKERS: auth})
        print(f"starting {len(servers)} servers (each builds its index) ...", flush=True)
        for name, server in servers.items():
            if name in headers:  # a served gateway: ready once its catalog is loaded
                server.wait("/readyz", {})
            server.wait(paths[0], headers.get(name, {}))
        bodies = [httpx.get(servers[SHIPPED].url + p, headers=auth).content for p in paths]
        body = sorted(bodies, key=len)[len(bodies) // 2]
        body_file.write_bytes(body)
        servers[BARE] = Server.factory("bare_app", {**env, "BENCH_BODY_FILE": str(body_file)})
        servers[BARE].wait("/v1/search", {})
        for name, server in servers.items():  # warm-up: caches, lazy paths
            load(server.url, paths, headers.get(name, {}), 2)
        logged_before = _access_lines(servers[SHIPPED])
        rounds = {name: [] for name in servers}
        names = list(servers)
        for turn in range(n_rounds):
            for name in names[turn % len(names) :] + names[: turn % len(names)]:
                figures = load(servers[name].url, paths, headers.get(name, {}), seconds)
                rounds[name].append(figures)
        servers[SHIPPED].stop()  # a graceful stop writes every buffered line
        logged = _access_lines(servers[SHIPPED]) - logged_before
    finally:
        for server in servers.values():
            server.stop()
            server.remove_log()
        body_file.unlink(missing_ok=True)
        run_async(cleanup(prefix))
    answered = sum(r["requests"] for r in rounds[SHIPPED])
    return _report(rounds, n_rounds, seconds, len(body), answered, logged)


def _report(
    rounds: dict[str, list[dict[str, Any]]],
    n_rounds: int,
    seconds: float,
    body_bytes: int,
    answered: int,
    logged: int,
) -> dict[str, Any]:
    def ratio(name: str, field: str) -> float:
        per_round = [g[field] / b[field] for g, b in zip(rounds[name], rounds[BARE], strict=True)]
        return float(statistics.median(per_round))

    median = {
        name: {
            field: statistics.median(r[field] for r in results)
            for field in ("rps", "p50_ms", "p99_ms", "max_ms")
        }
        | {"errors": sum(r["errors"] for r in results)}
        for name, results in rounds.items()
    }
    print(
        f"client: {'wrk' if have_wrk() else 'python httpx (caps the figures)'}, "
        f"{CONNECTIONS} connections, {seconds:.0f} s per run, {n_rounds} rounds (median "
        f"round shown); page of 20, body {body_bytes:,} bytes (median of the query mix)"
    )
    print(
        f"{'server':<40} {'req/s':>8} {'ratio':>6} {'p50 ms':>7} {'p99 ms':>7} "
        f"{'p99/bare':>8} {'errors':>6}"
    )
    order = [name for name in rounds if name not in (SHIPPED, BARE)]
    for name in [SHIPPED, BARE, *order]:
        m = median[name]
        print(
            f"{name:<40} {m['rps']:>8.0f} {ratio(name, 'rps'):>6.2f} {m['p50_ms']:>7.2f} "
            f"{m['p99_ms']:>7.2f} {ratio(name, 'p99_ms'):>8.2f} {m['errors']:>6}"
        )
    per_round = [g["rps"] / b["rps"] for g, b in zip(rounds[SHIPPED], rounds[BARE], strict=True)]
    rps_ratio = statistics.median(per_round)
    p99_factor = ratio(SHIPPED, "p99_ms")
    rps_ok = rps_ratio >= TARGET_RATIO
    p99_ok = p99_factor <= TARGET_P99_FACTOR
    log_ok = logged >= answered
    print("gateway / bare req/s per round: " + ", ".join(f"{r:.2f}" for r in per_round))
    print(
        f"target: gateway as shipped >= {TARGET_RATIO} of bare req/s -> median "
        f"{rps_ratio:.2f} {'PASS' if rps_ok else 'MISS'}; p99 <= {TARGET_P99_FACTOR:.0f}x "
        f"bare's -> {p99_factor:.2f}x {'PASS' if p99_ok else 'MISS'}"
    )
    verdict = "every request logged" if log_ok else "LINES MISSING"
    print(
        f"access log: {logged:,} lines for {answered:,} requests answered in the measured "
        f"runs (wrk counts completed ones) -> {verdict}"
    )
    figures = {
        "rounds": rounds,
        "median": median,
        "ratio": round(rps_ratio, 3),
        "ratio_per_round": [round(r, 3) for r in per_round],
        "p99_factor": round(p99_factor, 3),
        "ratios": {name: round(ratio(name, "rps"), 3) for name in rounds},
        "access_lines": logged,
        "requests_answered": answered,
        "verdict": "PASS" if rps_ok and p99_ok and log_ok else "MISS",
    }
    if os.environ.get("BENCH_JSON"):
        Path(os.environ["BENCH_JSON"]).write_text(json.dumps(figures, indent=1))
    return figures


if __name__ == "__main__":  # pragma: no cover
    run()
