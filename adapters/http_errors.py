"""Reading an upstream's error answer: the start every ``classify_response`` shares.

An adapter's ``classify_response`` switches on its upstream's error codes; before it can,
it must skip successes, parse the error body and carry the supplier, the HTTP status and
the upstream's code into whichever ``SupplierError`` it picks. ``read_error`` does that
once, for the base class and every adapter alike::

    def classify_response(self, response: httpx.Response) -> SupplierError | None:
        answer = read_error(response, self.name)  # or read_error(..., parse=my_parser)
        if answer is None:
            return None
        if answer.code == "OUT_OF_STOCK":
            return answer.error(RejectedError, answer.message or answer.code)
        return super().classify_response(response)

This module is public API for third-party adapters (``docs/adding-a-supplier.md``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx

from adapters.errors import SupplierError

#: Reads an error body into (upstream error code, message); either may be ``None``.
ErrorParser = Callable[[httpx.Response], tuple[str | None, str | None]]

E = TypeVar("E", bound=SupplierError)


def error_code_and_message(response: httpx.Response) -> tuple[str | None, str | None]:
    """Read the common ``{"error": {"code": ..., "message": ...}}`` shape (both built-in
    upstreams and the example use it); ``(None, None)`` for any other body."""
    try:
        body = response.json()
    except ValueError:
        return None, None
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        return None, None
    code, message = error.get("code"), error.get("message")
    return (str(code) if code is not None else None, str(message) if message is not None else None)


@dataclass(frozen=True, slots=True)
class ErrorAnswer:
    """An upstream answer with status 400 or above, read once."""

    supplier: str
    status: int
    code: str | None
    message: str | None

    def error(self, cls: type[E], message: str, **extra: Any) -> E:
        """``cls(message)`` carrying the supplier, the upstream status and the upstream's
        code (``extra``: the class's own arguments, e.g. ``retry_after``)."""
        return cls(
            message,
            supplier=self.supplier,
            upstream_status=self.status,
            upstream_code=self.code,
            **extra,
        )


def read_error(
    response: httpx.Response, supplier: str, *, parse: ErrorParser = error_code_and_message
) -> ErrorAnswer | None:
    """``None`` for a success (status below 400), else the answer's status, code and
    message as ``parse`` reads them from the body."""
    status = response.status_code
    if status < 400:
        return None
    code, message = parse(response)
    return ErrorAnswer(supplier=supplier, status=status, code=code, message=message)
