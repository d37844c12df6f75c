"""Failed authentication is limited per client address, before any Redis read (issue 15
#15: 20,000 made-up keys cost 20,000 GETs)."""

from __future__ import annotations

import asyncio
import ipaddress
import time
from typing import Any

import httpx
import pytest
from access_routes import ROUTES, MakeGateway

from gateway.access.failures import FailedAuthentications
from gateway.access.testing import issue_key
from gateway.access.tokens import new_token
from gateway.api.testing import serve_in_process
from gateway.app import create_app
from gateway.errors import TooManyRequests


def count_loads(gw: Any) -> list[str]:
    """The key ids the access store reads from Redis, in order."""
    store = gw.services.access.store
    loads: list[str] = []
    original = store.load

    async def counting_load(key_id: str) -> Any:
        loads.append(key_id)
        return await original(key_id)

    store.load = counting_load
    return loads


async def whoami(client: httpx.AsyncClient, token: str, **headers: str) -> httpx.Response:
    return await client.get("/v1/test/whoami", headers={"X-API-Key": token, **headers})


async def test_made_up_keys_from_one_address_stop_costing_reads_at_the_limit(
    make_gateway: MakeGateway,
) -> None:
    gw = await make_gateway(failed_auth_limit=3, failed_auth_window_seconds=60)
    caller = await issue_key(gw)
    loads = count_loads(gw)
    app = create_app(gateway=gw, extra_routes=ROUTES)
    async with serve_in_process(app, client_ip="198.51.100.7") as flood:
        statuses = [(await whoami(flood, new_token()[1])).status_code for _ in range(20)]
        assert statuses == [401] * 3 + [429] * 17
        refused = await whoami(flood, new_token()[1])
        assert refused.json()["error"]["code"] == "too_many_failed_authentications"
        assert 1 <= int(refused.headers["Retry-After"]) <= 60
        assert len(loads) == 3  # only the first three reached Redis
        # A key this process has not verified yet is refused too while the address is
        # over the limit: it would cost a look-up.
        assert (await whoami(flood, caller.token)).status_code == 429
    async with serve_in_process(app, client_ip="198.51.100.8") as other:
        assert (await whoami(other, new_token()[1])).status_code == 401
        assert (await whoami(other, caller.token)).status_code == 200
    async with serve_in_process(app, client_ip="198.51.100.7") as flood:
        # ... but a key verified in the meantime passes from there without a look-up.
        assert (await whoami(flood, caller.token)).status_code == 200


async def test_wrong_secrets_for_a_real_key_id_count_and_valid_keys_do_not(
    make_gateway: MakeGateway,
) -> None:
    gw = await make_gateway(failed_auth_limit=2, failed_auth_window_seconds=60)
    caller = await issue_key(gw)
    wrong = caller.token[:-1] + ("A" if caller.token[-1] != "A" else "E")  # same key id
    async with serve_in_process(create_app(gateway=gw, extra_routes=ROUTES)) as client:
        for _ in range(5):
            assert (await whoami(client, caller.token)).status_code == 200
        assert (await client.get("/v1/test/whoami")).status_code == 401  # no key: no count
        assert [(await whoami(client, wrong)).status_code for _ in range(3)] == [401, 401, 429]


async def test_the_window_ends(make_gateway: MakeGateway) -> None:
    gw = await make_gateway(failed_auth_limit=1, failed_auth_window_seconds=0.5)
    async with serve_in_process(create_app(gateway=gw, extra_routes=ROUTES)) as client:
        assert (await whoami(client, new_token()[1])).status_code == 401
        assert (await whoami(client, new_token()[1])).status_code == 429
        deadline = time.monotonic() + 10
        while (status := (await whoami(client, new_token()[1])).status_code) == 429:
            assert time.monotonic() < deadline, "the address stayed refused"
            await asyncio.sleep(0.1)
        assert status == 401


async def test_behind_a_trusted_proxy_each_forwarded_client_has_its_own_count(
    make_gateway: MakeGateway,
) -> None:
    gw = await make_gateway(
        failed_auth_limit=1, failed_auth_window_seconds=60, trusted_proxies=["127.0.0.1/32"]
    )
    async with serve_in_process(create_app(gateway=gw, extra_routes=ROUTES)) as proxy:
        first = {"X-Forwarded-For": "203.0.113.7"}
        assert (await whoami(proxy, new_token()[1], **first)).status_code == 401
        assert (await whoami(proxy, new_token()[1], **first)).status_code == 429
        second = {"X-Forwarded-For": "203.0.113.8"}
        assert (await whoami(proxy, new_token()[1], **second)).status_code == 401


def test_ipv6_clients_count_per_64_and_memory_is_bounded() -> None:
    now = [0.0]
    failures = FailedAuthentications(2, 60, max_addresses=100, clock=lambda: now[0])
    failures.failed(ipaddress.ip_address("2001:db8:1:2::1"))
    failures.failed(ipaddress.ip_address("2001:db8:1:2:ffff::9"))
    with pytest.raises(TooManyRequests) as refused:
        failures.check(ipaddress.ip_address("2001:db8:1:2::77"))
    assert refused.value.retry_after == 60
    failures.check(ipaddress.ip_address("2001:db8:1:3::1"))  # another /64
    for n in range(1000):
        failures.failed(ipaddress.ip_address(f"10.0.{n // 256}.{n % 256}"))
    assert len(failures._windows) <= 100
    now[0] = 61.0
    failures.check(ipaddress.ip_address("2001:db8:1:2::1"))  # the window ended
    off = FailedAuthentications(0, 60)
    for _ in range(10):
        off.failed(None)
    off.check(None)
