"""``gateway accounts ...``: funding resellers, setting their limits, reading their ledgers.

Amounts are typed in the currency's major unit (``250.00 EUR``, ``5000 JPY``); more
decimals than the currency has, zero or negative top-ups, unknown resellers and
currencies, and a reference reused for another amount are refused with a message and
exit status 1 (2 for a malformed command line). Top-ups and adjustments are idempotent
by ``--reference``: running the same command twice books it once.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import click

from gateway.accounts.models import Account, EntryKind, utc_day
from gateway.accounts.money import AmountError, parse_currency, to_major, to_minor
from gateway.accounts.store import KEEP, AccountStore
from gateway.accounts.views import account_json, entries_csv, entry_json, parse_time, to_ms
from gateway.errors import GatewayError
from gateway.operator_settings import settings_with_redis
from gateway.redis_keys import RedisKeys

T = TypeVar("T")


def _run(reseller_id: str, action: Callable[[AccountStore], Awaitable[T]]) -> T:
    settings = settings_with_redis("accounts")

    async def run() -> T:
        from gateway.access.store import KeyStore
        from gateway.store import connect

        redis = await connect(settings)
        try:
            keys = RedisKeys(settings.key_prefix)
            if await KeyStore(redis, keys).get_reseller(reseller_id) is None:
                raise click.ClickException(f"no reseller {reseller_id} (gateway resellers list)")
            return await action(AccountStore(redis, keys))
        finally:
            await redis.aclose()

    try:
        return asyncio.run(run())
    except GatewayError as exc:
        raise click.ClickException(exc.message) from exc


def _currency(value: str) -> str:
    try:
        return parse_currency(value)
    except AmountError as exc:
        raise click.BadParameter(str(exc), param_hint="CURRENCY") from exc


def _minor(value: str, currency: str, hint: str, *, signed: bool = False) -> int:
    try:
        return to_minor(value, currency, allow_negative=signed)
    except AmountError as exc:
        raise click.BadParameter(str(exc), param_hint=hint) from exc


def _optional(value: str | None, currency: str, hint: str) -> int | str | None:
    """An option that sets a cap (an amount), removes it (``none``) or keeps it (absent)."""
    if value is None:
        return KEEP
    if value.strip().lower() == "none":
        return None
    return _minor(value, currency, hint)


def _describe(account: Account) -> list[str]:
    c = account.currency

    def major(amount: int | None) -> str:
        return "none" if amount is None else f"{to_major(amount, c)} {c}"

    mode = f"credit limit {major(account.credit_limit)}" if account.credit_limit else "prepaid"
    return [
        f"{c}  balance {major(account.balance)}  held {major(account.held)}  "
        f"available {major(account.available)}",
        f"     {mode}"
        f"  order cap {major(account.order_cap)}  daily cap {major(account.day_cap)} "
        f"(spent today {major(account.spent_on(utc_day(time.time())))})"
        f"  low-balance notice below {major(account.low_threshold)}"
        + ("  [LOW]" if account.low else ""),
    ]


@click.group()
def accounts() -> None:
    """Reseller accounts: top up, adjust, set limits, show, statement."""


def _post(
    reseller_id: str, amount: str, currency: str, reference: str, note: str, kind: EntryKind
) -> None:
    code = _currency(currency)
    minor = _minor(amount, code, "AMOUNT", signed=kind is EntryKind.ADJUSTMENT)
    if not reference.strip() or len(reference) > 200:
        raise click.BadParameter("1 to 200 characters", param_hint="--reference")
    posted = _run(
        reseller_id,
        lambda store: store.post(reseller_id, code, kind, minor, reference.strip(), note),
    )
    state = "already booked (same reference), nothing changed" if posted.replayed else "booked"
    click.echo(
        f"{kind.value} {to_major(minor, code)} {code} for {reseller_id}: {state}; "
        f"entry {posted.entry_id}; balance {to_major(posted.balance, code)} {code}"
    )


@accounts.command()
@click.argument("reseller_id")
@click.argument("amount")
@click.argument("currency")
@click.option("--reference", required=True, help="Your unique reference (bank transfer id...).")
@click.option("--note", default="", help="Free text kept with the entry.")
def topup(reseller_id: str, amount: str, currency: str, reference: str, note: str) -> None:
    """Credit AMOUNT (major units, e.g. 250.00) in CURRENCY to a reseller's account."""
    _post(reseller_id, amount, currency, reference, note, EntryKind.TOPUP)


@accounts.command(context_settings={"ignore_unknown_options": True})
@click.argument("reseller_id")
@click.argument("amount")
@click.argument("currency")
@click.option("--reference", required=True, help="Your unique reference for this correction.")
@click.option("--note", required=True, help="Why (kept with the entry).")
def adjust(reseller_id: str, amount: str, currency: str, reference: str, note: str) -> None:
    """Correct a balance by a signed AMOUNT (e.g. -12.50 debits, 12.50 credits)."""
    _post(reseller_id, amount, currency, reference, note, EntryKind.ADJUSTMENT)


@accounts.command("set-limit")
@click.argument("reseller_id")
@click.argument("currency")
@click.option("--credit-limit", default=None, help="Credit line (0 = prepaid).")
@click.option("--order-cap", default=None, help="Largest order value, or 'none'.")
@click.option("--daily-cap", default=None, help="Value of orders per UTC day, or 'none'.")
@click.option("--low-balance", default=None, help="Notify below this available, or 'none'.")
def set_limit(
    reseller_id: str,
    currency: str,
    credit_limit: str | None,
    order_cap: str | None,
    daily_cap: str | None,
    low_balance: str | None,
) -> None:
    """Set a reseller's credit limit, caps and low-balance threshold in CURRENCY."""
    code = _currency(currency)
    limit: int | str = KEEP
    if credit_limit is not None:
        zero = credit_limit.strip() in ("0", "none")
        limit = 0 if zero else _minor(credit_limit, code, "--credit-limit")
    changes: dict[str, Any] = {
        "credit_limit": limit,
        "order_cap": _optional(order_cap, code, "--order-cap"),
        "day_cap": _optional(daily_cap, code, "--daily-cap"),
        "low_threshold": _optional(low_balance, code, "--low-balance"),
    }
    if all(value == KEEP for value in changes.values()):
        raise click.UsageError("nothing to change: give at least one limit option")
    account = _run(reseller_id, lambda store: store.set_limits(reseller_id, code, **changes))
    for line in _describe(account):
        click.echo(line)


@accounts.command()
@click.argument("reseller_id")
@click.option("--json", "as_json", is_flag=True, help="As JSON (amounts in minor units).")
def show(reseller_id: str, as_json: bool) -> None:
    """Balances, holds, available funds and limits per currency."""
    found = _run(reseller_id, lambda store: store.accounts(reseller_id))
    if as_json:
        today = utc_day(time.time())
        click.echo(json.dumps({"reseller_id": reseller_id,
                               "accounts": [account_json(a, today) for a in found]}))  # fmt: skip
        return
    if not found:
        click.echo(f"{reseller_id} has no account yet: gateway accounts topup {reseller_id} ...")
    for account in found:
        for line in _describe(account):
            click.echo(line)


@accounts.command()
@click.argument("reseller_id")
@click.option("--currency", default=None, help="Only this currency (default: all).")
@click.option("--from", "start", default=None, help="From (inclusive): 2026-01-01 or ISO time.")
@click.option("--to", "end", default=None, help="To (exclusive): 2026-02-01 or ISO time.")
@click.option("--csv", "as_csv", is_flag=True, help="CSV (amounts in major units).")
def statement(
    reseller_id: str, currency: str | None, start: str | None, end: str | None, as_csv: bool
) -> None:
    """Every ledger entry in a period, oldest first (one JSON object per line, or CSV)."""
    try:
        start_ms = to_ms(parse_time(start)) if start else None
        end_ms = to_ms(parse_time(end)) if end else None
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from exc
    if start_ms is not None and end_ms is not None and start_ms >= end_ms:
        raise click.BadParameter("--from must be before --to")
    codes = [_currency(currency)] if currency else None

    async def dump(store: AccountStore) -> None:
        wanted = codes or await store.currencies(reseller_id)
        entries = await store.period(reseller_id, wanted, start_ms, end_ms)
        if as_csv:
            sys.stdout.write(entries_csv(entries))
            return
        for entry in entries:
            sys.stdout.write(json.dumps(entry_json(entry)) + "\n")

    _run(reseller_id, dump)
