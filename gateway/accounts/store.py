"""Accounts and ledgers in Redis.

Layout (every key under the ``{orders}`` hash tag, see ``gateway.redis_keys``: holds are
written by the script that creates an order, captures and releases by the script that
commits its change, so accounts share the orders' Cluster slot)::

    <p>:{orders}:account:<rid>:<CUR>         hash: balance, held, limit, caps, low state
    <p>:{orders}:ledger:<rid>:<CUR>          stream: one entry per movement, never trimmed
    <p>:{orders}:accounts:<rid>              set of the reseller's currencies
    <p>:{orders}:account-refs:<rid>          hash: operator reference -> kind|cur|amount|entry
    <p>:{orders}:account-events:<rid>:<CUR>  hash: undelivered low-balance events
    <p>:{orders}:holds                       ZSET "<order id>:<CUR>" -> hold time (ms)

Every write is a script (``lua/``, with the shared ``lib.lua``): the account hash and its
ledger entry change together or not at all.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from gateway.accounts.models import Account, EntryKind, LedgerEntry
from gateway.accounts.scripts import AccountScripts
from gateway.errors import Conflict
from gateway.orders.ids import job_nonce
from gateway.redis_keys import RedisKeys

#: The value of ``set_limits`` arguments that leaves a field as it is.
KEEP = "-"


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _int_or_none(value: Any) -> int | None:
    return None if value is None else int(value)


@dataclass(frozen=True, slots=True)
class Posted:
    entry_id: str
    balance: int
    replayed: bool


def _entry(currency: str, stream_id: Any, fields: dict[Any, Any]) -> LedgerEntry:
    f = {_text(k): _text(v) for k, v in fields.items()}
    return LedgerEntry(
        stream_id=_text(stream_id),
        currency=currency,
        kind=EntryKind(f["k"]),
        amount=int(f["a"]),
        balance_change=int(f["db"]),
        hold_change=int(f["dh"]),
        balance_after=int(f["b"]),
        held_after=int(f["h"]),
        limit_after=int(f.get("l") or 0),
        order_id=f.get("o") or None,
        part=int(f["p"]) if f.get("p") else None,
        reference=f.get("r") or None,
        note=f.get("n") or None,
    )


class AccountStore:
    def __init__(self, redis: Any, keys: RedisKeys) -> None:
        self.redis = redis
        self.keys = keys
        self._scripts = AccountScripts.register(redis)

    # ------------------------------------------------------------------ reads

    async def currencies(self, reseller_id: str) -> list[str]:
        members = await self.redis.smembers(self.keys.account_currencies(reseller_id))
        return sorted(_text(m) for m in members)

    async def get(self, reseller_id: str, currency: str) -> Account | None:
        raw = await self.redis.hgetall(self.keys.account(reseller_id, currency))
        if not raw:
            return None
        f = {_text(k): _text(v) for k, v in raw.items()}
        return Account(
            reseller_id=reseller_id,
            currency=currency,
            balance=int(f.get("balance", 0)),
            held=int(f.get("held", 0)),
            credit_limit=int(f.get("limit", 0)),
            order_cap=_int_or_none(f.get("order_cap")),
            day_cap=_int_or_none(f.get("day_cap")),
            day=f.get("day", ""),
            day_spent=int(f.get("day_spent", 0)),
            low_threshold=_int_or_none(f.get("low_threshold")),
            low=f.get("low") == "1",
        )

    async def accounts(self, reseller_id: str) -> list[Account]:
        found = [await self.get(reseller_id, c) for c in await self.currencies(reseller_id)]
        return [account for account in found if account is not None]

    async def existing(self, reseller_id: str, currencies: Iterable[str]) -> set[str]:
        """Which of ``currencies`` the reseller has an account in (one round trip)."""
        wanted = list(currencies)
        if not wanted:
            return set()
        pipe = self.redis.pipeline(transaction=False)
        for currency in wanted:
            pipe.exists(self.keys.account(reseller_id, currency))
        flags = await pipe.execute()
        return {currency for currency, flag in zip(wanted, flags, strict=True) if flag}

    async def entries(
        self,
        reseller_id: str,
        currency: str,
        start_ms: int | None = None,
        end_ms: int | None = None,
        count: int | None = None,
    ) -> list[LedgerEntry]:
        """Ledger entries in ``[start_ms, end_ms)``, oldest first, at most ``count``."""
        low = "-" if start_ms is None else str(start_ms)
        high = "+" if end_ms is None else f"({end_ms}"
        rows = await self.redis.xrange(
            self.keys.account_ledger(reseller_id, currency), low, high, count=count
        )
        return [_entry(currency, stream_id, fields) for stream_id, fields in rows]

    async def statement(
        self,
        reseller_id: str,
        currencies: Sequence[str],
        start_ms: int | None,
        end_ms: int | None,
        offset: int,
        limit: int,
    ) -> tuple[list[LedgerEntry], bool]:
        """One page of the reseller's entries over ``currencies``, oldest first (by time,
        then currency), and whether more follow."""
        wanted = offset + limit + 1
        streams = [
            await self.entries(reseller_id, c, start_ms, end_ms, count=wanted) for c in currencies
        ]
        merged = heapq.merge(*streams, key=lambda e: (e.at, e.currency, e.stream_id))
        rows = [entry for _, entry in zip(range(wanted), merged, strict=False)]
        return rows[offset : offset + limit], len(rows) > offset + limit

    async def period(
        self,
        reseller_id: str,
        currencies: Sequence[str],
        start_ms: int | None,
        end_ms: int | None,
        chunk: int = 1000,
    ) -> list[LedgerEntry]:
        """Every entry in ``[start_ms, end_ms)`` over ``currencies``, oldest first (read in
        chunks by stream id: an export costs one pass, whatever its length)."""
        streams: list[list[LedgerEntry]] = []
        for currency in currencies:
            key = self.keys.account_ledger(reseller_id, currency)
            low = "-" if start_ms is None else str(start_ms)
            high = "+" if end_ms is None else f"({end_ms}"
            rows: list[LedgerEntry] = []
            while True:
                batch = await self.redis.xrange(key, low, high, count=chunk)
                rows.extend(_entry(currency, sid, fields) for sid, fields in batch)
                if len(batch) < chunk:
                    break
                low = "(" + _text(batch[-1][0])
            streams.append(rows)
        return list(heapq.merge(*streams, key=lambda e: (e.at, e.currency, e.stream_id)))

    async def open_holds(self, older_than_ms: int | None = None) -> int:
        """Open holds, or only those taken before ``older_than_ms`` (Unix ms)."""
        key = self.keys.account_holds()
        if older_than_ms is None:
            return int(await self.redis.zcard(key))
        return int(await self.redis.zcount(key, "-inf", f"({older_than_ms}"))

    # ----------------------------------------------------------------- writes

    async def post(
        self,
        reseller_id: str,
        currency: str,
        kind: EntryKind,
        amount: int,
        reference: str,
        note: str = "",
    ) -> Posted:
        """Book a top-up or an adjustment once per ``reference``; the same reference with
        the same kind, currency and amount answers the first booking (``replayed``), with
        anything else it is a ``Conflict``."""
        if kind not in (EntryKind.TOPUP, EntryKind.ADJUSTMENT):
            raise ValueError(f"only top-ups and adjustments are posted by operators, not {kind}")
        k = self.keys
        answer = await self._scripts.post(
            keys=[
                k.account(reseller_id, currency),
                k.account_ledger(reseller_id, currency),
                k.account_references(reseller_id),
                k.account_currencies(reseller_id),
                k.account_events(reseller_id, currency),
                k.order_jobs(),
            ],
            args=[kind.value, amount, reference, note, currency, reseller_id, job_nonce()],
        )
        outcome = _text(answer[0])
        if outcome == "conflict":
            kind_was, currency_was, amount_was, _ = _text(answer[1]).split("|", 3)
            raise Conflict(
                "reference_reused",
                f"reference {reference!r} was already used for a {kind_was} of "
                f"{amount_was} {currency_was} (minor units); use a new reference",
                details={
                    "reference": reference,
                    "kind": kind_was,
                    "currency": currency_was,
                    "amount": int(amount_was),
                },
            )
        return Posted(_text(answer[1]), int(answer[2]), replayed=outcome == "replayed")

    async def set_limits(
        self,
        reseller_id: str,
        currency: str,
        *,
        credit_limit: int | str = KEEP,
        order_cap: int | str | None = KEEP,
        day_cap: int | str | None = KEEP,
        low_threshold: int | str | None = KEEP,
    ) -> Account:
        """Change limits (``None``: remove that cap; ``KEEP``: leave it), creating the
        account if needed; returns the account as it is now."""

        def arg(value: int | str | None) -> str:
            return "" if value is None else str(value)

        k = self.keys
        await self._scripts.limits(
            keys=[
                k.account(reseller_id, currency),
                k.account_currencies(reseller_id),
                k.account_events(reseller_id, currency),
                k.order_jobs(),
            ],
            args=[
                arg(credit_limit),
                arg(order_cap),
                arg(day_cap),
                arg(low_threshold),
                currency,
                reseller_id,
                job_nonce(),
            ],
        )
        account = await self.get(reseller_id, currency)
        assert account is not None
        return account
