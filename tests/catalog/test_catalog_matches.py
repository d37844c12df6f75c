"""``gateway catalog matches``: both sandboxes synced into Redis over loopback, then the
operator's review of what the matcher merges, checked against the suppliers' own data."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis as sync_redis
from catalog_support import GG, VO, Sandbox, adapter_values
from click.testing import CliRunner
from cryptography.fernet import Fernet

from adapters.models import to_minor_units
from adapters.vouchers.catalog_data import COUNTRIES
from gateway import startup
from gateway.cli import main
from tests.support.settings import gateway_settings

SHARED_LINES = {"steam-wallet", "playstation-store", "xbox-gift-card", "nintendo-eshop"}
SHARED_LINES |= {"google-play"}
_LABELS = {c.label: c.alpha3 for c in COUNTRIES}
_ADDS = re.compile(r"^Adds (\d+) ([A-Z]{3}) to ")


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


@pytest.fixture
def synced(env: dict[str, str]) -> dict[str, str]:
    result = CliRunner().invoke(main, ["sync"], env=env)
    assert result.exit_code == 0, result.output
    return env


def matches(env: dict[str, str], *args: str) -> Any:
    result = CliRunner().invoke(main, ["catalog", "matches", "--json", *args], env=env)
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def truth(sandboxes: dict[str, Sandbox], offer: dict[str, Any]) -> tuple[str, str, int]:
    """(country, currency, face in minor units) of an offer, from the supplier's own
    records in its sandbox (not from the names the matcher reads)."""
    app: Any = sandboxes[offer["supplier"]].server.app
    upstream = offer["product_id"].split(":", 1)[1]
    if offer["supplier"] == VO:
        product = app.state.sandbox.products[int(upstream)]
        face = int(offer["variant_id"].rsplit(":fv", 1)[1])
        sold = {to_minor_units(d.min_value, product.currency) for d in product.denominations}
        assert face in sold
        return product.country.alpha3, product.currency, face
    product = app.state.sandbox.by_id[upstream]
    region = dict(product.specifications)["region"]
    found = _ADDS.match(product.short_description)
    assert found is not None, product.short_description
    amount, currency = found.groups()
    return _LABELS[region], currency, to_minor_units(amount, currency)


def test_the_shared_cards_are_merged_with_both_suppliers_and_never_mix(
    synced: dict[str, str], sandboxes: dict[str, Sandbox]
) -> None:
    body = matches(synced)
    assert set(body["snapshots"]) == {GG, VO}
    assert body["counts"]["merged"] == len(body["merged"]) > 0
    lines = set()
    for entry in body["merged"]:
        suppliers = [o["supplier"] for o in entry["offers"]]
        assert suppliers == [GG, VO], entry
        facts = entry["facts"]
        lines.add(entry["canonical_product_id"].removeprefix("gift-").rsplit("-", 2)[0])
        truths = {truth(sandboxes, o) for o in entry["offers"]}
        assert len(truths) == 1, (entry["canonical_variant_id"], truths)  # never mixed
        (country, currency, face) = truths.pop()
        assert (facts["place"], facts["currency"], facts["face"]) == (country, currency, str(face))
        # each supplier its own price: Gaming Goods in EUR with stock, Vouchers in the card's
        gg, vo = entry["offers"]
        assert gg["cost"]["currency"] == "EUR" and gg["stock"] is not None
        assert vo["cost"]["currency"] == currency and vo["cost"]["amount"] <= face
    assert lines == SHARED_LINES
    steam = next(
        e for e in body["merged"] if e["canonical_variant_id"] == "gift-steam-wallet-usa-usd:fv5000"
    )
    assert [o["name"] for o in steam["offers"]] == [
        "Steam Gift Card 50 USD US",
        "Steam Wallet Card US",
    ]


def test_text_output_supplier_filter_and_near_misses(synced: dict[str, str]) -> None:
    text = CliRunner().invoke(main, ["catalog", "matches"], env=synced)
    assert text.exit_code == 0, text.output
    assert f"snapshots: {GG} version 1" in text.output
    block = text.output.split("gift-steam-wallet-usa-usd:fv5000", 1)[1].split("\n\n", 1)[0]
    assert re.search(rf"\n  {GG} +{GG}:\S+:std +\d+\.\d\d EUR  stock \d+", block), block
    assert re.search(rf"\n  {VO} +{VO}:\d+:fv5000 +\d+\.\d\d USD", block), block

    everything = matches(synced)
    only_vouchers = matches(synced, "--supplier", VO)
    assert only_vouchers["merged"] == everything["merged"]  # every merge has both
    assert "near_misses" not in everything

    near = matches(synced, "--near-misses")["near_misses"]
    reasons = {m["name"]: m["reason"] for m in near}
    # Gaming Goods' own EUR cards say no country: they stay apart, and say why
    assert any(
        name.startswith("Steam Gift Card") and reason.startswith("no redemption country")
        for name, reason in reasons.items()
    ), reasons
    assert all(m["reason"] for m in near)


def test_the_operator_files_change_what_is_merged(synced: dict[str, str], tmp_path: Path) -> None:
    steam_us = next(
        e
        for e in matches(synced)["merged"]
        if e["canonical_variant_id"].startswith("gift-steam-wallet-usa-usd")
    )
    voucher_product = steam_us["offers"][1]["product_id"]
    overrides = tmp_path / "matches.toml"
    overrides.write_text(f'[never]\nproducts = ["{voucher_product}"]\n')
    env = {**synced, "GATEWAY_CATALOG__MATCH_OVERRIDES_FILE": str(overrides)}
    body = matches(env, "--near-misses")
    assert not any(e["canonical_product_id"] == "gift-steam-wallet-usa-usd" for e in body["merged"])
    kept = [m for m in body["near_misses"] if m["product_id"] == voucher_product]
    assert kept and all("overrides" in m["reason"] for m in kept)

    brands = tmp_path / "brands.toml"
    brands.write_text('[lines]\n"Valve" = ["steam"]\n')  # "steam" is Steam Wallet's already
    refused = CliRunner().invoke(
        main, ["catalog", "matches"], env={**synced, "GATEWAY_CATALOG__BRANDS_FILE": str(brands)}
    )
    assert refused.exit_code == 1 and "two product lines" in refused.output


def test_usage_errors(env: dict[str, str]) -> None:
    unknown = CliRunner().invoke(main, ["catalog", "matches", "--supplier", "nobody"], env=env)
    assert unknown.exit_code == 2 and "not a supplier: nobody" in unknown.output
    empty = CliRunner().invoke(main, ["catalog", "matches"], env=env)
    assert empty.exit_code == 1 and "gateway sync" in empty.output  # nothing published yet
    no_redis = CliRunner().invoke(
        main,
        ["catalog", "matches"],
        env={**env, "GATEWAY_REDIS_URL": None},  # type: ignore[dict-item]
    )
    assert no_redis.exit_code == 2 and "GATEWAY_REDIS_URL" in no_redis.output


@pytest.mark.parametrize("field", ["brands_file", "match_overrides_file"])
def test_a_bad_matching_file_stops_the_start_up(
    field: str, tmp_path: Path, redis_url: str, key_prefix: str
) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("not toml [")
    missing = tmp_path / "missing.toml"
    for path, reason in ((bad, "cannot read"), (missing, "does not exist")):
        settings = gateway_settings(redis_url, key_prefix, catalog={field: path})
        with pytest.raises(startup.StartupError, match=f"{reason}.*{path}|{path}.*{reason}"):
            startup.check(settings)
