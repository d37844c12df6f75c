"""Token lifetimes and single-flight renewal of ``adapters.vouchers.auth`` (fake clock)."""

from __future__ import annotations

import asyncio

import pytest

from adapters.vouchers.auth import TokenAnswerError, TokenKeeper, Tokens, tokens_from_answer


class Refused(Exception):
    pass


class FakeSupplier:
    """Counts logins and refreshes; each takes a little time, as a network call would."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.logins = 0
        self.refreshes = 0
        self.refuse_refresh = False

    def clock(self) -> float:
        return self.now

    async def login(self) -> Tokens:
        self.logins += 1
        await asyncio.sleep(0.01)
        return tokens_from_answer(
            {
                "access_token": f"access-{self.logins}-{self.refreshes}",
                "expires_in": 3600,
                "refresh_token": f"refresh-{self.logins}",
                "refresh_expires_in": 7 * 86400,
            },
            sent_at=self.now,
            margin=60,
        )

    async def refresh(self, tokens: Tokens) -> Tokens:
        await asyncio.sleep(0.01)
        if self.refuse_refresh:
            raise Refused()
        self.refreshes += 1
        return tokens_from_answer(
            {"access_token": f"access-{self.logins}-{self.refreshes}", "expires_in": 3600},
            sent_at=self.now,
            margin=60,
            previous=tokens,
        )

    def keeper(self) -> TokenKeeper:
        return TokenKeeper(
            login=self.login, refresh=self.refresh, refresh_refused=Refused, clock=self.clock
        )


async def test_login_is_lazy_and_shared_by_concurrent_callers() -> None:
    supplier = FakeSupplier()
    keeper = supplier.keeper()
    assert supplier.logins == 0 and keeper.tokens is None
    tokens = await asyncio.gather(*(keeper.access_token() for _ in range(20)))
    assert set(tokens) == {"access-1-0"}
    assert supplier.logins == 1


async def test_renewal_ahead_of_expiry_uses_the_refresh_token() -> None:
    supplier = FakeSupplier()
    keeper = supplier.keeper()
    await keeper.access_token()
    supplier.now += 3600 - 61  # just before the margin
    assert await keeper.access_token() == "access-1-0"
    supplier.now += 2  # inside the 60 s margin: renew, once, for everybody
    tokens = await asyncio.gather(*(keeper.access_token() for _ in range(10)))
    assert set(tokens) == {"access-1-1"}
    assert (supplier.logins, supplier.refreshes) == (1, 1)


async def test_expired_refresh_token_means_a_new_login() -> None:
    supplier = FakeSupplier()
    keeper = supplier.keeper()
    await keeper.access_token()
    supplier.now += 7 * 86400  # both tokens are past their lifetime
    assert await keeper.access_token() == "access-2-0"
    assert (supplier.logins, supplier.refreshes) == (2, 0)


async def test_refused_refresh_falls_back_to_login() -> None:
    supplier = FakeSupplier()
    keeper = supplier.keeper()
    await keeper.access_token()
    supplier.refuse_refresh = True
    supplier.now += 3600
    assert await keeper.access_token() == "access-2-0"
    assert supplier.logins == 2


async def test_a_401_renews_once_however_many_callers_saw_it() -> None:
    supplier = FakeSupplier()
    keeper = supplier.keeper()

    callers = 10
    all_sent = asyncio.Barrier(callers)

    async def call_refused_once() -> str:
        await keeper.access_token()  # sends the token the supplier then refuses
        await all_sent.wait()  # every caller is in flight with the same token
        return await keeper.access_token(after_401=True)

    await keeper.access_token()
    renewed = await asyncio.gather(*(call_refused_once() for _ in range(callers)))
    assert set(renewed) == {"access-1-1"}
    assert supplier.refreshes == 1

    # A caller whose 401 answered a token already replaced does not renew again.
    assert await keeper.access_token() == "access-1-1"
    assert await keeper.access_token(after_401=True) == "access-1-2"
    assert supplier.refreshes == 2


def test_margin_is_capped_at_half_the_lifetime() -> None:
    short = tokens_from_answer({"access_token": "a", "expires_in": 2}, sent_at=0.0, margin=60)
    assert short.renew_at == 1.0
    normal = tokens_from_answer({"access_token": "a", "expires_in": 3600}, sent_at=0.0, margin=60)
    assert normal.renew_at == 3540.0
    # Missing lifetimes fall back to the documented ones (1 hour, 7 days).
    default = tokens_from_answer(
        {"access_token": "a", "refresh_token": "r", "client_id": 42}, sent_at=0.0, margin=0
    )
    assert (default.renew_at, default.refresh_usable_until) == (3600.0, 7 * 86400.0)
    assert default.client_id == "42"


def test_answers_without_an_access_token_are_refused_and_tokens_stay_out_of_reprs() -> None:
    for body in ({}, {"access_token": ""}, {"access_token": 5}, ["access_token"], None):
        with pytest.raises(TokenAnswerError):
            tokens_from_answer(body, sent_at=0.0, margin=0)
    tokens = tokens_from_answer(
        {"access_token": "secret-access", "refresh_token": "secret-refresh"}, sent_at=0, margin=0
    )
    assert "secret" not in repr(tokens)
