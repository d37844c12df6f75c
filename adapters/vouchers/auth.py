"""Bearer tokens of the voucher supplier, held in memory and renewed single-flight.

The supplier's login answers an access token (``expires_in`` seconds: 1 hour), a refresh
token (``refresh_expires_in``: 7 days) and a ``client_id``. ``TokenKeeper`` decides *when*
to renew and makes sure only one renewal runs at a time in a process; the adapter supplies
*how* (its ``login`` and ``refresh`` coroutines, which go through ``SupplierAdapter.request``).

Why single-flight: when a token expires under load, every request in flight wants a new
one at once. Logins are limited to 10 a minute; without the lock a burst of 50 requests
would spend the minute's budget and then some. With it, the first caller renews and the
others wait for it and reuse the result.

Tokens live only in this process's memory (never in Redis, never in a log): each gateway
instance holds its own session, which is what the supplier expects of a client.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

DEFAULT_ACCESS_TTL = 3600.0
DEFAULT_REFRESH_TTL = 7 * 86400.0

#: (keeper id, access token) this task last sent. After a 401, ``headers(after_401=True)``
#: renews only if nobody renewed since: it has no other way to know which token was refused.
_SENT: ContextVar[tuple[int, str] | None] = ContextVar("vouchers_sent_token", default=None)


class TokenAnswerError(ValueError):
    """A login or refresh answer without a usable access token."""


@dataclass(frozen=True, repr=False)
class Tokens:
    """One session with the supplier. ``repr=False``: tokens never reach a log."""

    access_token: str
    renew_at: float
    refresh_token: str | None
    refresh_usable_until: float
    client_id: str | None = None

    def due(self, now: float) -> bool:
        return now >= self.renew_at

    def can_refresh(self, now: float) -> bool:
        return self.refresh_token is not None and now < self.refresh_usable_until


def _seconds(value: Any, default: float) -> float:
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        return default
    return seconds if seconds > 0 else default


def tokens_from_answer(
    body: Any, *, sent_at: float, margin: float, previous: Tokens | None = None
) -> Tokens:
    """Tokens from a login or refresh answer.

    Lifetimes count from when the request was *sent* (``sent_at``, monotonic), so our
    clock expires a token before the supplier's does. The renewal ``margin`` is capped at
    half the token's lifetime: a margin longer than the token's life would otherwise mean
    a login per call. A refresh answer without a refresh token keeps the previous one.
    """
    access = body.get("access_token") if isinstance(body, Mapping) else None
    if not isinstance(access, str) or not access:
        raise TokenAnswerError("the answer carries no access_token")
    ttl = _seconds(body.get("expires_in"), DEFAULT_ACCESS_TTL)
    margin = min(margin, ttl / 2)
    refresh = body.get("refresh_token")
    if isinstance(refresh, str) and refresh:
        refresh_ttl = _seconds(body.get("refresh_expires_in"), DEFAULT_REFRESH_TTL)
        refresh_until = sent_at + refresh_ttl - min(margin, refresh_ttl / 2)
    elif previous is not None:
        refresh, refresh_until = previous.refresh_token, previous.refresh_usable_until
    else:
        refresh, refresh_until = None, 0.0
    client_id = body.get("client_id")
    return Tokens(
        access_token=access,
        renew_at=sent_at + ttl - margin,
        refresh_token=refresh,
        refresh_usable_until=refresh_until,
        client_id=str(client_id) if client_id is not None else None,
    )


class TokenKeeper:
    """Hands out a valid access token; renews lazily, ahead of expiry, and after a 401.

    ``login()`` and ``refresh(tokens)`` obtain new ``Tokens``; ``refresh`` raising
    ``refresh_refused`` (an exception type) falls back to ``login``.
    """

    def __init__(
        self,
        *,
        login: Callable[[], Awaitable[Tokens]],
        refresh: Callable[[Tokens], Awaitable[Tokens]],
        refresh_refused: type[Exception],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._login = login
        self._refresh = refresh
        self._refresh_refused = refresh_refused
        self._clock = clock
        self._tokens: Tokens | None = None
        self._lock = asyncio.Lock()

    @property
    def tokens(self) -> Tokens | None:
        return self._tokens

    def take(self) -> Tokens | None:
        """Forget the session (for logout) and return it."""
        tokens, self._tokens = self._tokens, None
        return tokens

    async def access_token(self, *, after_401: bool = False) -> str:
        tokens = self._tokens
        if after_401:
            sent = _SENT.get()
            refused = sent[1] if sent is not None and sent[0] == id(self) else None
            tokens = await self._renew(refused)
        elif tokens is None or tokens.due(self._clock()):
            tokens = await self._renew(tokens.access_token if tokens else None)
        _SENT.set((id(self), tokens.access_token))
        return tokens.access_token

    async def _renew(self, stale: str | None) -> Tokens:
        """Whoever takes the lock first renews; the others find a token other than the
        one they saw fail or expire, and reuse it."""
        async with self._lock:
            current = self._tokens
            if (
                current is not None
                and current.access_token != stale
                and not current.due(self._clock())
            ):
                return current
            tokens = None
            if current is not None and current.can_refresh(self._clock()):
                try:
                    tokens = await self._refresh(current)
                except self._refresh_refused:
                    tokens = None  # the refresh token is gone too: log in afresh
            if tokens is None:
                tokens = await self._login()
            self._tokens = tokens
            return tokens
