"""Account metrics. Labels are bounded: currencies are ISO 4217 codes of orders that the
catalog priced; reasons come from the fixed set of refusal codes."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

REFUSALS = Counter(
    "gateway_accounts_refusals_total",
    "Orders refused because an account could not cover them, by currency and reason "
    "(insufficient_funds, order_limit_exceeded, daily_limit_exceeded).",
    ["currency", "reason"],
)
HELD = Counter(
    "gateway_accounts_held_minor_total",
    "Value held on accounts when orders were accepted, in minor units, by currency.",
    ["currency"],
)
CAPTURED = Counter(
    "gateway_accounts_captured_minor_total",
    "Value captured from holds for delivered units, in minor units, by currency.",
    ["currency"],
)
RELEASED = Counter(
    "gateway_accounts_released_minor_total",
    "Value released from holds for units not delivered, in minor units, by currency.",
    ["currency"],
)
HOLDS_OPEN = Gauge(
    "gateway_accounts_holds_open",
    "Order holds not yet fully captured or released (one per order and currency).",
    multiprocess_mode="max",
)
HOLDS_OVERDUE = Gauge(
    "gateway_accounts_holds_overdue",
    "Holds open for longer than orders.fulfilment_timeout_seconds (should be none: an "
    "order is final or held for review by then).",
    multiprocess_mode="max",
)
LOW_BALANCE_NOTICES = Counter(
    "gateway_accounts_low_balance_notices_total",
    "Delivery attempts of account.low_balance webhooks by outcome (delivered, retry, failed).",
    ["outcome"],
)
