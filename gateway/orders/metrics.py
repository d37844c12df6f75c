"""Order metrics. Labels are bounded: supplier names come from the adapter registry,
statuses and reasons from fixed sets in this package."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

ORDERS_CREATED = Counter("gateway_orders_created_total", "Orders accepted and stored.")
ORDERS_FINAL = Counter(
    "gateway_orders_final_total",
    "Upstream orders (parts of reseller orders) that reached a final state, by supplier "
    "and outcome (delivered, partially_delivered, failed).",
    ["supplier", "status"],
)
ORDERS_COMPLETED = Counter(
    "gateway_orders_completed_total",
    "Reseller orders that reached a final state, by status.",
    ["status"],
)
DELIVERY_SECONDS = Histogram(
    "gateway_orders_delivery_seconds",
    "Time from an order's creation to the delivery of a part's codes, by supplier.",
    ["supplier"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600),
)
IDEMPOTENT_REPLAYS = Counter(
    "gateway_orders_idempotent_replays_total",
    "POST /v1/orders answered from a stored response (same Idempotency-Key).",
)
IDEMPOTENCY_CONFLICTS = Counter(
    "gateway_orders_idempotency_conflicts_total",
    "Idempotency-Key refusals: reused with another body (mismatch) or still in flight.",
    ["reason"],
)
HELD_FOR_REVIEW = Gauge(
    "gateway_orders_held_for_review",
    "Upstream orders currently held for review (outcome unknown; an operator must act).",
    multiprocess_mode="max",
)
HELD_TOTAL = Counter(
    "gateway_orders_holds_total",
    "Upstream orders put on hold for review, by supplier and reason.",
    ["supplier", "reason"],
)
RECONCILIATIONS = Counter(
    "gateway_orders_reconciliations_total",
    "Look-ups of an upstream order by its reference, by supplier and result.",
    ["supplier", "result"],
)
WEBHOOK_DELIVERIES = Counter(
    "gateway_orders_webhook_deliveries_total",
    "Webhook delivery attempts by outcome (delivered, retry, failed).",
    ["outcome"],
)
JOBS = Counter(
    "gateway_orders_jobs_total",
    "Order jobs processed, by kind and outcome.",
    ["kind", "outcome"],
)
JOBS_RECLAIMED = Counter(
    "gateway_orders_jobs_reclaimed_total",
    "Jobs taken over from a worker that stopped renewing them (crashed or stalled).",
)
BACKLOG = Gauge(
    "gateway_orders_job_backlog",
    "Order jobs waiting: in the stream (due or in progress) and scheduled for later.",
    ["queue"],
    multiprocess_mode="max",
)
ROUTING_DECISIONS = Counter(
    "gateway_order_routing_decisions_total",
    "Offers weighed when a routed part chose its supplier, by supplier and outcome: "
    "chosen, or why it was skipped (out_of_stock, circuit_open, failing, "
    "price_above_accepted, cost_above_price, refused_before, not_configured, ...).",
    ["supplier", "outcome"],
)
FAILOVERS = Counter(
    "gateway_order_failovers_total",
    "Routed parts moved to another supplier after a definitive refusal (nothing bought), "
    "by the supplier that refused and the one chosen next ('none': no offer was left).",
    ["from_supplier", "to_supplier"],
)
