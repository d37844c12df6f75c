"""Authentication and authorisation over HTTP, against real Redis."""

from __future__ import annotations

import asyncio
from typing import Any

from access_routes import ROUTES, MakeGateway

from gateway.access.testing import issue_key
from gateway.api.testing import serve_in_process
from gateway.app import create_app


async def test_bearer_and_x_api_key_both_authenticate(make_gateway: MakeGateway) -> None:
    gw = await make_gateway()
    caller = await issue_key(gw)
    async with serve_in_process(create_app(gateway=gw, extra_routes=ROUTES)) as client:
        for headers in (
            {"Authorization": f"Bearer {caller.token}"},
            {"Authorization": f"bearer {caller.token}"},
            {"X-API-Key": caller.token},
        ):
            response = await client.get("/v1/test/whoami", headers=headers)
            assert response.status_code == 200, response.text
            assert response.json() == {"reseller_id": caller.reseller.id, "key_id": caller.key.id}
            assert caller.token not in response.text


async def test_missing_key_is_401_with_a_challenge(make_gateway: MakeGateway) -> None:
    gw = await make_gateway()
    async with serve_in_process(create_app(gateway=gw, extra_routes=ROUTES)) as client:
        for headers in ({}, {"Authorization": "Basic dXNlcjpwYXNz"}, {"X-API-Key": ""}):
            response = await client.get("/v1/test/whoami", headers=headers)
            assert response.status_code == 401
            assert response.headers["WWW-Authenticate"].startswith("Bearer")
            error = response.json()["error"]
            assert error["code"] == "authentication_required"
            assert error["request_id"] == response.headers["X-Request-ID"]


async def test_invalid_keys_are_401(make_gateway: MakeGateway) -> None:
    gw = await make_gateway()
    caller = await issue_key(gw)
    forged = caller.token[:-4] + ("AAAA" if not caller.token.endswith("AAAA") else "BBBB")
    unknown = "gw_live_000000000000_" + "A" * 43
    async with serve_in_process(create_app(gateway=gw, extra_routes=ROUTES)) as client:
        for token in (forged, unknown, "not-a-key", caller.token + "x"):
            response = await client.get("/v1/test/whoami", headers={"X-API-Key": token})
            assert response.status_code == 401, token
            assert response.json()["error"]["code"] == "invalid_api_key"
            assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]


async def test_a_key_without_the_scope_is_403(make_gateway: MakeGateway) -> None:
    gw = await make_gateway()
    reader = await issue_key(gw, scopes=["catalog:read"])
    async with serve_in_process(create_app(gateway=gw, extra_routes=ROUTES)) as client:
        assert (await client.get("/v1/test/whoami", headers=reader.headers)).status_code == 200
        for method in ("GET", "POST"):
            response = await client.request(method, "/v1/test/orders", headers=reader.headers)
            assert response.status_code == 403
            assert response.json()["error"]["code"] == "insufficient_scope"
            assert "orders:" in response.headers["WWW-Authenticate"]


async def test_scopes_are_independent(make_gateway: MakeGateway) -> None:
    gw = await make_gateway()
    writer = await issue_key(gw, scopes=["orders:write"])
    async with serve_in_process(create_app(gateway=gw, extra_routes=ROUTES)) as client:
        assert (await client.post("/v1/test/orders", headers=writer.headers)).status_code == 201
        assert (await client.get("/v1/test/orders", headers=writer.headers)).status_code == 403
        assert (await client.get("/v1/test/whoami", headers=writer.headers)).status_code == 403


async def test_public_routes_need_no_key_and_wrong_methods_are_405_first(
    make_gateway: MakeGateway,
) -> None:
    gw = await make_gateway()
    async with serve_in_process(create_app(gateway=gw, extra_routes=ROUTES)) as client:
        assert (await client.get("/healthz")).status_code == 200
        assert (await client.get("/openapi.json")).status_code == 200
        response = await client.delete("/v1/test/whoami")
        assert response.status_code == 405
        assert response.json()["error"]["code"] == "method_not_allowed"
        assert set(response.headers["Allow"].replace(" ", "").split(",")) == {"GET", "HEAD"}


async def _status(client: Any, token: str, *, ip: str | None = None) -> int:
    headers = {"X-API-Key": token}
    if ip is not None:
        headers["X-Forwarded-For"] = ip
    return (await client.get("/v1/test/whoami", headers=headers)).status_code


async def test_ip_allowlist_from_the_direct_peer(make_gateway: MakeGateway) -> None:
    gw = await make_gateway()
    caller = await issue_key(gw, allowed_ips=["203.0.113.0/24", "2001:db8::/32"])
    app = create_app(gateway=gw, extra_routes=ROUTES)
    async with serve_in_process(app, client_ip="203.0.113.50") as client:
        assert await _status(client, caller.token) == 200
        # No trusted proxies: a forged X-Forwarded-For changes nothing either way.
        assert await _status(client, caller.token, ip="198.51.100.1") == 200
    async with serve_in_process(app, client_ip="198.51.100.1") as client:
        response = await client.get("/v1/test/whoami", headers=caller.headers)
        assert response.status_code == 403
        assert response.json()["error"]["code"] == "ip_not_allowed"
        assert await _status(client, caller.token, ip="203.0.113.50") == 403


async def test_ip_allowlist_behind_a_trusted_proxy(make_gateway: MakeGateway) -> None:
    gw = await make_gateway(trusted_proxies=["10.0.0.0/8"])
    caller = await issue_key(gw, allowed_ips=["203.0.113.0/24"])
    app = create_app(gateway=gw, extra_routes=ROUTES)
    async with serve_in_process(app, client_ip="10.1.2.3") as proxy:
        assert await _status(proxy, caller.token, ip="203.0.113.50") == 200
        # The client put an allowed address first; the proxy appended the real one.
        assert await _status(proxy, caller.token, ip="203.0.113.50, 198.51.100.1") == 403
        assert await _status(proxy, caller.token, ip="198.51.100.1, 10.0.0.9") == 403
        assert await _status(proxy, caller.token) == 403  # the proxy itself is not allowed
    async with serve_in_process(app, client_ip="198.51.100.1") as untrusted:
        assert await _status(untrusted, caller.token, ip="203.0.113.50") == 403


async def test_a_disabled_reseller_s_keys_stop_working(make_gateway: MakeGateway) -> None:
    gw = await make_gateway(key_cache_seconds=0)
    caller = await issue_key(gw)
    store = gw.services.access.store
    async with serve_in_process(create_app(gateway=gw, extra_routes=ROUTES)) as client:
        assert await _status(client, caller.token) == 200
        await store.set_reseller_status(caller.reseller.id, "disabled")
        response = await client.get("/v1/test/whoami", headers=caller.headers)
        assert response.status_code == 403
        assert response.json()["error"]["code"] == "reseller_disabled"
        await store.set_reseller_status(caller.reseller.id, "active")
        assert await _status(client, caller.token) == 200


async def test_rotation_with_grace_keeps_both_keys_until_the_old_one_expires(
    make_gateway: MakeGateway,
) -> None:
    gw = await make_gateway(key_cache_seconds=0)
    caller = await issue_key(gw, scopes=["catalog:read"], rate_limit=50)
    store = gw.services.access.store
    async with serve_in_process(create_app(gateway=gw, extra_routes=ROUTES)) as client:
        issued = await store.rotate_key(caller.key.id, grace_seconds=3600)
        new = issued.token.get_secret_value()
        assert issued.key.scopes == caller.key.scopes and issued.key.rate_limit == 50
        assert await _status(client, caller.token) == 200
        assert await _status(client, new) == 200
        await store.rotate_key(issued.key.id)  # no grace: revoked at once
        assert await _status(client, new) == 401


async def test_a_remembered_key_stops_at_its_expiry_not_at_the_cache_refresh(
    make_gateway: MakeGateway,
) -> None:
    """Remembering a key that matched must not stretch its life: a key rotated with a
    short grace stops when the grace ends, though the cache would keep it a minute."""
    gw = await make_gateway(key_cache_seconds=60)
    caller = await issue_key(gw, scopes=["catalog:read"])
    store = gw.services.access.store
    await store.rotate_key(caller.key.id, grace_seconds=1.5)
    async with serve_in_process(create_app(gateway=gw, extra_routes=ROUTES)) as client:
        assert await _status(client, caller.token) == 200  # remembered from here on
        assert await _status(client, caller.token) == 200
        await asyncio.sleep(1.6)  # past the 1.5 s grace: the expiry is what is tested
        response = await client.get("/v1/test/whoami", headers=caller.headers)
        assert response.status_code == 401
        assert response.json()["error"]["message"] == "the API key has been revoked or has expired"


def _count_loads(gw: Any, *, delay: float = 0.0) -> list[str]:
    """Record the key ids the access store reads (each read ``delay`` seconds slower)."""
    store = gw.services.access.store
    loads: list[str] = []
    original = store.load

    async def counting_load(key_id: str) -> Any:
        loads.append(key_id)
        if delay:
            await asyncio.sleep(delay)
        return await original(key_id)

    store.load = counting_load
    return loads


async def test_authentication_is_cached_in_process(make_gateway: MakeGateway) -> None:
    """Only the first request of a key reads Redis for authentication."""
    gw = await make_gateway(key_cache_seconds=60)
    caller = await issue_key(gw)
    loads = _count_loads(gw)
    async with serve_in_process(create_app(gateway=gw, extra_routes=ROUTES)) as client:
        for _ in range(20):
            assert await _status(client, caller.token) == 200
        for _ in range(5):
            assert await _status(client, "gw_live_0123456789ab_" + "Z" * 43) == 401
    assert loads == [caller.key.id, "0123456789ab"]


async def test_concurrent_first_requests_of_a_key_read_the_store_once(
    make_gateway: MakeGateway,
) -> None:
    """When a busy key's cache entry is cold or has just expired, its requests in flight
    share one look-up instead of each reading (and parsing) the record."""
    gw = await make_gateway(key_cache_seconds=60)
    caller = await issue_key(gw)
    other = await issue_key(gw)
    # Each look-up takes 50 ms: still in flight when the other requests arrive.
    loads = _count_loads(gw, delay=0.05)
    wrong = caller.token[:-1] + ("A" if caller.token[-1] != "A" else "E")  # same key id
    async with serve_in_process(create_app(gateway=gw, extra_routes=ROUTES)) as client:
        statuses = await asyncio.gather(
            *(_status(client, caller.token) for _ in range(20)),
            *(_status(client, other.token) for _ in range(5)),
            *(_status(client, wrong) for _ in range(5)),
        )
    assert statuses == [200] * 25 + [401] * 5
    assert sorted(loads) == sorted([caller.key.id, other.key.id])


async def test_store_unreachable_on_a_cache_miss_is_503(make_gateway: MakeGateway) -> None:
    import redis.asyncio as aioredis

    from gateway.access.service import Access

    gw = await make_gateway()
    dead = aioredis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.5)
    gw.services.access = Access.build(dead, gw.keys, gw.settings.access)
    async with serve_in_process(create_app(gateway=gw, extra_routes=ROUTES)) as client:
        response = await client.get(
            "/v1/test/whoami", headers={"X-API-Key": "gw_live_0123456789ab_" + "Z" * 43}
        )
    await dead.aclose()
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "service_unavailable"
    assert response.headers["Retry-After"] == "1"
