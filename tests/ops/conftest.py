"""Fixtures for the operations tests: captured JSON logs, promtool, a Redis Cluster.

``captured_logs`` is meant for reuse (the order-flow log audit uses it): it installs the
gateway's real handler (context + redaction + JSON formatter) on the root logger at
DEBUG, so what a test reads is exactly what ops would see in production.
"""

from __future__ import annotations

import io
import json
import logging
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from gateway.observability.log_writer import flush_all
from gateway.observability.logging import QUIET_LOGGERS, make_handler
from tests.support.net import free_port
from tests.support.settings import ENCRYPTION_KEY, gateway_settings

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class CapturedLogs:
    """Every line written while the fixture was active, raw and parsed."""

    stream: io.StringIO = field(default_factory=io.StringIO)

    @property
    def text(self) -> str:
        flush_all()  # access lines wait up to log_flush_seconds in a buffer: write them
        return self.stream.getvalue()

    @property
    def lines(self) -> list[dict[str, Any]]:
        """Each line parsed as JSON (a line that is not JSON fails the test)."""
        out = []
        for raw in self.text.splitlines():
            try:
                out.append(json.loads(raw))
            except ValueError:
                pytest.fail(f"log line is not JSON: {raw!r}")
        return out

    def by_logger(self, name: str) -> list[dict[str, Any]]:
        return [line for line in self.lines if line.get("logger") == name]

    def assert_absent(self, *secrets: str) -> None:
        """None of ``secrets`` (nor their JSON-escaped forms) appears in any line."""
        text = self.text
        for secret in secrets:
            assert secret, "an empty secret proves nothing"
            escaped = json.dumps(secret)[1:-1]
            assert secret not in text and escaped not in text, (
                f"a secret ({secret[:3]}…) was written to the logs"
            )


@pytest.fixture
def captured_logs() -> Iterator[CapturedLogs]:
    captured = CapturedLogs()
    handler = make_handler(captured.stream, json_lines=True)
    handler.setLevel(logging.DEBUG)
    root = logging.getLogger()
    old_level = root.level
    quiet = {name: logging.getLogger(name).level for name in QUIET_LOGGERS}
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    for name in QUIET_LOGGERS:  # as configure_logging does in production
        logging.getLogger(name).setLevel(logging.WARNING)
    try:
        yield captured
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)
        for name, level in quiet.items():
            logging.getLogger(name).setLevel(level)


# ------------------------------------------------------------------ promtool


def _promtool_path() -> str | None:
    return shutil.which("promtool")


@pytest.fixture(scope="session")
def promtool() -> str:
    path = _promtool_path()
    if path is None:
        pytest.skip(
            "promtool is not installed (Debian package 'prometheus'; scripts/test.sh installs "
            "it when run as root with apt-get): Prometheus lint checks skipped"
        )
    return path


def run_promtool(promtool: str, *args: str, stdin: str | None = None) -> tuple[int, str]:
    proc = subprocess.run(
        [promtool, *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    return proc.returncode, (proc.stdout + proc.stderr).strip()


# ------------------------------------------------------------- Redis Cluster


def free_cluster_port() -> int:
    """A free port whose cluster bus port (port + 10000) is free and valid too."""
    for _ in range(200):
        port = free_port()
        if port + 10000 > 65535:
            continue
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port + 10000))
            except OSError:
                continue
        return port
    raise RuntimeError("no free port pair for a Redis Cluster node")


@dataclass
class LocalCluster:
    ports: list[int]
    directory: Path

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.ports[0]}/0"


def _cluster_ok(port: int) -> bool:
    proc = subprocess.run(
        ["redis-cli", "-p", str(port), "cluster", "info"],
        capture_output=True,
        text=True,
        timeout=10,
    )
    return "cluster_state:ok" in proc.stdout


def _shutdown(ports: list[int]) -> None:
    for port in ports:
        subprocess.run(
            ["redis-cli", "-p", str(port), "shutdown", "nosave"],
            capture_output=True,
            timeout=10,
        )


@pytest.fixture(scope="session")
def redis_cluster() -> Iterator[LocalCluster]:
    """Three masters, no replicas, on free loopback ports; removed after the session."""
    if not (shutil.which("redis-server") and shutil.which("redis-cli")):
        pytest.skip("redis-server/redis-cli not installed: Redis Cluster tests skipped")
    directory = Path(tempfile.mkdtemp(prefix="gw-cluster-"))
    ports: list[int] = []
    try:
        for _ in range(3):
            port = free_cluster_port()
            node_dir = directory / str(port)
            node_dir.mkdir()
            subprocess.run(
                [
                    "redis-server",
                    "--port", str(port),
                    "--bind", "127.0.0.1",
                    "--cluster-enabled", "yes",
                    "--cluster-config-file", f"nodes-{port}.conf",
                    "--cluster-node-timeout", "5000",
                    "--save", "",
                    "--appendonly", "no",
                    "--daemonize", "yes",
                    "--dir", str(node_dir),
                    "--logfile", str(node_dir / "redis.log"),
                ],
                check=True,
                capture_output=True,
                timeout=10,
            )  # fmt: skip
            ports.append(port)
        for port in ports:
            for _ in range(100):
                ping = subprocess.run(
                    ["redis-cli", "-p", str(port), "ping"], capture_output=True, text=True
                )
                if ping.stdout.strip() == "PONG":
                    break
                time.sleep(0.05)
            else:
                log = (directory / str(port) / "redis.log").read_text(errors="replace")
                pytest.fail(f"cluster node on port {port} did not start:\n{log[-2000:]}")
        created = subprocess.run(
            [
                "redis-cli",
                "--cluster", "create",
                *[f"127.0.0.1:{port}" for port in ports],
                "--cluster-replicas", "0",
                "--cluster-yes",
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )  # fmt: skip
        if created.returncode != 0:
            pytest.fail(f"redis-cli --cluster create failed: {created.stdout}{created.stderr}")
        deadline = time.monotonic() + 30
        while not all(_cluster_ok(port) for port in ports):
            if time.monotonic() > deadline:
                pytest.fail("the local Redis Cluster never reached cluster_state:ok")
            time.sleep(0.1)
        yield LocalCluster(ports=ports, directory=directory)
    finally:
        _shutdown(ports)
        shutil.rmtree(directory, ignore_errors=True)


# ------------------------------------------------- a gateway with an upstream


def gateway_env(redis_url: str, key_prefix: str, **extra: str) -> dict[str, str]:
    """The environment of a gateway subprocess: this one without ``GATEWAY_*`` and
    ``PROMETHEUS_MULTIPROC_DIR``, plus a real Redis, a key prefix and no sandboxes."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("GATEWAY_") and k != "PROMETHEUS_MULTIPROC_DIR"
    }
    env |= {
        "GATEWAY_REDIS_URL": redis_url,
        "GATEWAY_KEY_PREFIX": key_prefix,
        "GATEWAY_SANDBOX": "off",
        "GATEWAY_ORDERS__ENCRYPTION_KEYS": json.dumps([ENCRYPTION_KEY]),
    }
    return env | extra


@pytest.fixture(scope="module")
def example_upstream() -> Iterator[Any]:
    """The reference adapter's sandbox on a real loopback port."""
    from adapters.sandbox_server import BackgroundServer
    from adapters.testing.example import ExampleAdapter

    with BackgroundServer(ExampleAdapter.create_sandbox(catalog_size=40)) as server:
        yield server


async def _no_sleep(_: float) -> None:
    return None


def example_adapter(server: Any, http: Any, redis: Any, key_prefix: str) -> Any:
    """An ExampleAdapter on the sandbox, with a generous client-side limit and no backoff
    sleeps, so the tests exercise retries and 429s without waiting for them."""
    from adapters.testing.example import ExampleAdapter

    values = ExampleAdapter.sandbox_settings(server.url) | {
        "rate_limits": {
            bucket: {"limit": 100_000, "period_seconds": 60, "burst": 1000}
            for bucket in ExampleAdapter.rate_limits
        },
        "retries": {"max_attempts": 3, "backoff_base": 0.01, "backoff_max": 0.01},
    }
    settings = ExampleAdapter.settings_model.model_validate(values)
    return ExampleAdapter(settings, http=http, redis=redis, key_prefix=key_prefix, sleep=_no_sleep)


@dataclass
class OpsGateway:
    """The real gateway app (``create_app``) over a Gateway holding one example adapter."""

    app: Any
    client: Any
    adapter: Any
    upstream: Any
    gateway: Any


@pytest.fixture
async def ops_gateway(example_upstream: Any, redis: Any, key_prefix: str, redis_url: str) -> Any:
    import httpx

    from gateway.app import create_app
    from gateway.bootstrap import bootstrap

    settings = gateway_settings(redis_url, key_prefix)
    http = httpx.AsyncClient()
    adapter = example_adapter(example_upstream, http, redis, key_prefix)
    gw = await bootstrap(settings, redis=redis, http=http, adapters={"example": adapter})
    app = create_app(gateway=gw)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
            yield OpsGateway(app, client, adapter, example_upstream, gw)
    await gw.stop()  # the app leaves a gateway it was handed running
    await http.aclose()
