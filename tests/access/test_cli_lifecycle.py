"""Reseller and key lifecycle through the real CLI, against real Redis."""

from __future__ import annotations

import redis.asyncio as aioredis
from access_routes import ROUTES, MakeGateway
from cli_runner import gateway_cli, printed
from click.testing import CliRunner

from gateway.access.store import KeyStore
from gateway.api.testing import serve_in_process
from gateway.app import create_app
from gateway.cli import main
from gateway.redis_keys import RedisKeys


async def test_create_show_and_use_a_key(
    make_gateway: MakeGateway, redis: aioredis.Redis, redis_url: str, key_prefix: str
) -> None:
    created = await gateway_cli(
        redis_url,
        key_prefix,
        "resellers",
        "create",
        "Acme Games",
        "--markup-percent",
        "7.5",
        "--markup-fixed-minor",
        "10",
        "--webhook-url",
        "https://acme.example/hooks",
    )
    assert created.exit_code == 0, created.output
    reseller_id = printed(created, "id")
    secret = printed(created, "webhook secret")
    assert secret.startswith("whsec_")

    made = await gateway_cli(
        redis_url,
        key_prefix,
        "keys",
        "create",
        reseller_id,
        "--scope",
        "catalog:read",
        "--rate-limit",
        "120",
        "--allow-ip",
        "127.0.0.0/8",
        "--name",
        "shop",
    )
    assert made.exit_code == 0, made.output
    token, key_id = printed(made, "api key"), printed(made, "key id")
    assert token.startswith(f"gw_live_{key_id}_")

    shown = await gateway_cli(redis_url, key_prefix, "resellers", "show", reseller_id)
    assert shown.exit_code == 0, shown.output
    assert "7.5% + 10" in shown.output and "https://acme.example/hooks" in shown.output
    assert key_id in shown.output and "120/min" in shown.output and "127.0.0.0/8" in shown.output
    assert token not in shown.output and secret not in shown.output
    listed = await gateway_cli(redis_url, key_prefix, "resellers", "list")
    assert reseller_id in listed.output and "Acme Games" in listed.output

    # Only the hash of the key is in Redis; the reseller carries markup and webhook.
    async for name in redis.scan_iter(match=f"{key_prefix}:*"):
        if await redis.type(name) == b"string":
            assert token.encode() not in await redis.get(name)
    store = KeyStore(redis, RedisKeys(key_prefix))
    reseller = await store.require_reseller(reseller_id)
    assert reseller.markup is not None and str(reseller.markup.percent) == "7.5"
    assert reseller.webhook_secret is not None
    assert reseller.webhook_secret.get_secret_value() == secret
    assert secret not in repr(reseller)

    gw = await make_gateway(key_cache_seconds=0)
    async with serve_in_process(create_app(gateway=gw, extra_routes=ROUTES)) as client:
        ok = await client.get("/v1/test/whoami", headers={"Authorization": f"Bearer {token}"})
        assert ok.status_code == 200
        assert ok.json()["reseller_id"] == reseller_id
        assert ok.headers["X-RateLimit-Limit"] == "120"

        rotated = await gateway_cli(redis_url, key_prefix, "keys", "rotate", key_id)
        assert rotated.exit_code == 0, rotated.output
        new_token = printed(rotated, "api key")
        assert (
            await client.get("/v1/test/whoami", headers={"X-API-Key": token})
        ).status_code == 401
        again = await client.get("/v1/test/whoami", headers={"X-API-Key": new_token})
        assert again.status_code == 200 and again.headers["X-RateLimit-Limit"] == "120"

        revoked = await gateway_cli(
            redis_url, key_prefix, "keys", "revoke", printed(rotated, "key id")
        )
        assert revoked.exit_code == 0, revoked.output
        gone = await client.get("/v1/test/whoami", headers={"X-API-Key": new_token})
        assert gone.status_code == 401

        key2 = printed(
            await gateway_cli(redis_url, key_prefix, "keys", "create", reseller_id), "api key"
        )
        assert (await client.get("/v1/test/whoami", headers={"X-API-Key": key2})).status_code == 200
        disabled = await gateway_cli(redis_url, key_prefix, "resellers", "disable", reseller_id)
        assert disabled.exit_code == 0, disabled.output
        refused = await client.get("/v1/test/whoami", headers={"X-API-Key": key2})
        assert refused.status_code == 403


async def test_bad_input_gives_clear_errors(
    redis: aioredis.Redis, redis_url: str, key_prefix: str
) -> None:
    reseller_id = printed(
        await gateway_cli(redis_url, key_prefix, "resellers", "create", "R"), "id"
    )
    cases = [
        (("keys", "create", "rs_nobody"), "no reseller rs_nobody"),
        (("keys", "create", reseller_id, "--allow-ip", "10.0.0.300/8"), "allowed_ips"),
        (("keys", "create", reseller_id, "--rate-limit", "0"), "rate_limit"),
        (("keys", "create", reseller_id, "--scope", "admin"), "Invalid value"),
        (("keys", "revoke", "000000000000"), "no key 000000000000"),
        (("resellers", "create", "X", "--webhook-url", "ftp://x"), "webhook_url"),
        (("resellers", "create", "X", "--markup-percent", "lots"), "markup"),
        (("resellers", "disable", "rs_nobody"), "no reseller rs_nobody"),
    ]
    for args, message in cases:
        result = await gateway_cli(redis_url, key_prefix, *args)
        assert result.exit_code != 0, args
        assert message in result.output, (args, result.output)
        assert "Traceback" not in result.output


def test_the_embedded_store_has_no_cli(monkeypatch: object) -> None:
    result = CliRunner().invoke(main, ["resellers", "list"], env={"GATEWAY_REDIS_URL": None})
    assert result.exit_code == 2
    assert "GATEWAY_REDIS_URL" in result.output


async def test_update_markup_webhook_and_rotate_the_webhook_secret(
    redis: aioredis.Redis, redis_url: str, key_prefix: str
) -> None:
    created = await gateway_cli(redis_url, key_prefix, "resellers", "create", "Shop")
    reseller_id, first_secret = printed(created, "id"), printed(created, "webhook secret")
    store = KeyStore(redis, RedisKeys(key_prefix))

    updated = await gateway_cli(
        redis_url,
        key_prefix,
        "resellers",
        "update",
        reseller_id,
        "--markup-percent",
        "12",
        "--webhook-url",
        "https://shop.example/hook",
    )
    assert updated.exit_code == 0, updated.output
    assert first_secret not in updated.output  # not rotated, so not shown again
    reseller = await store.require_reseller(reseller_id)
    assert reseller.markup is not None and str(reseller.markup.percent) == "12"
    assert reseller.webhook_url == "https://shop.example/hook"
    assert reseller.webhook_secret is not None
    assert reseller.webhook_secret.get_secret_value() == first_secret

    rotated = await gateway_cli(
        redis_url,
        key_prefix,
        "resellers",
        "update",
        reseller_id,
        "--rotate-webhook-secret",
        "--global-markup",
        "--webhook-url",
        "",
    )
    assert rotated.exit_code == 0, rotated.output
    new_secret = printed(rotated, "webhook secret")
    assert new_secret != first_secret
    reseller = await store.require_reseller(reseller_id)
    assert reseller.markup is None and reseller.webhook_url is None
    assert reseller.webhook_secret is not None
    assert reseller.webhook_secret.get_secret_value() == new_secret

    bad = await gateway_cli(
        redis_url, key_prefix, "resellers", "update", reseller_id, "--webhook-url", "nope"
    )
    assert bad.exit_code != 0 and "webhook_url" in bad.output
    assert (await store.require_reseller(reseller_id)).webhook_url is None
