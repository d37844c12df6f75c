"""The accounts' side of an order: what it holds when it is created, what each part
captures and releases when it ends.

Holding (``OrderAccounts.plan``): an order's value per currency at the accepted prices
is held by ``order_create.lua`` in the same script that writes the order and its jobs,
after checking every account covers it (available, the per-order cap, the per-day cap).
A refusal writes nothing: the script answers why, and the order is refused with 402.

Settling (``settle``): when a part becomes final, the value of its delivered units is
captured and the rest released, by ``order_update.lua`` in the same compare-and-set that
commits the part's final state. The part's ``settled`` flag and the order's
``OrderHold`` totals change in that same write, so however often a job is retried,
reclaimed or repeated after a crash, a part is settled exactly once. A part held for
review, or still running, keeps its hold.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from gateway.accounts import metrics
from gateway.accounts.models import OrderHold, utc_day
from gateway.accounts.notices import LowBalanceNotices
from gateway.accounts.store import AccountStore
from gateway.errors import InsufficientFunds
from gateway.orders.ids import job_nonce
from gateway.orders.models import StoredOrder
from gateway.orders.ports import ResellerDirectory
from gateway.orders.queue import Delivery, Job, JobKind
from gateway.orders.webhooks import WebhookSender
from gateway.redis_keys import RedisKeys
from gateway.settings import AccountSettings, OrderSettings

#: A job of the accounts run by the order workers (``OrderProcessor.handlers``).
JobHandler = Callable[[Delivery, Job], Awaitable[None]]

_MESSAGES = {
    "insufficient_funds": "the account's available funds do not cover this order",
    "order_limit_exceeded": "the order is above the account's per-order limit",
    "daily_limit_exceeded": "the order would exceed the account's daily limit",
}
_FIGURE = {
    "insufficient_funds": "available",
    "order_limit_exceeded": "limit",
    "daily_limit_exceeded": "remaining_today",
}


@dataclass(frozen=True, slots=True)
class HoldPlan:
    """The keys and argument ``order_create.lua`` needs to hold an order's value."""

    keys: list[str]
    spec: str


def order_totals(order: StoredOrder) -> dict[str, int]:
    """The order's value per currency at the accepted unit prices."""
    totals: dict[str, int] = defaultdict(int)
    for item in order.items:
        totals[item.unit_price.currency] += item.unit_price.amount * item.quantity
    return {currency: amount for currency, amount in sorted(totals.items()) if amount > 0}


class OrderAccounts:
    def __init__(self, store: AccountStore, settings: AccountSettings) -> None:
        self.store = store
        self.keys: RedisKeys = store.keys
        self.settings = settings

    async def plan(self, order: StoredOrder) -> HoldPlan | None:
        """Record on ``order`` what it holds and return how to hold it (None: nothing to
        hold). With ``enforce`` every currency must have an account; without it, only
        currencies the reseller has an account in are held (the others buy unchecked)."""
        totals = order_totals(order)
        if not self.settings.enforce:
            kept = await self.store.existing(order.reseller_id, totals)
            totals = {c: a for c, a in totals.items() if c in kept}
        if not totals:
            return None
        order.holds = [OrderHold(currency=c, amount=a) for c, a in totals.items()]
        rid = order.reseller_id
        keys = [self.keys.account_holds()]
        for currency in totals:
            keys += [
                self.keys.account(rid, currency),
                self.keys.account_ledger(rid, currency),
                self.keys.account_events(rid, currency),
            ]
        spec = {
            "r": rid,
            "d": utc_day(order.created_at),
            "h": [[c, a, job_nonce()] for c, a in totals.items()],
        }
        return HoldPlan(keys, json.dumps(spec, separators=(",", ":")))

    def job_handlers(
        self, resellers: ResellerDirectory, webhooks: WebhookSender, settings: OrderSettings
    ) -> dict[JobKind, JobHandler]:
        """The account jobs the order workers run: low-balance notices."""
        notices = LowBalanceNotices(self.store.redis, self.keys, resellers, webhooks, settings)
        return {JobKind.ACCOUNT_NOTICE: notices.handle}

    @staticmethod
    def check(result: Any, order: StoredOrder) -> None:
        """Raise the refusal ``order_create.lua`` answered, if it refused; count holds."""
        if isinstance(result, list | tuple):
            _, code, currency, required, figure = (
                v.decode() if isinstance(v, bytes) else str(v) for v in result
            )
            metrics.REFUSALS.labels(currency, code).inc()
            details = {"currency": currency, "required": int(required), _FIGURE[code]: int(figure)}
            raise InsufficientFunds(code, f"{_MESSAGES[code]} ({currency})", details=details)
        for hold in order.holds:
            metrics.HELD.labels(hold.currency).inc(hold.amount)


@dataclass(frozen=True, slots=True)
class AccountMove:
    """One part's settlement in one currency, booked by ``order_update.lua``."""

    reseller_id: str
    currency: str
    capture: int
    release: int
    order_id: str
    part: int
    day: str
    closes: bool

    def encode(self, key_index: int) -> dict[str, Any]:
        return {
            "k": key_index,
            "c": self.currency,
            "cap": self.capture,
            "rel": self.release,
            "o": self.order_id,
            "p": self.part,
            "d": self.day,
            "x": int(self.closes),
        }


def settle(order: StoredOrder) -> list[AccountMove]:
    """Settle every part of ``order`` that is final and not yet settled: capture its
    delivered units at the accepted price, release the rest. Mutates ``order`` (the
    ``settled`` flags and hold totals, committed with the moves)."""
    if not order.holds:
        for part in order.parts:
            part.settled = part.settled or part.state.is_final
        return []
    holds = {hold.currency: hold for hold in order.holds}
    moves: list[AccountMove] = []
    day = utc_day(order.created_at)
    for part in order.parts:
        if part.settled or not part.state.is_final:
            continue
        part.settled = True
        capture: dict[str, int] = defaultdict(int)
        release: dict[str, int] = defaultdict(int)
        for index in part.items:
            item = order.items[index]
            currency = item.unit_price.currency
            if currency not in holds:
                continue
            delivered = min(item.delivered_quantity, item.quantity)
            capture[currency] += delivered * item.unit_price.amount
            release[currency] += (item.quantity - delivered) * item.unit_price.amount
        for currency in sorted(set(capture) | set(release)):
            hold = holds[currency]
            hold.captured += capture[currency]
            hold.released += release[currency]
            moves.append(
                AccountMove(
                    reseller_id=order.reseller_id,
                    currency=currency,
                    capture=capture[currency],
                    release=release[currency],
                    order_id=order.id,
                    part=part.n,
                    day=day,
                    closes=hold.open == 0,
                )
            )
    return moves


def observe(moves: Sequence[AccountMove]) -> None:
    """Count committed settlements (after the commit succeeded: never twice)."""
    for move in moves:
        if move.capture:
            metrics.CAPTURED.labels(move.currency).inc(move.capture)
        if move.release:
            metrics.RELEASED.labels(move.currency).inc(move.release)
