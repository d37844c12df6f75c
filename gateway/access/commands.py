"""``gateway resellers ...`` and ``gateway keys ...``: managing access from the shell.

The records live in Redis, so these commands need ``GATEWAY_REDIS_URL``: the embedded
store of the demo exists only inside a running ``gateway serve`` (which creates its own
demo reseller and key). A key and a webhook secret are printed once, when created or
rotated, to standard output only; nothing here logs them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from decimal import Decimal, InvalidOperation
from typing import Any, TypeVar

import click

from gateway.access.models import ALL_SCOPES, ApiKey, Reseller
from gateway.access.store import AccessRecordError, KeyStore
from gateway.operator_settings import settings_with_redis
from gateway.pricing import MarkupRule
from gateway.redis_keys import RedisKeys

T = TypeVar("T")


def _run(action: Callable[[KeyStore], Awaitable[T]]) -> T:
    settings = settings_with_redis("resellers and keys")

    async def run() -> T:
        from gateway.store import connect

        redis = await connect(settings)
        try:
            store = KeyStore(
                redis,
                RedisKeys(settings.key_prefix),
                allow_private_webhooks=settings.orders.webhook_allow_private_targets,
            )
            return await action(store)
        finally:
            await redis.aclose()

    try:
        return asyncio.run(run())
    except AccessRecordError as exc:
        raise click.ClickException(str(exc)) from exc


def _markup(percent: str | None, fixed_minor: int | None) -> MarkupRule | None:
    if percent is None and fixed_minor is None:
        return None
    try:
        return MarkupRule(percent=Decimal(percent or "0"), fixed_minor=fixed_minor or 0)
    except (InvalidOperation, ValueError) as exc:
        raise click.BadParameter(
            f"markup must be a percent in 0..1000 and a fixed amount >= 0 ({exc})"
        ) from exc


def _describe_reseller(reseller: Reseller) -> list[str]:
    markup = reseller.markup
    return [
        f"id           {reseller.id}",
        f"name         {reseller.name}",
        f"status       {reseller.status}",
        "markup       "
        + (f"{markup.percent}% + {markup.fixed_minor} minor units" if markup else "global rules"),
        f"webhook url  {reseller.webhook_url or '-'}",
        f"created      {reseller.created_at.isoformat(timespec='seconds')}",
    ]


def _describe_key(key: ApiKey) -> str:
    ips = ",".join(str(n) for n in key.allowed_ips) or "any address"
    limit = f"{key.rate_limit}/min" if key.rate_limit else "default limit"
    expiry = f" expires {key.expires_at.isoformat(timespec='seconds')}" if key.expires_at else ""
    return (
        f"{key.id}  {key.status:<8} {' '.join(sorted(key.scopes)):<40} {limit:<14} "
        f"{ips}{expiry}  {key.name}"
    ).rstrip()


@click.group()
def resellers() -> None:
    """Create, update, list, show, disable and enable resellers."""


@resellers.command("create")
@click.argument("name")
@click.option("--markup-percent", default=None, help="Markup on cost in percent, e.g. 7.5.")
@click.option("--markup-fixed-minor", type=int, default=None, help="Fixed markup per unit.")
@click.option(
    "--webhook-url",
    default=None,
    help="Where order events are POSTed: http(s), a public address unless "
    "orders.webhook_allow_private_targets.",
)
def create_reseller(
    name: str, markup_percent: str | None, markup_fixed_minor: int | None, webhook_url: str | None
) -> None:
    """Create a reseller and print its webhook signing secret (shown once)."""
    markup = _markup(markup_percent, markup_fixed_minor)
    created = _run(lambda s: s.create_reseller(name, markup=markup, webhook_url=webhook_url))
    for line in _describe_reseller(created.reseller):
        click.echo(line)
    click.echo(f"webhook secret {created.webhook_secret.get_secret_value()}")
    click.echo("  (shown once: store it now; webhooks are signed with HMAC-SHA256 using it)")
    click.echo(f"next: gateway keys create {created.reseller.id}")


@resellers.command("update")
@click.argument("reseller_id")
@click.option("--markup-percent", default=None, help="New markup on cost in percent.")
@click.option("--markup-fixed-minor", type=int, default=None, help="New fixed markup per unit.")
@click.option("--global-markup", is_flag=True, help="Drop the reseller's own markup rule.")
@click.option("--webhook-url", default=None, help="New webhook URL ('' removes it).")
@click.option(
    "--rotate-webhook-secret", is_flag=True, help="Replace the signing secret (printed once)."
)
def update_reseller(
    reseller_id: str,
    markup_percent: str | None,
    markup_fixed_minor: int | None,
    global_markup: bool,
    webhook_url: str | None,
    rotate_webhook_secret: bool,
) -> None:
    """Change a reseller's markup or webhook, or rotate its webhook signing secret."""
    changes: dict[str, Any] = {"rotate_webhook_secret": rotate_webhook_secret}
    if global_markup:
        changes["markup"] = None
    elif markup_percent is not None or markup_fixed_minor is not None:
        changes["markup"] = _markup(markup_percent, markup_fixed_minor)
    if webhook_url is not None:
        changes["webhook_url"] = webhook_url or None
    updated = _run(lambda s: s.update_reseller(reseller_id, **changes))
    for line in _describe_reseller(updated.reseller):
        click.echo(line)
    if rotate_webhook_secret:
        click.echo(f"webhook secret {updated.webhook_secret.get_secret_value()}")
        click.echo("  (shown once: the old secret no longer signs webhooks)")


@resellers.command("list")
def list_resellers() -> None:
    """List every reseller."""
    found = _run(lambda s: s.list_resellers())
    if not found:
        click.echo("no resellers yet: gateway resellers create NAME")
    for reseller in found:
        click.echo(f"{reseller.id}  {reseller.status:<8} {reseller.name}")


@resellers.command("show")
@click.argument("reseller_id")
def show_reseller(reseller_id: str) -> None:
    """Show a reseller and its keys (ids and settings; never the keys themselves)."""

    async def load(store: KeyStore) -> tuple[Reseller, list[ApiKey]]:
        return await store.require_reseller(reseller_id), await store.list_keys(reseller_id)

    reseller, keys = _run(load)
    for line in _describe_reseller(reseller):
        click.echo(line)
    click.echo(f"keys         {len(keys)}")
    for key in keys:
        click.echo("  " + _describe_key(key))


@resellers.command("disable")
@click.argument("reseller_id")
def disable_reseller(reseller_id: str) -> None:
    """Disable a reseller: all its keys stop working (within the key cache time)."""
    reseller = _run(lambda s: s.set_reseller_status(reseller_id, "disabled"))
    click.echo(f"{reseller.id} disabled")


@resellers.command("enable")
@click.argument("reseller_id")
def enable_reseller(reseller_id: str) -> None:
    """Enable a disabled reseller again."""
    reseller = _run(lambda s: s.set_reseller_status(reseller_id, "active"))
    click.echo(f"{reseller.id} enabled")


@click.group()
def keys() -> None:
    """Create, revoke and rotate API keys."""


@keys.command("create")
@click.argument("reseller_id")
@click.option(
    "--scope",
    "scopes",
    multiple=True,
    type=click.Choice(ALL_SCOPES),
    help="Repeatable; default: every scope.",
)
@click.option("--allow-ip", "allowed_ips", multiple=True, metavar="CIDR", help="Repeatable.")
@click.option("--rate-limit", type=int, default=None, help="Requests per minute.")
@click.option("--name", default="", help="A label, e.g. 'production shop'.")
def create_key(
    reseller_id: str,
    scopes: tuple[str, ...],
    allowed_ips: tuple[str, ...],
    rate_limit: int | None,
    name: str,
) -> None:
    """Issue an API key and print it (shown once)."""
    options: dict[str, Any] = {
        "scopes": scopes or ALL_SCOPES,
        "allowed_ips": allowed_ips,
        "rate_limit": rate_limit,
        "name": name,
    }
    issued = _run(lambda s: s.create_key(reseller_id, **options))
    _print_issued(issued.key, issued.token.get_secret_value())


@keys.command("revoke")
@click.argument("key_id")
def revoke_key(key_id: str) -> None:
    """Revoke a key: it stops working on every instance within the key cache time."""
    key = _run(lambda s: s.revoke_key(key_id))
    click.echo(f"{key.id} revoked")


@keys.command("rotate")
@click.argument("key_id")
@click.option(
    "--grace-seconds",
    type=float,
    default=0.0,
    show_default=True,
    help="How long the old key keeps working (0: revoked at once; at most 30 days).",
)
def rotate_key(key_id: str, grace_seconds: float) -> None:
    """Replace a key with a new one of the same scopes and limits; print the new key.

    Only the current key rotates: a revoked, expired or already rotated one is refused."""
    issued = _run(lambda s: s.rotate_key(key_id, grace_seconds=grace_seconds))
    _print_issued(issued.key, issued.token.get_secret_value())
    click.echo(
        f"old key {key_id} "
        + (f"works for {grace_seconds:g} more seconds" if grace_seconds > 0 else "revoked")
    )


def _print_issued(key: ApiKey, token: str) -> None:
    click.echo(f"key id   {key.id}")
    click.echo(f"reseller {key.reseller_id}")
    click.echo(f"scopes   {' '.join(sorted(key.scopes))}")
    click.echo(f"api key  {token}")
    click.echo("  (shown once: store it now; send it as 'Authorization: Bearer <key>')")
