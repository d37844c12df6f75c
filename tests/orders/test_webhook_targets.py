"""Webhooks go to allowed addresses only: URLs are checked when written and when sent,
the host is resolved at send time, every address checked, and the connection made to
the checked address. Loopback only: refused targets are checked to get no connection,
and names are resolved by a resolver of the test's own."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from orders_harness import Picks, make_settings, order_settings, start_receiver, wait_until

from gateway.orders.models import WebhookState
from gateway.orders.webhooks import WebhookSender
from gateway.webhook_targets import TargetRefused, check_url

REFUSED_ALWAYS = [
    "ftp://hooks.example/x",
    "hooks.example/x",
    "http://user:pw@hooks.example/x",
    "https://token@hooks.example/x",
    "http://169.254.169.254/latest/meta-data/",
    "http://[fd00:ec2::254]/",
    "http://169.254.1.1/",
    "http://[fe80::1]/",
    "http://0.0.0.0:8080/",
    "http://[::]/",
    "http://224.0.0.1/",
    "http://[ff02::1]/",
    "http://255.255.255.255/",
    "http://0x7f000001/",
    "http://2130706433/",
    "http://017700000001/",
    "http://127.1/",
    "http://0x7f.0.0.1/",
    "http://[::ffff:169.254.169.254]/",
]
REFUSED_UNLESS_PRIVATE_ALLOWED = [
    "http://127.0.0.1:6379/",
    "http://[::1]:8080/hooks",
    "http://10.1.2.3/",
    "http://172.16.0.1/",
    "http://192.168.0.10/",
    "http://100.64.0.1/",
    "http://[fd12:3456::1]/",
    "http://[::ffff:127.0.0.1]/",
    "http://[::ffff:7f00:1]/",
    "http://[64:ff9b::a01:203]/",
    "http://localhost:8000/",
    "http://api.localhost/",
]
ALLOWED = [
    "https://shop.example/hooks",
    "http://93.184.216.34:8080/h",
    "https://[2606:4700::1111]/",
]


def test_urls_are_checked_without_the_network() -> None:
    for url in REFUSED_ALWAYS:
        for allow_private in (False, True):
            with pytest.raises(TargetRefused):
                check_url(url, allow_private=allow_private)
    for url in REFUSED_UNLESS_PRIVATE_ALLOWED:
        with pytest.raises(TargetRefused):
            check_url(url, allow_private=False)
        check_url(url, allow_private=True)
    for url in ALLOWED:
        check_url(url, allow_private=False)


@dataclass
class Listener:
    """A loopback HTTP endpoint that counts connections and answers 200."""

    port: int = 0
    connections: int = 0
    requests: list[tuple[str, bytes]] = field(default_factory=list)


@pytest.fixture
async def listener() -> AsyncIterator[Listener]:
    state = Listener()

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        state.connections += 1
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            headers = dict(line.lower().split(": ", 1) for line in lines[1:] if ": " in line)
            body = await reader.readexactly(int(headers.get("content-length", "0")))
            state.requests.append((headers.get("host", ""), body))
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            await writer.drain()
        finally:
            writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    state.port = server.sockets[0].getsockname()[1]
    async with server:
        yield state


def resolver(answers: dict[str, list[str]], asked: list[str]) -> Any:
    async def resolve(host: str, port: int) -> list[str]:
        asked.append(host)
        return answers[host]

    return resolve


async def test_a_name_resolving_to_loopback_is_refused_before_connecting(
    listener: Listener,
) -> None:
    """DNS rebinding: a name the check at write time could not judge resolves to a
    loopback address at send time; with private targets off, nothing is sent."""
    asked: list[str] = []
    sender = WebhookSender(timeout=2, resolve=resolver({"hooks.example": ["127.0.0.1"]}, asked))
    try:
        status, error = await sender.send(
            f"http://hooks.example:{listener.port}/h", "whsec_x", "evt_1", b"{}"
        )
    finally:
        await sender.aclose()
    assert status is None and error is not None and "refused" in error
    assert asked == ["hooks.example"]
    assert listener.connections == 0


async def test_every_resolved_address_is_checked(listener: Listener) -> None:
    asked: list[str] = []
    answers = {"hooks.example": ["127.0.0.1", "169.254.169.254"]}
    sender = WebhookSender(timeout=2, allow_private=True, resolve=resolver(answers, asked))
    try:
        status, error = await sender.send(
            f"http://hooks.example:{listener.port}/h", "whsec_x", "evt_1", b"{}"
        )
    finally:
        await sender.aclose()
    assert status is None and error is not None and "refused" in error
    assert asked == ["hooks.example"] and listener.connections == 0


async def test_the_connection_goes_to_the_checked_address(listener: Listener) -> None:
    """With private targets allowed, the name is resolved once by the gateway's resolver
    and the request reaches the address it returned, under the URL's host name."""
    asked: list[str] = []
    sender = WebhookSender(
        timeout=2, allow_private=True, resolve=resolver({"hooks.example": ["127.0.0.1"]}, asked)
    )
    try:
        status, error = await sender.send(
            f"http://hooks.example:{listener.port}/h", "whsec_x", "evt_1", b'{"a":1}'
        )
    finally:
        await sender.aclose()
    assert (status, error) == (200, None)
    assert asked == ["hooks.example"]
    assert listener.requests == [(f"hooks.example:{listener.port}", b'{"a":1}')]


async def test_a_stored_url_refused_now_is_not_sent_to(listener: Listener) -> None:
    """A URL written before these checks (or by hand) is checked again when sending,
    before any resolution or connection."""
    asked: list[str] = []
    sender = WebhookSender(timeout=2, resolve=resolver({}, asked))
    try:
        for url in (
            f"http://127.0.0.1:{listener.port}/h",
            f"http://2130706433:{listener.port}/h",
            f"http://[::ffff:127.0.0.1]:{listener.port}/h",
            f"http://u:p@127.0.0.1:{listener.port}/h",
        ):
            status, error = await sender.send(url, "whsec_x", "evt_1", b"{}")
            assert status is None and error is not None and "refused" in error, url
    finally:
        await sender.aclose()
    assert asked == [] and listener.connections == 0


async def test_an_order_webhook_to_a_loopback_url_is_refused_by_default(
    make_instance: Any, picks: Picks, redis_url: str, key_prefix: str, sandboxes: Any
) -> None:
    """End to end: a reseller record holding a loopback URL (written before the checks
    existed) gets no POST; the attempts record why, and the order itself completes."""
    receiver = start_receiver()
    try:
        settings = make_settings(
            redis_url,
            key_prefix,
            sandboxes,
            orders=order_settings(webhook_allow_private_targets=False, webhook_max_seconds=0.5),
        )
        inst = await make_instance(settings)
        caller = await inst.caller()
        name = inst.gateway.keys.reseller(caller.reseller.id)
        record = json.loads(await inst.gateway.redis.get(name))
        await inst.gateway.redis.set(name, json.dumps({**record, "webhook_url": receiver.url}))
        inst.gateway.services.access.authenticator.forget()

        created = await inst.client.post(
            "/v1/orders",
            json={"items": [{"variant_id": picks.voucher_fixed, "quantity": 1}]},
            headers={**caller.headers, "Idempotency-Key": str(uuid.uuid4()), "Prefer": "wait=5"},
        )
        assert created.status_code == 201, created.text
        order_id = created.json()["data"]["id"]

        async def gave_up() -> Any:
            loaded = await inst.orders.store.load(order_id)
            hook = loaded.order.webhook
            return hook if hook is not None and hook.state is WebhookState.FAILED else None

        hook = await wait_until(gave_up, 10)
        assert hook is not None, "the webhook never gave up"
        assert hook.attempts >= 1 and hook.last_status is None
        assert hook.last_error is not None and "refused" in hook.last_error
        assert receiver.received == []
    finally:
        receiver.server.stop()
