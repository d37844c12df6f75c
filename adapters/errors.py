"""The one error taxonomy of the supplier layer, classified by what the caller should do.

Every adapter maps its upstream's error shape into these classes in exactly one place
(its ``classify_response`` hook); everything above the adapters switches on the class,
never on an upstream's status code or message::

    SupplierError
     ├── RetriableError           try the same call again later (5xx, dropped before sending)
     │    ├── RateLimitedError    ...after ``retry_after`` seconds (429)
     │    ├── SupplierTimeout     ...the upstream did not answer in time (idempotent calls only)
     │    ├── CircuitOpenError    ...the breaker is open; nothing was sent
     │    └── UpstreamBusyError   ...the budget this kind of call may use is spent (the
     │                            rest is kept for orders); nothing was sent
     ├── FatalError               do not retry: the request itself is wrong
     │    ├── NotFoundError       the product or order does not exist (or is hidden from us)
     │    ├── AuthenticationError our credentials or IP are refused: an operator must act
     │    └── RejectedError       the upstream refused this order (stock, denomination, limits)
     └── AmbiguousOutcomeError    a non-idempotent call may or may not have taken effect:
                                  resolve by reconciliation, never by sending it again

``AmbiguousOutcomeError`` is deliberately not a ``RetriableError``: a generic retry loop
must never catch it, because retrying an order placement whose outcome is unknown is how
duplicate purchases happen.
"""

from __future__ import annotations


class SupplierError(Exception):
    """Base of every error an adapter raises."""

    code: str = "supplier_error"

    def __init__(
        self,
        message: str,
        *,
        supplier: str = "",
        upstream_status: int | None = None,
        upstream_code: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.supplier = supplier
        self.upstream_status = upstream_status
        self.upstream_code = upstream_code

    def __str__(self) -> str:
        where = f"[{self.supplier}] " if self.supplier else ""
        status = f" (upstream {self.upstream_status} {self.upstream_code or ''})".rstrip()
        return f"{where}{self.message}{status if self.upstream_status else ''}"


class RetriableError(SupplierError):
    code = "supplier_unavailable"


class RateLimitedError(RetriableError):
    code = "supplier_rate_limited"

    def __init__(self, message: str, *, retry_after: float | None = None, **kw: object) -> None:
        super().__init__(message, **kw)  # type: ignore[arg-type]
        self.retry_after = retry_after


class SupplierTimeout(RetriableError):
    code = "supplier_timeout"


class CircuitOpenError(RetriableError):
    code = "supplier_circuit_open"

    def __init__(self, message: str, *, retry_after: float | None = None, **kw: object) -> None:
        super().__init__(message, **kw)  # type: ignore[arg-type]
        self.retry_after = retry_after


class UpstreamBusyError(RetriableError):
    """The gateway held the call back: the share of the supplier's rate this kind of call
    (or this caller) may use is spent, or an order call would wait longer than it accepts.
    Nothing was sent; retrying at once would only be refused again, so it is not retried
    inside ``request``: the caller decides (serve a cached copy, retry later)."""

    code = "supplier_busy"

    def __init__(self, message: str, *, retry_after: float | None = None, **kw: object) -> None:
        super().__init__(message, **kw)  # type: ignore[arg-type]
        self.retry_after = retry_after


class FatalError(SupplierError):
    code = "supplier_rejected_request"


class NotFoundError(FatalError):
    code = "not_found"


class AuthenticationError(FatalError):
    code = "supplier_authentication_failed"


class RejectedError(FatalError):
    code = "supplier_rejected_order"


class AmbiguousOutcomeError(SupplierError):
    code = "supplier_outcome_unknown"
