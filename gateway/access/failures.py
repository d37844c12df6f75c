"""A per-address limit on failed authentication, decided in process before any Redis read.

Each well-formed key the cache has not seen costs a Redis read, and made-up keys are free
to make: 20,000 of them cost 20,000 ``GET``s, and a client could also try secrets for a
known key id without end. So an address that presented ``failed_auth_limit`` invalid,
revoked or expired keys within ``failed_auth_window_seconds`` is refused 429
``too_many_failed_authentications`` (with ``Retry-After``) until its window ends, before
the key is parsed, hashed or looked up. Requests without a key do not count (they cost
nothing), nor do keys that matched (a disabled reseller's key is a 403, not a guess).

While an address is refused, keys already verified in this process (``Authenticator.
known``) still pass: a busy reseller behind the same NAT as a misconfigured client
keeps working; only look-ups are refused.

The address is the client's as the allowlists see it (``client_address``: the TCP peer,
or behind ``access.trusted_proxies`` the forwarded one). IPv6 clients are counted per
/64, the block one subscriber usually holds, so rotating through it gains nothing.

In process, not in Redis: a shared counter would cost the very round trip this saves.
With several instances an address gets the limit at each; that bounds the reads just
the same. Memory is bounded: at most ``MAX_ADDRESSES`` windows are held (oldest dropped
first, about 300 bytes each).
"""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Callable

from cachetools import TTLCache

from gateway.access.client_ip import IPAddress
from gateway.access.metrics import AUTH_FAILURES
from gateway.errors import TooManyRequests

MAX_ADDRESSES = 10_000


def _bucket(address: IPAddress | None) -> str:
    if address is None:
        return "unknown"  # a Unix socket peer: all such clients share one window
    if address.version == 6:
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)


class FailedAuthentications:
    """Counts failures per address in fixed windows; ``limit`` 0 switches it off."""

    def __init__(
        self,
        limit: int,
        window_seconds: float,
        *,
        max_addresses: int = MAX_ADDRESSES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._limit = limit
        self._window = window_seconds
        self._clock = clock
        # bucket -> [failures, window start]; an entry expires with its window.
        self._windows: TTLCache[str, list[float]] = TTLCache(
            maxsize=max_addresses, ttl=window_seconds, timer=clock
        )

    def check(self, address: IPAddress | None) -> None:
        """Refuse ``address`` (``TooManyRequests``) while it is over the limit."""
        if not self._limit:
            return
        window = self._windows.get(_bucket(address))
        if window is None or window[0] < self._limit:
            return
        AUTH_FAILURES.labels("too_many_failures").inc()
        retry_after = max(1.0, window[1] + self._window - self._clock())
        raise TooManyRequests(
            "too_many_failed_authentications",
            "too many requests with invalid API keys from this address; "
            f"retry in {retry_after:.0f} s",
            retry_after=retry_after,
        )

    def failed(self, address: IPAddress | None) -> None:
        """Count one failed authentication from ``address``."""
        if not self._limit:
            return
        bucket = _bucket(address)
        window = self._windows.get(bucket)
        if window is None:
            self._windows[bucket] = [1, self._clock()]
        else:
            window[0] += 1
