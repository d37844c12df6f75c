"""What the voucher sandbox remembers: login sessions, prices, orders and their vouchers.

Kept apart from the HTTP layer (``sandbox.py``) so the rules read on their own:

* **Sessions.** A login yields an access token (``access_ttl``, 1 hour upstream) and a
  refresh token (``refresh_ttl``, 7 days). A refresh replaces the access token and keeps
  the refresh token; a logout ends the session.
* **Prices.** ``face × quantity`` in the product's currency, minus the discount rounded
  half-up to the currency's minor unit (the supplier's own rounding, deliberately not the
  gateway's round-up, so the adapter's conservative estimate is tested against it). A
  wallet in another currency converts at a fixed rate plus a 1% conversion fee.
* **Orders.** Up to ``INLINE_LIMIT`` vouchers are delivered in the create response; larger
  orders stay ``PENDING`` until their fulfilment time, computed lazily on read. Failure
  and partial delivery are decided once, at creation.
"""

from __future__ import annotations

import re
import secrets
import string
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from adapters.models import currency_exponent
from adapters.vouchers.catalog_data import CatalogProduct

INLINE_LIMIT = 5
MAX_QUANTITY = 5000
CONVERSION_FEE_PERCENT = Decimal("1")
#: Value of one unit in USD, for the sandbox's fixed conversion rates.
USD_VALUE: dict[str, Decimal] = {
    "USD": Decimal("1"),
    "GBP": Decimal("1.27"),
    "EUR": Decimal("1.08"),
    "CAD": Decimal("0.73"),
    "JPY": Decimal("0.0067"),
    "AED": Decimal("0.2723"),
    "AUD": Decimal("0.66"),
    "BHD": Decimal("2.6525"),
}


def quantize(amount: Decimal, currency: str) -> Decimal:
    """Round half-up to the currency's minor unit."""
    return amount.quantize(Decimal(1).scaleb(-currency_exponent(currency)), ROUND_HALF_UP)


def fits_minor_unit(amount: Decimal, currency: str) -> bool:
    return amount == quantize(amount, currency)


# ------------------------------------------------------------------ sessions


@dataclass
class Session:
    client_id: int
    access_token: str
    access_expires: float
    refresh_token: str
    refresh_expires: float


@dataclass
class Sessions:
    access_ttl: float
    refresh_ttl: float
    _by_access: dict[str, Session] = field(default_factory=dict)
    _by_refresh: dict[str, Session] = field(default_factory=dict)

    def login(self, client_id: int) -> Session:
        now = time.time()
        session = Session(
            client_id=client_id,
            access_token=secrets.token_urlsafe(32),
            access_expires=now + self.access_ttl,
            refresh_token=secrets.token_urlsafe(48),
            refresh_expires=now + self.refresh_ttl,
        )
        self._by_access[session.access_token] = session
        self._by_refresh[session.refresh_token] = session
        return session

    def refresh(self, refresh_token: str) -> Session | None:
        session = self._by_refresh.get(refresh_token)
        if session is None or session.refresh_expires <= time.time():
            return None
        self._by_access.pop(session.access_token, None)
        session.access_token = secrets.token_urlsafe(32)
        session.access_expires = time.time() + self.access_ttl
        self._by_access[session.access_token] = session
        return session

    def owner(self, access_token: str) -> Session | None:
        """The session of a token, expired or not (for rate-limit accounting)."""
        return self._by_access.get(access_token)

    def authenticate(self, access_token: str) -> Session | None:
        session = self._by_access.get(access_token)
        if session is None or session.access_expires <= time.time():
            return None
        return session

    def logout(self, session: Session) -> None:
        self._by_access.pop(session.access_token, None)
        self._by_refresh.pop(session.refresh_token, None)

    def revoke_access(self, *, refresh_too: bool = False) -> int:
        """Invalidate every access token (as a key rotation or server restart would)."""
        count = len(self._by_access)
        self._by_access.clear()
        if refresh_too:
            self._by_refresh.clear()
        return count


# ------------------------------------------------------------------- prices


@dataclass(frozen=True)
class Pricing:
    source_currency: str
    destination_currency: str
    non_discounted_total: Decimal
    discount_amount: Decimal
    forex_rate: Decimal
    conversion_fee: Decimal
    total_payable: Decimal

    def charges_json(self, max_quantity: int) -> dict[str, Any]:
        return {
            "non_discounted_total": float(self.non_discounted_total),
            "discount_amount": float(self.discount_amount),
            "total_payable": float(self.total_payable),
            "max_quantity": max_quantity,
            "charges_details": {
                "source_currency": self.source_currency,
                "destination_currency": self.destination_currency,
                "forex_rate": float(self.forex_rate),
                "conversion_fee": float(self.conversion_fee),
            },
        }


def price(face: Decimal, discount: Decimal, quantity: int, source: str, dest: str) -> Pricing:
    gross = face * quantity
    off = quantize(gross * discount / 100, source)
    net = gross - off
    if dest == source:
        rate, fee, payable = Decimal(1), Decimal(0), net
    else:
        rate = (USD_VALUE[source] / USD_VALUE[dest]).quantize(Decimal("0.000001"))
        converted = quantize(net * rate, dest)
        fee = quantize(converted * CONVERSION_FEE_PERCENT / 100, dest)
        payable = converted + fee
    return Pricing(source, dest, gross, off, rate, fee, payable)


# ------------------------------------------------------------------- orders

_CODE_ALPHABET = "".join(c for c in string.ascii_uppercase + string.digits if c not in "0O1IL")
_VALIDITY = re.compile(r"^(\d+)\s+(month|months|year|years)$", re.IGNORECASE)


def _expiry(validity: str | None, created: datetime) -> datetime | None:
    match = _VALIDITY.match(validity or "")
    if match is None:
        return None
    count = int(match.group(1))
    days = count * (365 if match.group(2).lower().startswith("year") else 30)
    return created + timedelta(days=days)


def _iso(moment: datetime | None) -> str | None:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z") if moment else None


def new_voucher(product: CatalogProduct, order_id: int, index: int) -> dict[str, Any]:
    """One voucher shaped by the product's delivery mode; secrets from ``secrets``, so a
    code cannot be derived from the order, the seed or another code."""
    mode = (product.delivery_mode or "Code").lower()
    card = pin = url = None
    if mode == "url":
        url = f"https://claim.vouchers.example/r/{secrets.token_urlsafe(18)}"
    elif mode == "code with pin":
        card = "".join(secrets.choice(string.digits) for _ in range(16))
        pin = "".join(secrets.choice(string.digits) for _ in range(6))
    else:
        card = "-".join("".join(secrets.choice(_CODE_ALPHABET) for _ in range(5)) for _ in range(3))
    now = datetime.now(UTC)
    return {
        "card_number": card,
        "pin_code": pin,
        "claim_url": url,
        "expires_at": _iso(_expiry(product.validity, now)),
        "voucher_reference_number": f"VRN-{order_id}-{index + 1:04d}",
    }


@dataclass
class Order:
    id: int
    client_id: int
    product: CatalogProduct
    denomination: Decimal
    quantity: int
    pricing: Pricing
    client_reference: str | None
    wallet_id: int
    email: str | None
    created_at: datetime
    due_at: float
    #: Decided at creation: "deliver", "fail" or "partial".
    outcome: str
    status: str = "PENDING"
    message: str | None = None
    vouchers: list[dict[str, Any]] = field(default_factory=list)

    def settle(self, now: float | None = None) -> None:
        """Apply the fulfilment outcome once its time has come (lazy, on read)."""
        if self.status != "PENDING" or (now or time.time()) < self.due_at:
            return
        if self.outcome == "fail":
            self.status = "FAILED"
            self.message = "Fulfilment failed; the amount was refunded to the wallet"
        elif self.outcome == "partial":
            delivered = max(1, self.quantity // 2)
            self.vouchers = [new_voucher(self.product, self.id, i) for i in range(delivered)]
            self.status = "PARTIALLY_DELIVERED"
            self.message = (
                f"{delivered} of {self.quantity} vouchers delivered; the rest was refunded"
            )
        else:
            self.vouchers = [new_voucher(self.product, self.id, i) for i in range(self.quantity)]
            self.status = "DELIVERED"
            self.message = "Order delivered"

    def to_json(self) -> dict[str, Any]:
        self.settle()
        return {
            "id": self.id,
            "product_id": self.product.id,
            "product_name": self.product.name,
            "denomination": float(self.denomination),
            "quantity": self.quantity,
            # What the wallet is debited, in the wallet's (deduction) currency.
            "amount": float(self.pricing.total_payable),
            # The discount granted, in the product's (base) currency.
            "discount": float(self.pricing.discount_amount),
            "client_reference": self.client_reference,
            "wallet_id": self.wallet_id,
            "status": self.status,
            "base_currency": self.pricing.source_currency,
            "deduction_currency": self.pricing.destination_currency,
            "message": self.message,
            "email": self.email,
            "created_at": _iso(self.created_at),
            "vouchers": list(self.vouchers),
        }

    def log_entry(self) -> dict[str, Any]:
        """The purchase-log record ``SandboxControl.record_order`` keeps (no codes)."""
        return {
            "id": self.id,
            "reference": self.client_reference,
            "client_id": self.client_id,
            "lines": [
                {
                    "product_id": self.product.id,
                    "denomination": str(quantize(self.denomination, self.product.currency)),
                    "quantity": self.quantity,
                }
            ],
            "created_at": _iso(self.created_at),
        }
