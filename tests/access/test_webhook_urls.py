"""``gateway resellers create/update --webhook-url`` refuses URLs pointing into the
gateway's own network unless ``orders.webhook_allow_private_targets`` is set."""

from __future__ import annotations

import asyncio

import redis.asyncio as aioredis
from cli_runner import gateway_cli, printed
from click.testing import CliRunner, Result

from gateway.access.store import KeyStore
from gateway.cli import main
from gateway.redis_keys import RedisKeys

INTERNAL = [
    "http://127.0.0.1:6379/",
    "http://169.254.169.254/latest/meta-data/",
    "http://[fd00:ec2::254]/",
    "http://[fe80::1]/",
    "http://[::1]/hooks",
    "http://0x7f000001/",
    "http://2130706433/",
    "http://017700000001/",
    "http://[::ffff:127.0.0.1]/",
    "http://10.0.0.5/",
    "http://0.0.0.0/",
    "http://224.0.0.1/",
    "http://localhost:8080/",
    "http://user:pw@shop.example/hooks",
    "gopher://shop.example/",
]


async def _cli_allowing_private(redis_url: str, key_prefix: str, *args: str) -> Result:
    env = {
        "GATEWAY_REDIS_URL": redis_url,
        "GATEWAY_KEY_PREFIX": key_prefix,
        "GATEWAY_ORDERS__WEBHOOK_ALLOW_PRIVATE_TARGETS": "true",
    }
    return await asyncio.to_thread(CliRunner().invoke, main, list(args), env=env)


async def test_internal_webhook_urls_are_refused(
    redis: aioredis.Redis, redis_url: str, key_prefix: str
) -> None:
    store = KeyStore(redis, RedisKeys(key_prefix))
    created = await gateway_cli(
        redis_url, key_prefix, "resellers", "create", "Shop", "--webhook-url",
        "https://shop.example/hooks",
    )  # fmt: skip
    assert created.exit_code == 0, created.output
    reseller_id = printed(created, "id")
    for url in INTERNAL:
        made = await gateway_cli(
            redis_url, key_prefix, "resellers", "create", "X", "--webhook-url", url
        )
        assert made.exit_code != 0, url
        assert "webhook_url" in made.output and "Traceback" not in made.output, made.output
        updated = await gateway_cli(
            redis_url, key_prefix, "resellers", "update", reseller_id, "--webhook-url", url
        )
        assert updated.exit_code != 0, url
        assert "webhook_url" in updated.output, updated.output
    assert [r.id for r in await store.list_resellers()] == [reseller_id]  # nothing else made
    reseller = await store.require_reseller(reseller_id)
    assert reseller.webhook_url == "https://shop.example/hooks"  # no update went through


async def test_private_targets_when_the_operator_allows_them(
    redis: aioredis.Redis, redis_url: str, key_prefix: str
) -> None:
    allowed = await _cli_allowing_private(
        redis_url, key_prefix, "resellers", "create", "Internal", "--webhook-url",
        "http://10.0.0.5:8080/hooks",
    )  # fmt: skip
    assert allowed.exit_code == 0, allowed.output
    reseller_id = printed(allowed, "id")
    store = KeyStore(redis, RedisKeys(key_prefix))
    assert (await store.require_reseller(reseller_id)).webhook_url == "http://10.0.0.5:8080/hooks"
    # Metadata, odd numeric forms and credentials in the URL stay refused regardless.
    for url in ("http://169.254.169.254/", "http://2130706433/", "http://u:p@10.0.0.5/"):
        refused = await _cli_allowing_private(
            redis_url, key_prefix, "resellers", "update", reseller_id, "--webhook-url", url
        )
        assert refused.exit_code != 0 and "webhook_url" in refused.output, (url, refused.output)
