"""Several worker processes, one consistent ``/metrics``."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from prometheus_client.multiprocess import MultiProcessCollector

from gateway.observability import metrics
from tests.ops.conftest import ROOT, gateway_env
from tests.ops.support import samples, value
from tests.support.net import free_port
from tests.support.processes import stop, wait_until_healthy

WRITER = r"""
import asyncio, sys
import httpx
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from adapters import metrics as upstream
from gateway.api.middleware import FrontDoor

requests, circuit, quota = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])

async def item(request):
    return PlainTextResponse("ok")

app = Starlette(
    routes=[Route("/v1/products/{id}", item)],
    middleware=[Middleware(FrontDoor, max_body_bytes=1_000_000)],
)

async def main():
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        for i in range(requests):
            assert (await client.get(f"/v1/products/p{i}")).status_code == 200

asyncio.run(main())
upstream.UPSTREAM_CALLS.labels("example", "get_product", "2xx").inc(requests)
upstream.BREAKER_STATE.labels("example").set(circuit)
upstream.UPSTREAM_QUOTA_REMAINING.labels("example").set(quota)
"""


def _write(directory: Path, requests: int, circuit: int, quota: int) -> int:
    env = {**os.environ, metrics.MULTIPROC_ENV: str(directory)}
    proc = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(requests), str(circuit), str(quota)],
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    return proc.pid


def test_two_processes_write_one_exposition_shows_the_sum(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = _write(tmp_path, requests=3, circuit=2, quota=40)
    second = _write(tmp_path, requests=5, circuit=0, quota=7)
    monkeypatch.setenv(metrics.MULTIPROC_ENV, str(tmp_path))
    body, content_type = metrics.exposition()
    text = body.decode()
    assert content_type.startswith("text/plain")

    route = {"route": "/v1/products/{id}"}
    assert value(text, "gateway_http_requests_total", status="200", **route) == 8
    assert value(text, "gateway_http_request_duration_seconds_count", **route) == 8
    assert value(text, "gateway_upstream_requests_total", supplier="example") == 8
    # Gauges merge as declared: the worst circuit, the latest quota, live in-flight sum.
    assert samples(text, "gateway_upstream_circuit_state") == [({"supplier": "example"}, 2.0)]
    assert samples(text, "gateway_upstream_quota_remaining") == [({"supplier": "example"}, 7.0)]
    assert value(text, "gateway_http_requests_in_flight") == 0
    assert not [labels for labels, _ in samples(text, "gateway_upstream_circuit_state")
                if "pid" in labels]  # fmt: skip

    live = sorted(p.name for p in tmp_path.glob("gauge_live*"))
    assert live, "the in-flight gauge writes per-process live files"
    metrics.process_exited(first)
    metrics.process_exited(second)
    assert not list(tmp_path.glob("gauge_live*"))


def test_prepare_multiprocess_creates_or_empties_the_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # (set then delete, so that monkeypatch removes what prepare_multiprocess exports)
    monkeypatch.setenv(metrics.MULTIPROC_ENV, "placeholder")
    monkeypatch.delenv(metrics.MULTIPROC_ENV)
    assert metrics.prepare_multiprocess(1) is None
    assert metrics.MULTIPROC_ENV not in os.environ

    created = metrics.prepare_multiprocess(2)
    assert created is not None and Path(created).is_dir()
    assert os.environ[metrics.MULTIPROC_ENV] == created
    metrics.remove_multiprocess_dir(created)
    assert not Path(created).exists()

    (tmp_path / "counter_123.db").write_bytes(b"stale")
    (tmp_path / "keep.txt").write_text("not ours")
    monkeypatch.setenv(metrics.MULTIPROC_ENV, str(tmp_path))
    assert metrics.prepare_multiprocess(4) is None
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.txt"]


def test_gateway_serve_with_two_workers_reports_the_same_totals_from_each(
    redis_url: str, key_prefix: str, redis
) -> None:
    """Every scrape, whichever worker answers it, counts the requests of both."""
    port = free_port()
    # No in-process order workers: their loops can outlive cancel() and hold the stop for
    # a bounded time (docs/operations.md); this test is about metrics across workers.
    env = gateway_env(
        redis_url, key_prefix, GATEWAY_LOG_LEVEL="WARNING", GATEWAY_ORDERS__INLINE_WORKERS="false"
    )
    gateway_cmd = str(Path(sys.executable).with_name("gateway"))
    proc = subprocess.Popen(
        [gateway_cmd, "serve", "--workers", "2", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_healthy(url, proc)
        before, sent = _healthz_count(url), 0
        # A new connection each time: the kernel spreads them over the two workers.
        while len(_serving_pids(proc.pid)) < 2 and sent < 400:
            for _ in range(40):
                assert httpx.get(url + "/healthz", timeout=5).status_code == 200
            sent += 40
        assert len(_serving_pids(proc.pid)) == 2, "one worker served everything"
        counts = [_healthz_count(url) for _ in range(8)]
        assert counts == [before + sent] * 8, counts
    finally:
        stop(proc)
    assert proc.returncode == 0, proc.stdout.read().decode()[-3000:] if proc.stdout else ""


def _serving_pids(master: int) -> set[str]:
    """Pids of the workers that have answered ``/healthz`` (from their own metric files)."""
    directories = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[1]) != master:
                continue
            environ = (stat.parent / "environ").read_bytes().split(b"\0")
        except (OSError, IndexError, ValueError):
            continue
        for entry in environ:
            if entry.startswith(metrics.MULTIPROC_ENV.encode() + b"="):
                directories.add(entry.split(b"=", 1)[1].decode())
    assert len(directories) == 1, directories
    (directory,) = directories
    serving = set()
    for path in Path(directory).glob("counter_*.db"):
        for family in MultiProcessCollector.merge([str(path)]):
            for sample in family.samples:
                if (
                    sample.name == "gateway_http_requests_total"
                    and sample.labels.get("route") == "/healthz"
                    and sample.value > 0
                ):
                    serving.add(path.stem.rsplit("_", 1)[1])
    return serving


def _healthz_count(url: str) -> float:
    text = httpx.get(url + "/metrics", timeout=5).text
    return value(text, "gateway_http_requests_total", route="/healthz", status="200")
