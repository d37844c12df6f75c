"""Rotation acts on the current key only: an expired key stays dead, a grace period is
never extended, and of two rotations of one key only one issues a working key."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
import redis.asyncio as aioredis
from access_routes import ROUTES, MakeGateway
from cli_runner import gateway_cli, printed

import gateway.access.store as access_store
from gateway.access.store import AccessRecordError, KeyStore
from gateway.api.testing import serve_in_process
from gateway.app import create_app
from gateway.redis_keys import RedisKeys


async def test_rotating_an_expired_key_again_does_not_revive_it(
    make_gateway: MakeGateway,
    redis: aioredis.Redis,
    redis_url: str,
    key_prefix: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    reseller = printed(await gateway_cli(redis_url, key_prefix, "resellers", "create", "R"), "id")
    made = await gateway_cli(redis_url, key_prefix, "keys", "create", reseller)
    token, key_id = printed(made, "api key"), printed(made, "key id")
    gw = await make_gateway(key_cache_seconds=0)
    async with serve_in_process(create_app(gateway=gw, extra_routes=ROUTES)) as client:

        async def status(key: str) -> int:
            response = await client.get("/v1/test/whoami", headers={"X-API-Key": key})
            return response.status_code

        assert await status(token) == 200
        # The first rotation happens (on the store's clock) 10 s ago with 1 s of grace:
        # the old key expired 9 s ago, without the test waiting for it.
        real_now = access_store._now
        monkeypatch.setattr(access_store, "_now", lambda: real_now() - timedelta(seconds=10))
        first = await gateway_cli(
            redis_url, key_prefix, "keys", "rotate", key_id, "--grace-seconds", "1"
        )
        monkeypatch.setattr(access_store, "_now", real_now)
        assert first.exit_code == 0, first.output
        replacement = printed(first, "api key")
        assert await status(token) == 401
        assert await status(replacement) == 200

        again = await gateway_cli(
            redis_url, key_prefix, "keys", "rotate", key_id, "--grace-seconds", "600"
        )
        assert again.exit_code != 0
        assert f"key {key_id} has expired" in again.output and "Traceback" not in again.output
        assert await status(token) == 401, "rotating an expired key revived it"
        record = await KeyStore(redis, RedisKeys(key_prefix)).get_key(key_id)
        assert record is not None and record.key.expires_at is not None
        assert record.key.expires_at < datetime.now(UTC)
        # No stray key was issued by the refused rotation.
        keys = await KeyStore(redis, RedisKeys(key_prefix)).list_keys(reseller)
        assert len(keys) == 2


async def test_a_key_in_its_grace_period_cannot_be_rotated_again(
    make_gateway: MakeGateway, redis: aioredis.Redis, redis_url: str, key_prefix: str
) -> None:
    reseller = printed(await gateway_cli(redis_url, key_prefix, "resellers", "create", "R"), "id")
    key_id = printed(await gateway_cli(redis_url, key_prefix, "keys", "create", reseller), "key id")
    first = await gateway_cli(
        redis_url, key_prefix, "keys", "rotate", key_id, "--grace-seconds", "60"
    )
    assert first.exit_code == 0, first.output
    store = KeyStore(redis, RedisKeys(key_prefix))
    before = await store.get_key(key_id)
    assert before is not None and before.key.expires_at is not None

    for grace in ("600", "0"):
        again = await gateway_cli(
            redis_url, key_prefix, "keys", "rotate", key_id, "--grace-seconds", grace
        )
        assert again.exit_code != 0
        assert "already rotated" in again.output and "rotate its replacement" in again.output
    after = await store.get_key(key_id)
    assert after == before  # the grace period was neither extended nor cut short

    # The replacement is the current key and rotates as usual.
    replacement_id = printed(first, "key id")
    rotated = await gateway_cli(redis_url, key_prefix, "keys", "rotate", replacement_id)
    assert rotated.exit_code == 0, rotated.output
    for grace in ("-1", "nan", "inf", str(31 * 24 * 3600)):
        bad = await gateway_cli(
            redis_url, key_prefix, "keys", "rotate", printed(rotated, "key id"),
            "--grace-seconds", grace,
        )  # fmt: skip
        assert bad.exit_code != 0 and "grace period" in bad.output, (grace, bad.output)
        assert "Traceback" not in bad.output


async def test_two_rotations_at_once_issue_one_working_key(
    redis: aioredis.Redis, key_prefix: str
) -> None:
    store = KeyStore(redis, RedisKeys(key_prefix))
    reseller = (await store.create_reseller("R")).reseller.id
    key_id = (await store.create_key(reseller)).key.id
    results = await asyncio.gather(
        *(store.rotate_key(key_id, grace_seconds=60) for _ in range(5)), return_exceptions=True
    )
    issued = [r for r in results if not isinstance(r, BaseException)]
    refused = [r for r in results if isinstance(r, BaseException)]
    assert len(issued) == 1, results
    assert all(isinstance(r, AccessRecordError) for r in refused), refused
    ids = {k.id for k in await store.list_keys(reseller)}
    assert ids == {key_id, issued[0].key.id}  # the losers' keys were withdrawn
