"""A revoked key or disabled reseller stops working on every instance within
``key_cache_seconds``, although each instance caches key look-ups."""

from __future__ import annotations

import asyncio
import time

import httpx
from access_routes import ROUTES, MakeGateway
from cli_runner import gateway_cli, printed

from gateway.api.testing import serve_in_process
from gateway.app import create_app

CACHE_SECONDS = 1.0


async def _wait_refused(clients: list[httpx.AsyncClient], token: str, since: float) -> list[float]:
    """Seconds after ``since`` at which each instance first refused ``token``."""
    refused_after: list[float] = []
    for client in clients:
        while True:
            response = await client.get("/v1/test/whoami", headers={"X-API-Key": token})
            if response.status_code != 200:
                assert response.status_code in (401, 403)
                refused_after.append(time.monotonic() - since)
                break
            assert time.monotonic() - since < CACHE_SECONDS + 2, "still admitted"
            await asyncio.sleep(0.05)
    return refused_after


async def test_revocation_reaches_two_instances(
    make_gateway: MakeGateway, redis_url: str, key_prefix: str
) -> None:
    a = await make_gateway(key_cache_seconds=CACHE_SECONDS)
    b = await make_gateway(key_cache_seconds=CACHE_SECONDS)
    reseller = printed(await gateway_cli(redis_url, key_prefix, "resellers", "create", "R"), "id")
    made = await gateway_cli(redis_url, key_prefix, "keys", "create", reseller)
    token, key_id = printed(made, "api key"), printed(made, "key id")
    second = printed(
        await gateway_cli(redis_url, key_prefix, "keys", "create", reseller), "api key"
    )
    async with (
        serve_in_process(create_app(gateway=a, extra_routes=ROUTES)) as client_a,
        serve_in_process(create_app(gateway=b, extra_routes=ROUTES)) as client_b,
    ):
        for client in (client_a, client_b):  # both instances now hold the key in cache
            for key in (token, second):
                response = await client.get("/v1/test/whoami", headers={"X-API-Key": key})
                assert response.status_code == 200

        assert (await gateway_cli(redis_url, key_prefix, "keys", "revoke", key_id)).exit_code == 0
        revoked_at = time.monotonic()
        lags = await _wait_refused([client_a, client_b], token, revoked_at)
        assert all(lag <= CACHE_SECONDS + 0.5 for lag in lags), lags
        # The reseller's other key is untouched...
        for client in (client_a, client_b):
            response = await client.get("/v1/test/whoami", headers={"X-API-Key": second})
            assert response.status_code == 200

        # ... until the reseller is disabled, which stops it everywhere as well.
        result = await gateway_cli(redis_url, key_prefix, "resellers", "disable", reseller)
        assert result.exit_code == 0
        disabled_at = time.monotonic()
        lags = await _wait_refused([client_a, client_b], second, disabled_at)
        assert all(lag <= CACHE_SECONDS + 0.5 for lag in lags), lags
