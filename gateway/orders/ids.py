"""Order ids, event ids and the upstream references derived from them.

An order id is ``ord_`` + a ULID (48-bit millisecond time, 80 random bits, Crockford
base32): unique without coordination between instances, sortable by creation time, and
short enough that ``<order id>-<part>`` fits every supplier's reference field (64 printable
ASCII characters at most). The reference is a pure function of the order id and the
part number, so every retry of a placement, from any instance, after any crash, sends
the same idempotency key upstream.
"""

from __future__ import annotations

import secrets
import time

_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
ORDER_PREFIX = "ord_"


def _ulid(now_ms: int | None = None) -> str:
    millis = time.time_ns() // 1_000_000 if now_ms is None else now_ms
    value = ((millis & ((1 << 48) - 1)) << 80) | secrets.randbits(80)
    chars = []
    for _ in range(26):
        chars.append(_CROCKFORD[value & 31])
        value >>= 5
    return "".join(reversed(chars))


def new_order_id(now_ms: int | None = None) -> str:
    return ORDER_PREFIX + _ulid(now_ms)


def is_order_id(value: str) -> bool:
    body = value[len(ORDER_PREFIX) :]
    return value.startswith(ORDER_PREFIX) and len(body) == 26 and all(c in _CROCKFORD for c in body)


def part_reference(order_id: str, part: int) -> str:
    """The idempotency key of one upstream order: ``ord_01J...-1`` (parts count from 1)."""
    return f"{order_id}-{part}"


def attempt_reference(base: str, attempt: int) -> str:
    """The reference of a routed part's ``attempt`` (from 1): the part's own reference
    for the first, ``<base>.<k>`` for the k-th. Deterministic, so a worker replaying an
    attempt sends the same key; distinct per attempt, so each supplier's purchase is
    traceable to one attempt. At most 30 + 3 + 4 characters of ``[A-Za-z0-9_.-]``: within
    the adapters' 64 printable ASCII, Gaming Goods' 255-character Idempotency-Key and the
    voucher supplier's 255-character ``client_reference``."""
    return base if attempt <= 1 else f"{base}.{attempt}"


def event_id(order_id: str) -> str:
    """The id of an order's one final webhook event: stable across delivery attempts, so
    a reseller de-duplicates on it."""
    return "evt_" + order_id[len(ORDER_PREFIX) :]


def job_nonce() -> str:
    return secrets.token_hex(6)
