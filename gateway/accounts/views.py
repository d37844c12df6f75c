"""Accounts and ledger entries as resellers and operators read them: JSON and CSV.

One rendering for the API (``GET /v1/account``, ``/v1/account/statement``) and the CLI
(``gateway accounts show / statement``), so a CSV from either reconciles the same way.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from datetime import UTC, date, datetime
from typing import Any

from gateway.accounts.models import Account, LedgerEntry
from gateway.accounts.money import to_major

CSV_COLUMNS = (
    "id",
    "time",
    "currency",
    "kind",
    "amount",
    "balance_change",
    "hold_change",
    "balance_after",
    "held_after",
    "available_after",
    "order_id",
    "part",
    "reference",
    "note",
)


def _money(amount: int | None, currency: str) -> dict[str, Any] | None:
    return None if amount is None else {"amount": amount, "currency": currency}


def account_json(account: Account, today: str) -> dict[str, Any]:
    c = account.currency
    return {
        "currency": c,
        "balance": _money(account.balance, c),
        "held": _money(account.held, c),
        "available": _money(account.available, c),
        "credit_limit": _money(account.credit_limit, c),
        "mode": "credit" if account.credit_limit > 0 else "prepaid",
        "order_limit": _money(account.order_cap, c),
        "daily_limit": _money(account.day_cap, c),
        "spent_today": _money(account.spent_on(today), c),
        "low_balance_threshold": _money(account.low_threshold, c),
    }


def entry_json(entry: LedgerEntry) -> dict[str, Any]:
    c = entry.currency
    return {
        "id": entry.id,
        "time": entry.iso_time(),
        "kind": entry.kind.value,
        "currency": c,
        "amount": entry.amount,
        "balance_change": entry.balance_change,
        "hold_change": entry.hold_change,
        "balance_after": entry.balance_after,
        "held_after": entry.held_after,
        "available_after": entry.available_after,
        "order_id": entry.order_id,
        "part": entry.part,
        "reference": entry.reference,
        "note": entry.note,
    }


def entries_csv(entries: Iterable[LedgerEntry], *, header: bool = True) -> str:
    """Entries as CSV; amounts in major units with the currency's decimals (what a
    spreadsheet and a supplier statement show), every other column as in JSON."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    if header:
        writer.writerow(CSV_COLUMNS)
    for e in entries:
        c = e.currency
        writer.writerow(
            [
                e.id,
                e.iso_time(),
                c,
                e.kind.value,
                to_major(e.amount, c),
                to_major(e.balance_change, c),
                to_major(e.hold_change, c),
                to_major(e.balance_after, c),
                to_major(e.held_after, c),
                to_major(e.available_after, c),
                e.order_id or "",
                "" if e.part is None else e.part,
                e.reference or "",
                e.note or "",
            ]
        )
    return out.getvalue()


def parse_time(text: str) -> datetime:
    """A statement bound: ``2026-01-31`` (midnight UTC) or an ISO 8601 date-time (UTC if
    no offset is given)."""
    value = text.strip()
    try:
        if len(value) == 10:
            day = date.fromisoformat(value)
            return datetime(day.year, day.month, day.day, tzinfo=UTC)
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise ValueError(f"{text!r} is not a date (2026-01-31) or an ISO 8601 time") from exc
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def to_ms(when: datetime | None) -> int | None:
    return None if when is None else int(when.timestamp() * 1000)
