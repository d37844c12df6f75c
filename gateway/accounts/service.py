"""``AccountsService``: the accounts of one gateway instance.

Holds its store, the orders' hook (``OrderAccounts``, handed to the orders service), and
what resellers read (``GET /v1/account``, ``/v1/account/statement``). Started with the
gateway: funds the demo reseller in demo mode, and keeps the open-holds gauges current.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

from adapters.models import currency_exponent
from gateway.access.service import DEMO_RESELLER_ID
from gateway.accounts import metrics
from gateway.accounts.holds import OrderAccounts
from gateway.accounts.models import EntryKind, LedgerEntry, utc_day
from gateway.accounts.store import AccountStore
from gateway.accounts.views import account_json
from gateway.observability.shutdown import cancel_and_wait
from gateway.redis_keys import RedisKeys
from gateway.settings import Settings

log = logging.getLogger("gateway.accounts")

_STATS_EVERY = 5.0


class AccountsService:
    def __init__(self, redis: Any, keys: RedisKeys, settings: Settings) -> None:
        self.settings = settings.accounts
        self.store = AccountStore(redis, keys)
        self.orders = OrderAccounts(self.store, settings.accounts)
        self._demo = settings.access.demo_key is not None
        self._overdue_after = settings.orders.fulfilment_timeout_seconds
        self._loop: asyncio.Task[None] | None = None

    async def start(self) -> None:
        if self._demo:
            await self.fund_demo()
        if self._loop is None:
            self._loop = asyncio.create_task(self._stats(), name="accounts:stats")

    async def stop(self) -> None:
        loop, self._loop = self._loop, None
        if loop is not None:
            await cancel_and_wait([loop], within=2.0, what="accounts stats loop")

    async def fund_demo(self) -> None:
        """The demo reseller's accounts, funded once (the reference makes every start of
        every worker of ``gateway serve`` book it once)."""
        for currency in self.settings.demo_currencies:
            amount = self.settings.demo_balance * 10 ** currency_exponent(currency)
            if amount > 0:
                await self.store.post(
                    DEMO_RESELLER_ID,
                    currency,
                    EntryKind.TOPUP,
                    amount,
                    f"demo-{currency}",
                    "demo funding",
                )

    async def _stats(self) -> None:
        while True:
            with contextlib.suppress(Exception):
                metrics.HOLDS_OPEN.set(await self.store.open_holds())
                cutoff = int((time.time() - self._overdue_after) * 1000)
                metrics.HOLDS_OVERDUE.set(await self.store.open_holds(older_than_ms=cutoff))
            await asyncio.sleep(_STATS_EVERY)

    # ------------------------------------------------------------- resellers

    async def overview(self, reseller_id: str) -> dict[str, Any]:
        today = utc_day(time.time())
        found = await self.store.accounts(reseller_id)
        return {
            "enforced": self.settings.enforce,
            "accounts": [account_json(account, today) for account in found],
        }

    async def statement(
        self,
        reseller_id: str,
        currency: str | None,
        start_ms: int | None,
        end_ms: int | None,
        page: int,
        page_size: int,
    ) -> tuple[list[LedgerEntry], bool]:
        currencies = [currency] if currency else await self.store.currencies(reseller_id)
        return await self.store.statement(
            reseller_id, currencies, start_ms, end_ms, (page - 1) * page_size, page_size
        )
