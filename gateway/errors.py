"""The gateway's domain errors: what went wrong, in words a caller can act on.

Services (``gateway.orders``, ``gateway.access``, ``gateway.catalog``, ``gateway.accounts``)
raise these; they never import the HTTP layer. The API layer turns each kind into an HTTP
status in exactly one place (``gateway.api.errors``), the way httpx maps httpcore's
errors in one context manager.

::

    GatewayError                 code, message, details, retry_after
    ├── InvalidRequest           the request itself is malformed (400)
    ├── Unauthenticated          no usable credential (401)
    ├── InsufficientFunds        the reseller's account cannot cover it (402)
    ├── Forbidden                a credential that may not do this (403)
    ├── NotFound                 nothing by that id for this caller (404)
    ├── Conflict                 clashes with an earlier request (409)
    ├── Unprocessable            well-formed but refused by the rules (422)
    ├── TooManyRequests          over a rate limit (429)
    ├── Unavailable              a dependency cannot answer now; retry later (503)
    └── Internal                 a broken invariant; no detail reaches the caller (500)

``code`` is stable and machine-readable (resellers switch on it); ``message`` is for
humans; ``details`` is JSON-ready data the caller may use (e.g. the current price).
"""

from __future__ import annotations

from typing import Any


class GatewayError(Exception):
    """Base of every domain refusal. Subclasses say what kind of refusal it is."""

    def __init__(
        self,
        code: str,
        message: str,
        *,
        details: Any = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = details
        self.retry_after = retry_after

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.code!r}, {self.message!r})"


class InvalidRequest(GatewayError):
    """The request is malformed (a header, a parameter): fix it before sending again."""


class Unauthenticated(GatewayError):
    """No credential, or one that matches nothing."""


class InsufficientFunds(GatewayError):
    """The reseller's account cannot cover the amount; nothing was done."""


class Forbidden(GatewayError):
    """The caller is known but may not do this (scope, address, disabled)."""


class NotFound(GatewayError):
    """Nothing by that id exists for this caller."""


class Conflict(GatewayError):
    """The request clashes with an earlier one (e.g. the same Idempotency-Key in flight)."""


class Unprocessable(GatewayError):
    """Well-formed, but refused by the business rules (price changed, out of stock...)."""


class TooManyRequests(GatewayError):
    """Over a rate limit; ``retry_after`` says when to try again."""


class Unavailable(GatewayError):
    """A dependency (Redis, a supplier) cannot answer now; ``retry_after`` when known."""


class Internal(GatewayError):
    """An invariant broke. Logged in full; the caller only learns ``internal_error``."""
