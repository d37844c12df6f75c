"""``gateway sync``: the command an operator runs by hand."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import redis as sync_redis
from catalog_support import GG, VO, Sandbox, adapter_values
from click.testing import CliRunner
from cryptography.fernet import Fernet

from gateway.cli import main
from gateway.redis_keys import RedisKeys


@pytest.fixture
def env(sandboxes: dict[str, Sandbox], key_prefix: str, redis_url: str) -> Iterator[dict[str, str]]:
    suppliers = {name: adapter_values(name, box.url) for name, box in sandboxes.items()}
    yield {
        "GATEWAY_REDIS_URL": redis_url,
        "GATEWAY_KEY_PREFIX": key_prefix,
        "GATEWAY_SANDBOX": "off",
        "GATEWAY_SUPPLIERS": json.dumps(suppliers),
        "GATEWAY_ORDERS": json.dumps(
            {"encryption_keys": [Fernet.generate_key().decode()], "inline_workers": False}
        ),
        "GATEWAY_CONFIG_FILE": "",
    }
    client = sync_redis.Redis.from_url(redis_url)
    for key in client.scan_iter(match=f"{key_prefix}:*"):
        client.delete(key)
    client.close()


def current(redis_url: str, key_prefix: str, supplier: str) -> Any:
    client = sync_redis.Redis.from_url(redis_url)
    try:
        return client.get(RedisKeys(key_prefix).catalog_current(supplier))
    finally:
        client.close()


def test_sync_one_supplier_prints_a_summary(
    env: dict[str, str], sandboxes: dict[str, Sandbox], redis_url: str, key_prefix: str
) -> None:
    result = CliRunner().invoke(main, ["sync", "--supplier", GG], env=env)
    assert result.exit_code == 0, result.output
    products = sandboxes[GG].control.info["products"]
    assert f"{GG}: published version 1" in result.output
    assert f"products {products}, pages 6, upstream requests 6" in result.output
    assert "429s seen 0" in result.output and "duration" in result.output
    assert current(redis_url, key_prefix, GG) == b"1"
    assert current(redis_url, key_prefix, VO) is None  # only the one asked for


def test_a_failing_supplier_exits_1_and_says_why(
    env: dict[str, str], sandboxes: dict[str, Sandbox], redis_url: str, key_prefix: str
) -> None:
    sandboxes[VO].faults(error_rate=1.0)
    result = CliRunner().invoke(main, ["sync"], env=env)
    assert result.exit_code == 1, result.output
    assert f"{GG}: published version" in result.output
    assert f"{VO}: FAILED" in result.output and "previous snapshot keeps serving" in result.output
    assert current(redis_url, key_prefix, VO) is None


def test_unknown_supplier_and_missing_redis_are_usage_errors(env: dict[str, str]) -> None:
    unknown = CliRunner().invoke(main, ["sync", "--supplier", "nobody"], env=env)
    assert unknown.exit_code == 2 and "not a configured supplier: nobody" in unknown.output
    no_redis = CliRunner().invoke(main, ["sync"], env={**env, "GATEWAY_REDIS_URL": None})  # type: ignore[dict-item]
    assert no_redis.exit_code == 2 and "GATEWAY_REDIS_URL" in no_redis.output
