"""Stored orders → the JSON resellers see. Codes are decrypted here and nowhere else."""

from __future__ import annotations

import json
from collections import defaultdict
from datetime import UTC, datetime
from typing import Any

from adapters.models import Money
from gateway.orders.crypto import CodeCipher
from gateway.orders.models import StoredItem, StoredOrder


def iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _money(value: Money | None) -> dict[str, Any] | None:
    return None if value is None else {"amount": value.amount, "currency": value.currency}


def _totals(items: list[StoredItem], delivered: bool) -> list[dict[str, Any]]:
    sums: dict[str, int] = defaultdict(int)
    for item in items:
        units = item.delivered_quantity if delivered else item.quantity
        sums[item.unit_price.currency] += item.unit_price.amount * units
    return [{"amount": amount, "currency": currency} for currency, amount in sorted(sums.items())]


def decrypt_codes(item: StoredItem, cipher: CodeCipher) -> list[dict[str, Any]]:
    if item.codes is None:
        return []
    return list(json.loads(cipher.decrypt(item.codes)))


def render_order(
    order: StoredOrder,
    cipher: CodeCipher | None,
    *,
    codes: bool,
    webhook: bool = True,
) -> dict[str, Any]:
    """The API representation; ``codes`` only for the owning reseller's single-order reads
    (create, get), never for lists or webhooks."""
    items = []
    for item in order.items:
        rendered: dict[str, Any] = {
            "variant_id": item.variant_id,
            "canonical_variant_id": item.canonical_variant_id,
            "product_id": item.product_id,
            "product_name": item.product_name,
            "variant_name": item.variant_name,
            "supplier": item.supplier,
            "quantity": item.quantity,
            "face_value": _money(item.face_value),
            "unit_price": _money(item.unit_price),
            "total": {
                "amount": item.unit_price.amount * item.quantity,
                "currency": item.unit_price.currency,
            },
            "status": item.status.value,
            "delivered_quantity": item.delivered_quantity,
            "failure": item.failure.model_dump() if item.failure else None,
        }
        if codes and cipher is not None:
            rendered["codes"] = decrypt_codes(item, cipher)
        items.append(rendered)
    out: dict[str, Any] = {
        "id": order.id,
        "status": order.status.value,
        "reference": order.reference,
        "created_at": iso(order.created_at),
        "updated_at": iso(order.updated_at),
        "completed_at": iso(order.final_at),
        "items": items,
        "totals": _totals(order.items, delivered=False),
        "delivered_totals": _totals(order.items, delivered=True),
    }
    if webhook:
        hook = order.webhook
        out["webhook"] = (
            None
            if hook is None
            else {
                "state": hook.state.value,
                "event_id": hook.event_id,
                "attempts": hook.attempts,
                "last_status": hook.last_status,
                "last_attempt_at": iso(hook.last_attempt_at),
                "next_attempt_at": iso(hook.next_attempt_at),
                "delivered_at": iso(hook.delivered_at),
            }
        )
    return out
