"""Accounts as read from Redis, ledger entries, and the hold an order carries.

An account is one reseller's money in one currency (no conversion, ever)::

    available = balance - held + credit_limit      (credit_limit 0: prepaid)

``balance`` is what was posted (top-ups, adjustments, captures); ``held`` is what open
orders have reserved. Every change is a ledger entry whose ``balance_change`` and
``hold_change`` sum to the balance and the holds: the ledger *is* the account.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import UTC, datetime

from pydantic import BaseModel, ConfigDict


class EntryKind(enum.StrEnum):
    TOPUP = "topup"
    ADJUSTMENT = "adjustment"
    HOLD = "hold"
    CAPTURE = "capture"
    RELEASE = "release"


class OrderHold(BaseModel):
    """What an order holds in one currency and how much of it was settled; kept in the
    order document and changed only with it (compare-and-set), so each part's capture
    and release is booked exactly once."""

    model_config = ConfigDict(extra="ignore")

    currency: str
    amount: int
    captured: int = 0
    released: int = 0

    @property
    def open(self) -> int:
        return self.amount - self.captured - self.released


@dataclass(frozen=True, slots=True)
class Account:
    reseller_id: str
    currency: str
    balance: int
    held: int
    credit_limit: int
    order_cap: int | None
    day_cap: int | None
    day: str
    day_spent: int
    low_threshold: int | None
    low: bool

    @property
    def available(self) -> int:
        return self.balance - self.held + self.credit_limit

    def spent_on(self, day: str) -> int:
        return self.day_spent if self.day == day else 0


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    stream_id: str
    currency: str
    kind: EntryKind
    amount: int
    balance_change: int
    hold_change: int
    balance_after: int
    held_after: int
    limit_after: int
    order_id: str | None
    part: int | None
    reference: str | None
    note: str | None

    @property
    def id(self) -> str:
        """Unique per reseller: the currency and the entry's position in its ledger."""
        return f"le_{self.currency}_{self.stream_id.replace('-', '_')}"

    @property
    def at(self) -> float:
        return int(self.stream_id.partition("-")[0]) / 1000

    @property
    def available_after(self) -> int:
        return self.balance_after - self.held_after + self.limit_after

    def iso_time(self) -> str:
        when = datetime.fromtimestamp(self.at, UTC)
        return when.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def utc_day(ts: float) -> str:
    """``yyyymmdd`` of a Unix time in UTC: the day a per-day cap counts in."""
    return datetime.fromtimestamp(ts, UTC).strftime("%Y%m%d")
