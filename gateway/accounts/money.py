"""Amounts as operators type them (``250.00 EUR``) and as the ledger keeps them (minor units).

An operator writes major units with the currency's own number of decimals (ISO 4217:
two for EUR, none for JPY, three for BHD); anything finer is refused rather than rounded,
because a rounded top-up is a ledger that disagrees with the bank statement.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from adapters.iso4217 import ISO_4217
from adapters.models import currency_exponent, to_minor_units


class AmountError(ValueError):
    """An amount or currency an operator typed that cannot be booked exactly."""


def parse_currency(text: str) -> str:
    code = text.strip().upper()
    if code not in ISO_4217:
        raise AmountError(f"{text!r} is not an ISO 4217 currency code (e.g. EUR, USD, JPY)")
    return code


def to_minor(text: str, currency: str, *, allow_negative: bool = False) -> int:
    """``"250.00"`` EUR → 25000; refuses more decimals than the currency has, and zero or
    negative amounts unless ``allow_negative`` (adjustments: non-zero either way)."""
    exponent = currency_exponent(currency)
    try:
        value = Decimal(text.strip())
    except InvalidOperation as exc:
        raise AmountError(f"{text!r} is not a decimal amount (e.g. 250.00)") from exc
    if not value.is_finite():
        raise AmountError(f"{text!r} is not a decimal amount (e.g. 250.00)")
    try:
        minor = to_minor_units(value, currency)
    except ValueError:  # finer than the minor unit: refused, never rounded
        places = "no decimals" if exponent == 0 else f"at most {exponent} decimals"
        raise AmountError(f"{currency} amounts have {places}: {text!r}") from None
    if minor == 0 or (minor < 0 and not allow_negative):
        raise AmountError(f"the amount must be {'non-zero' if allow_negative else 'positive'}")
    if abs(minor) >= 10**15:
        raise AmountError(f"{text!r} is too large")
    return minor


def to_major(minor: int, currency: str) -> str:
    """25000 EUR → ``"250.00"`` (exact; for operators' eyes and CSV)."""
    exponent = currency_exponent(currency)
    return f"{Decimal(minor).scaleb(-exponent):.{exponent}f}"
