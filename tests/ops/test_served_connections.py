"""``gateway serve`` as ops run it, on loopback: who the client is, and what one
connection may cost (``gateway.api.connections``).

A real ``gateway serve`` subprocess over real Redis, with short bounds so the slow cases
finish quickly; clients are raw sockets where the point is a misbehaving client.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import redis
import redis.asyncio as aioredis

from gateway.access.store import KeyStore
from gateway.api.server import uvicorn_options
from gateway.redis_keys import RedisKeys
from gateway.settings import Settings
from tests.conftest import REDIS_URL
from tests.ops.conftest import ROOT, gateway_env
from tests.ops.test_deploy import DEPLOY, by_kind, compose
from tests.support.net import free_port
from tests.support.processes import stop, wait_until_healthy

HEADER_TIMEOUT = 2.0
BODY_TIMEOUT = 2.0
MAX_HEADER_BYTES = 8192
MAX_CONNECTIONS = 6
KEEP_ALIVE = 2.0
SLACK = 3.0  # scheduling on a shared machine; a connection left open waits forever


@dataclass
class Served:
    url: str
    port: int
    prefix: str


@contextlib.contextmanager
def gateway_serve(prefix: str, *args: str, **env: str) -> Iterator[Served]:
    """``gateway serve`` on a free loopback port until the block ends (SIGTERM)."""
    port = free_port()
    proc = subprocess.Popen(
        [
            str(Path(sys.executable).with_name("gateway")),
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            *args,
        ],
        env=gateway_env(
            REDIS_URL,
            prefix,
            GATEWAY_LOG_LEVEL="WARNING",
            GATEWAY_ORDERS__INLINE_WORKERS="false",
            **env,
        ),
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_healthy(url, proc)
        yield Served(url, port, prefix)
    finally:
        stop(proc)


@pytest.fixture(scope="module")
def served() -> Iterator[Served]:
    prefix = f"test-serve-{uuid.uuid4().hex[:12]}"
    try:
        with gateway_serve(
            prefix,
            GATEWAY_HTTP__HEADER_TIMEOUT_SECONDS=str(HEADER_TIMEOUT),
            GATEWAY_HTTP__BODY_TIMEOUT_SECONDS=str(BODY_TIMEOUT),
            GATEWAY_HTTP__MAX_HEADER_BYTES=str(MAX_HEADER_BYTES),
            GATEWAY_HTTP__MAX_CONNECTIONS=str(MAX_CONNECTIONS),
            GATEWAY_HTTP__KEEP_ALIVE_SECONDS=str(KEEP_ALIVE),
        ) as server:
            yield server
    finally:
        client = redis.Redis.from_url(REDIS_URL)
        for key in client.scan_iter(match=f"{prefix}:*", count=1000):
            client.delete(key)
        client.close()


async def issue(prefix: str, scopes: list[str], allowed_ips: list[str]) -> str:
    client = aioredis.Redis.from_url(REDIS_URL)
    try:
        store = KeyStore(client, RedisKeys(prefix))
        reseller = await store.create_reseller("Served tests")
        issued = await store.create_key(
            reseller.reseller.id,
            scopes=scopes,
            allowed_ips=allowed_ips,  # type: ignore[arg-type]
        )
        return issued.token.get_secret_value()
    finally:
        await client.aclose()


def connect(served: Served) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", served.port), timeout=10)
    sock.settimeout(HEADER_TIMEOUT + BODY_TIMEOUT + SLACK + 5)
    return sock


def read_until_closed(sock: socket.socket) -> tuple[bytes, float]:
    """Everything the server sends until it closes the connection, and when it did
    (``time.monotonic()``); a socket timeout fails the test (the server never closed)."""
    received = b""
    while True:
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            chunk = b""
        except TimeoutError:
            pytest.fail(f"the server kept the connection open; received {received[:200]!r}")
        if not chunk:
            return received, time.monotonic()
        received += chunk


def healthz(served: Served) -> int:
    return httpx.get(served.url + "/healthz", timeout=5).status_code


# ------------------------------------------------------------- client address


def test_uvicorn_never_rewrites_the_client_address() -> None:
    options = uvicorn_options(Settings())
    assert options["proxy_headers"] is False


async def _allowlist_ignores_forwarded_for(served: Served) -> None:
    remote_only = await issue(served.prefix, ["orders:read"], ["10.0.0.0/8"])
    local_only = await issue(served.prefix, ["orders:read"], ["127.0.0.1/32"])
    async with httpx.AsyncClient(base_url=served.url, timeout=10) as client:
        forwarded = {"X-Forwarded-For": "10.1.2.3"}
        bypass = await client.get("/v1/orders", headers={"X-API-Key": remote_only, **forwarded})
        assert bypass.status_code == 403, bypass.text
        assert bypass.json()["error"]["code"] == "ip_not_allowed"
        assert "127.0.0.1" in bypass.json()["error"]["message"]
        # The real peer (loopback) is what the allowlist sees, header or not.
        local = await client.get("/v1/orders", headers={"X-API-Key": local_only, **forwarded})
        assert local.status_code == 200, local.text
        forwarded["Forwarded"] = "for=10.1.2.3"
        forwarded["X-Real-IP"] = "10.1.2.3"
        again = await client.get("/v1/orders", headers={"X-API-Key": remote_only, **forwarded})
        assert again.status_code == 403


async def test_x_forwarded_for_from_loopback_cannot_pass_an_ip_allowlist(served: Served) -> None:
    """Issue 15 #1: no trusted proxy is configured, so no forwarding header is believed,
    even from a loopback peer (which uvicorn's own handling trusted by default)."""
    await _allowlist_ignores_forwarded_for(served)


async def test_the_same_holds_with_several_worker_processes() -> None:
    prefix = f"test-serve-{uuid.uuid4().hex[:12]}"
    client = aioredis.Redis.from_url(REDIS_URL)
    try:
        with gateway_serve(prefix, "--workers", "2") as server:
            await _allowlist_ignores_forwarded_for(server)
    finally:
        async for key in client.scan_iter(match=f"{prefix}:*"):
            await client.delete(key)
        await client.aclose()


def test_every_deployed_gateway_starts_through_gateway_serve() -> None:
    """The image, compose and Kubernetes start the API with ``gateway serve`` (whose
    uvicorn options switch proxy headers off), never uvicorn directly, and nothing sets
    uvicorn's forwarding variables."""
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    assert re.search(r'^ENTRYPOINT \["gateway"\]$', dockerfile, re.M)
    assert re.search(r'^CMD \["serve"\]$', dockerfile, re.M)
    services = compose()["services"]
    for name in ("gateway-1", "gateway-2"):
        assert services[name]["command"][0] == "serve"
    (deployment,) = by_kind("Deployment", "gateway")
    assert deployment["spec"]["template"]["spec"]["containers"][0]["args"] == ["serve"]
    commands = [
        *re.findall(r"^(?:ENTRYPOINT|CMD|RUN) (.*)$", dockerfile, re.M),
        *(str(s.get("command", "")) + str(s.get("entrypoint", "")) for s in services.values()),
        *(
            str(c.get("command", "")) + str(c.get("args", ""))
            for d in by_kind("Deployment")
            for c in d["spec"]["template"]["spec"]["containers"]
        ),
    ]
    assert not [c for c in commands if "uvicorn" in c], commands
    for path in DEPLOY.rglob("*"):
        if path.is_file() and path.suffix in {"", ".yml", ".yaml", ".conf"}:
            text = path.read_text(errors="replace")
            for word in ("FORWARDED_ALLOW_IPS", "UVICORN_", "proxy-headers"):
                assert word not in text, f"{path.relative_to(ROOT)} mentions {word!r}"


# ---------------------------------------------------------- connection bounds


def test_a_partial_head_is_closed_within_the_header_timeout_while_others_are_served(
    served: Served,
) -> None:
    slow = connect(served)
    began = time.monotonic()
    slow.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
    silent = connect(served)  # sends nothing at all
    assert healthz(served) == 200  # another client, meanwhile
    _, slow_closed = read_until_closed(slow)
    _, silent_closed = read_until_closed(silent)
    for closed in (slow_closed, silent_closed):
        assert HEADER_TIMEOUT - 0.5 <= closed - began <= HEADER_TIMEOUT + SLACK
    assert healthz(served) == 200
    slow.close()
    silent.close()


async def test_a_short_body_is_closed_within_the_body_timeout(served: Served) -> None:
    token = await issue(served.prefix, ["orders:write"], [])
    sock = connect(served)
    began = time.monotonic()
    sock.sendall(
        b"POST /v1/orders HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        b"X-API-Key: " + token.encode() + b"\r\nIdempotency-Key: slow-body\r\n"
        b"Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{}"
    )
    assert healthz(served) == 200
    received, closed = await asyncio.to_thread(read_until_closed, sock)
    sock.close()
    assert received == b""  # nothing was answered: the request never arrived whole
    assert BODY_TIMEOUT - 0.5 <= closed - began <= BODY_TIMEOUT + SLACK
    assert healthz(served) == 200


def test_an_oversized_head_is_refused_with_431(served: Served) -> None:
    sock = connect(served)
    big = b"a" * (MAX_HEADER_BYTES + 100)
    sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: " + big + b"\r\n\r\n")
    received, _ = read_until_closed(sock)
    sock.close()
    head, _, body = received.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 431 "), received[:200]
    assert b'"code":"header_too_large"' in body
    # A head within the bound is served as before, also when a large body arrives with
    # it in the same read.
    fits = httpx.get(served.url + "/healthz", headers={"X-Big": "a" * 4000}, timeout=5)
    assert fits.status_code == 200
    token = asyncio.run(issue(served.prefix, ["orders:write"], []))
    body = b'{"reference": "' + b"r" * 100_000 + b'"}'
    sock = connect(served)
    sock.sendall(
        b"POST /v1/orders HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
        b"X-API-Key: " + token.encode() + b"\r\nIdempotency-Key: big-body\r\n"
        b"Content-Type: application/json\r\nContent-Length: "
        + str(len(body)).encode()
        + b"\r\n\r\n"
        + body
    )
    received, _ = read_until_closed(sock)
    sock.close()
    assert received.startswith(b"HTTP/1.1 422 "), received[:200]


def _answered(sock: socket.socket) -> float:
    """Send a ``/healthz`` request on ``sock`` and read its answer; when it arrived."""
    sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    received = b""
    while b"\r\n\r\n" not in received or not received.endswith(b"}"):
        chunk = sock.recv(65536)
        assert chunk, f"closed before the answer; received {received[:200]!r}"
        received += chunk
    assert received.startswith(b"HTTP/1.1 200 "), received[:200]
    return time.monotonic()


def test_an_idle_connection_is_closed_keep_alive_seconds_after_its_last_response(
    served: Served,
) -> None:
    """The keep-alive timer counts from the last response, not the first: a connection
    that asks again within the keep-alive time stays open, and one that stays idle is
    closed that long after its last answer (one timer per connection, re-armed for the
    rest of the time, as uvicorn's timer per request behaved)."""
    sock = connect(served)
    first = _answered(sock)
    time.sleep(KEEP_ALIVE * 0.6)
    second = _answered(sock)
    time.sleep(KEEP_ALIVE * 0.6)  # past the first answer's keep-alive time
    last = _answered(sock)
    assert last - first >= KEEP_ALIVE
    _, closed = read_until_closed(sock)
    sock.close()
    assert KEEP_ALIVE - 0.5 <= closed - last <= KEEP_ALIVE + SLACK
    assert closed - second > KEEP_ALIVE


def test_connections_beyond_the_limit_are_closed_at_once(served: Served) -> None:
    # Connections of earlier tests may still be closing: wait until a full set is held.
    deadline = time.monotonic() + 10
    while True:
        held = [connect(served) for _ in range(MAX_CONNECTIONS)]
        time.sleep(0.2)
        if all(_still_open(sock) for sock in held):
            break
        for sock in held:
            sock.close()
        assert time.monotonic() < deadline, "the server never held MAX_CONNECTIONS"
    extra = connect(served)
    began = time.monotonic()
    _, closed = read_until_closed(extra)
    assert closed - began < HEADER_TIMEOUT / 2  # refused, not timed out
    assert all(_still_open(sock) for sock in held)
    for sock in [*held, extra]:
        sock.close()
    deadline = time.monotonic() + 10
    while True:  # served again once the held connections are gone
        with contextlib.suppress(httpx.HTTPError):
            if healthz(served) == 200:
                break
        assert time.monotonic() < deadline, "not served after the connections closed"
        time.sleep(0.1)


def _still_open(sock: socket.socket) -> bool:
    sock.setblocking(False)
    try:
        return sock.recv(1, socket.MSG_PEEK) != b""
    except BlockingIOError:
        return True
    except OSError:
        return False
    finally:
        sock.setblocking(True)
        sock.settimeout(HEADER_TIMEOUT + BODY_TIMEOUT + SLACK + 5)
