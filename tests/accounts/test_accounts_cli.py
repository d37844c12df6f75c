"""``gateway accounts ...`` against real Redis: top-ups, adjustments, limits, show,
statement; every refusal an operator can hit; and the ledger summing to the balance."""

from __future__ import annotations

import asyncio
import csv
import io
import json

import redis.asyncio as aioredis
from click.testing import CliRunner, Result

from gateway.access.store import KeyStore
from gateway.accounts.store import AccountStore
from gateway.cli import main
from gateway.redis_keys import RedisKeys


async def cli(redis_url: str, key_prefix: str, *args: str) -> Result:
    env = {"GATEWAY_REDIS_URL": redis_url, "GATEWAY_KEY_PREFIX": key_prefix}
    return await asyncio.to_thread(CliRunner().invoke, main, list(args), env=env)


async def reseller(redis: aioredis.Redis, key_prefix: str) -> str:
    created = await KeyStore(redis, RedisKeys(key_prefix)).create_reseller("Acme")
    return created.reseller.id


async def ledger_sums(store: AccountStore, rid: str, currency: str) -> tuple[int, int]:
    entries = await store.entries(rid, currency)
    return sum(e.balance_change for e in entries), sum(e.hold_change for e in entries)


async def test_topup_is_booked_once_per_reference(
    redis: aioredis.Redis, redis_url: str, key_prefix: str
) -> None:
    rid = await reseller(redis, key_prefix)
    first = await cli(
        redis_url, key_prefix, "accounts", "topup", rid, "250.00", "EUR", "--reference", "bank-1"
    )
    assert first.exit_code == 0, first.output
    assert "booked" in first.output and "balance 250.00 EUR" in first.output
    again = await cli(
        redis_url, key_prefix, "accounts", "topup", rid, "250.00", "eur", "--reference", "bank-1"
    )
    assert again.exit_code == 0 and "already booked" in again.output
    other = await cli(
        redis_url, key_prefix, "accounts", "topup", rid, "99.00", "EUR", "--reference", "bank-1"
    )
    assert other.exit_code == 1 and "bank-1" in other.output and "already used" in other.output

    store = AccountStore(redis, RedisKeys(key_prefix))
    account = await store.get(rid, "EUR")
    assert account is not None and account.balance == 25000 and account.available == 25000
    assert await ledger_sums(store, rid, "EUR") == (25000, 0)
    entries = await store.entries(rid, "EUR")
    assert [(e.kind.value, e.amount, e.reference) for e in entries] == [("topup", 25000, "bank-1")]


async def test_operator_mistakes_are_refused_with_a_reason(
    redis: aioredis.Redis, redis_url: str, key_prefix: str
) -> None:
    rid = await reseller(redis, key_prefix)
    cases = [
        (("topup", "rs_nobody", "10.00", "EUR", "--reference", "r"), "no reseller rs_nobody"),
        (("topup", rid, "10.001", "EUR", "--reference", "r"), "at most 2 decimals"),
        (("topup", rid, "10.5", "JPY", "--reference", "r"), "no decimals"),
        (("topup", rid, "1.0001", "BHD", "--reference", "r"), "at most 3 decimals"),
        (("topup", rid, "10.00", "EURO", "--reference", "r"), "not an ISO 4217"),
        (("topup", rid, "10.00", "XYZ", "--reference", "r"), "not an ISO 4217"),
        (("topup", rid, "0", "EUR", "--reference", "r"), "must be positive"),
        (("topup", rid, "-5.00", "EUR", "--reference", "r"), ""),
        (("topup", rid, "ten", "EUR", "--reference", "r"), "not a decimal"),
        (("topup", rid, "NaN", "EUR", "--reference", "r"), "not a decimal"),
        (("topup", rid, "10.00", "EUR"), "--reference"),
        (("set-limit", rid, "EUR"), "nothing to change"),
        (("set-limit", rid, "EUR", "--order-cap", "1.234"), "at most 2 decimals"),
        (("statement", rid, "--from", "yesterday"), "not a date"),
        (("statement", rid, "--from", "2026-02-01", "--to", "2026-01-01"), "before --to"),
    ]
    for args, message in cases:
        result = await cli(redis_url, key_prefix, "accounts", *args)
        assert result.exit_code != 0, (args, result.output)
        assert message in result.output, (args, result.output)
    assert await redis.exists(RedisKeys(key_prefix).account(rid, "EUR")) == 0


async def test_adjustments_limits_show_and_statement(
    redis: aioredis.Redis, redis_url: str, key_prefix: str
) -> None:
    rid = await reseller(redis, key_prefix)
    run = [
        ("topup", rid, "100.00", "EUR", "--reference", "t1"),
        ("topup", rid, "5000", "JPY", "--reference", "t2"),
        ("adjust", rid, "-12.50", "EUR", "--reference", "a1", "--note", "fee"),
        (
            "set-limit",
            rid,
            "EUR",
            "--credit-limit",
            "50.00",
            "--order-cap",
            "30.00",
            "--daily-cap",
            "200.00",
            "--low-balance",
            "20.00",
        ),
    ]
    for args in run:
        result = await cli(redis_url, key_prefix, "accounts", *args)
        assert result.exit_code == 0, (args, result.output)

    shown = await cli(redis_url, key_prefix, "accounts", "show", rid, "--json")
    accounts = {a["currency"]: a for a in json.loads(shown.output)["accounts"]}
    eur = accounts["EUR"]
    assert eur["balance"]["amount"] == 8750 and eur["available"]["amount"] == 13750
    assert eur["credit_limit"]["amount"] == 5000 and eur["mode"] == "credit"
    assert eur["order_limit"]["amount"] == 3000 and eur["daily_limit"]["amount"] == 20000
    assert eur["low_balance_threshold"]["amount"] == 2000
    assert accounts["JPY"]["balance"] == {"amount": 5000, "currency": "JPY"}
    text = await cli(redis_url, key_prefix, "accounts", "show", rid)
    assert "balance 87.50 EUR" in text.output and "credit limit 50.00 EUR" in text.output

    removed = await cli(
        redis_url, key_prefix, "accounts", "set-limit", rid, "EUR", "--order-cap", "none"
    )
    assert removed.exit_code == 0 and "order cap none" in removed.output

    exported = await cli(redis_url, key_prefix, "accounts", "statement", rid, "--csv")
    rows = list(csv.DictReader(io.StringIO(exported.output)))
    assert [(r["currency"], r["kind"], r["amount"], r["balance_after"]) for r in rows] == [
        ("EUR", "topup", "100.00", "100.00"),
        ("JPY", "topup", "5000", "5000"),
        ("EUR", "adjustment", "12.50", "87.50"),
    ]
    assert rows[2]["balance_change"] == "-12.50" and rows[2]["note"] == "fee"
    assert len({r["id"] for r in rows}) == 3
    lines = await cli(
        redis_url,
        key_prefix,
        "accounts",
        "statement",
        rid,
        "--currency",
        "JPY",
        "--from",
        "2000-01-01",
        "--to",
        "2999-01-01",
    )
    assert [json.loads(line)["amount"] for line in lines.output.splitlines()] == [5000]
    store = AccountStore(redis, RedisKeys(key_prefix))
    assert await ledger_sums(store, rid, "EUR") == (8750, 0)
