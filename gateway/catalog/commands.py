"""``gateway catalog ...``: reviewing the catalog from the shell.

``gateway catalog matches`` shows what the matcher makes of the catalogs as they are
published now: which supplier variants it merges into one canonical variant (the offers
behind it) and, with ``--near-misses``, which gift cards it left on their own and why. A
wrong merge sells a customer the wrong card, so an operator reviews these before trusting
them, and corrects them with the brands and overrides files (docs/routing.md).

It reads the snapshots the catalog service reads (``SnapshotStore.load_current``) with
the matcher the service builds from the same settings, so what it prints is what a
gateway started with these settings would match.
"""

from __future__ import annotations

import asyncio
import json
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import click

from adapters.models import Money, Product
from adapters.registry import discover
from gateway.accounts.money import to_major
from gateway.catalog.matching import Matcher, Matches, MatchingError, Offer, match_catalog
from gateway.catalog.snapshot import SnapshotMissing, SnapshotStore
from gateway.operator_settings import settings_with_redis
from gateway.redis_keys import RedisKeys
from gateway.settings import Settings
from gateway.store import StoreUnavailable, connect


@click.group()
def catalog() -> None:
    """Review the unified catalog (the snapshots in Redis)."""


@dataclass(frozen=True)
class _Loaded:
    products: list[Product]
    #: supplier -> (version, products) of each snapshot read
    versions: dict[str, tuple[int, int]]


async def load_published(settings: Settings, suppliers: Sequence[str]) -> _Loaded:
    """Every product of the current snapshot of each of ``suppliers`` (those never
    published are left out)."""
    redis = await connect(settings)
    try:
        store = SnapshotStore(redis, RedisKeys(settings.key_prefix))
        products: list[Product] = []
        versions: dict[str, tuple[int, int]] = {}
        for name in suppliers:
            snapshot = await store.load_current(name)
            if snapshot is None:
                continue
            read = list(snapshot.products())
            products.extend(read)
            versions[name] = (snapshot.meta.version, len(read))
        return _Loaded(products, versions)
    finally:
        await redis.aclose()


def _money(money: Money | None) -> str:
    return "-" if money is None else f"{to_major(money.amount, money.currency)} {money.currency}"


def _offer_json(offer: Offer) -> dict[str, Any]:
    cost = offer.variant.cost
    return {
        "supplier": offer.product.supplier,
        "product_id": offer.product.id,
        "variant_id": offer.variant.id,
        "name": offer.product.name,
        "cost": None if cost is None else {"amount": cost.amount, "currency": cost.currency},
        "stock": offer.product.stock,
        "available": offer.product.available,
    }


def report(
    matches: Matches, versions: dict[str, tuple[int, int]], wanted: set[str], near: bool
) -> dict[str, Any]:
    """What the command prints, as data (``--json`` prints exactly this)."""

    def concerns(offers: Sequence[Offer]) -> bool:
        return not wanted or any(o.product.supplier in wanted for o in offers)

    merged = [
        {
            "canonical_variant_id": variant_id,
            "canonical_product_id": matches.keys[variant_id].product_id,
            "facts": dict(matches.keys[variant_id].facts),
            "offers": [_offer_json(o) for o in offers],
        }
        for variant_id, offers in sorted(matches.merged.items())
        if concerns(offers)
    ]
    body: dict[str, Any] = {
        "snapshots": {n: {"version": v, "products": p} for n, (v, p) in versions.items()},
        "counts": {
            "canonical_variants": len(matches.offers),
            "merged": len(matches.merged),
            "unmatched": len(matches.misses),
            "near_misses": len(matches.near_misses),
        },
        "merged": merged,
    }
    if near:
        body["near_misses"] = [
            {**_offer_json(offer), "reason": reason}
            for offer, reason in matches.near_misses
            if concerns([offer])
        ]
    return body


def _print_text(body: dict[str, Any]) -> None:
    read = ", ".join(
        f"{n} version {s['version']} ({s['products']} products)"
        for n, s in body["snapshots"].items()
    )
    counts = body["counts"]
    click.echo(f"snapshots: {read}")
    click.echo(
        f"canonical variants {counts['canonical_variants']}, with several offers "
        f"{counts['merged']}; unmatched variants {counts['unmatched']}, of them gift cards "
        f"{counts['near_misses']}"
    )
    for entry in body["merged"]:
        facts = " · ".join(f"{k} {v}" for k, v in entry["facts"].items())
        click.echo(f"\n{entry['canonical_variant_id']}  ({facts})")
        for offer in entry["offers"]:
            cost = offer["cost"]
            price = "-" if cost is None else _money(Money(**cost))
            stock = "" if offer["stock"] is None else f"  stock {offer['stock']}"
            click.echo(f"  {offer['supplier']:<14} {offer['variant_id']:<56} {price}{stock}")
    if "near_misses" in body:
        click.echo(f"\nnear-misses (gift cards left on their own): {len(body['near_misses'])}")
        for miss in body["near_misses"]:
            click.echo(f"  {miss['variant_id']:<56} {miss['name']!r}: {miss['reason']}")


@catalog.command()
@click.option(
    "--supplier",
    "suppliers",
    multiple=True,
    metavar="NAME",
    help="Only canonical variants with an offer of this supplier (repeatable).",
)
@click.option(
    "--near-misses", "near", is_flag=True, help="Also list unmatched gift cards, with why."
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document instead of text.")
def matches(suppliers: tuple[str, ...], near: bool, as_json: bool) -> None:
    """Canonical products with more than one offer, as the published catalogs match now.

    Uses the shipped brand table with catalog.brands_file and catalog.match_overrides_file
    from the settings, as the gateway does."""
    settings = settings_with_redis("the catalog snapshots")
    installed = list(discover())
    unknown = sorted(set(suppliers) - set(installed))
    if unknown:
        raise click.BadParameter(
            f"not a supplier: {', '.join(unknown)} (installed: {', '.join(installed)})",
            param_hint="--supplier",
        )
    try:
        matcher = Matcher.from_files(
            settings.catalog.brands_file, settings.catalog.match_overrides_file
        )
    except MatchingError as exc:
        raise click.ClickException(str(exc)) from exc
    try:
        loaded = asyncio.run(load_published(settings, installed))
    except StoreUnavailable as exc:
        raise click.ClickException(str(exc)) from exc
    except (SnapshotMissing, ValueError, zlib.error) as exc:  # ValidationError is a ValueError
        raise click.ClickException(f"a catalog snapshot cannot be read: {exc}") from exc
    if not loaded.versions:
        raise click.ClickException("no catalog snapshot in Redis yet: run `gateway sync` first")
    body = report(match_catalog(loaded.products, matcher), loaded.versions, set(suppliers), near)
    if as_json:
        click.echo(json.dumps(body, indent=2, ensure_ascii=False))
    else:
        _print_text(body)
