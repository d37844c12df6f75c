"""Upstream metrics, recorded by the adapter base class for every supplier alike.

Labels are bounded: ``supplier`` comes from the adapter registry, ``operation`` from the
adapter's fixed set of call names, ``outcome`` from the error taxonomy.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

UPSTREAM_CALLS = Counter(
    "gateway_upstream_requests_total",
    "Upstream HTTP requests sent, by supplier, operation and outcome.",
    ["supplier", "operation", "outcome"],
)
UPSTREAM_LATENCY = Histogram(
    "gateway_upstream_request_duration_seconds",
    "Latency of one upstream HTTP request (one attempt).",
    ["supplier", "operation"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
UPSTREAM_RETRIES = Counter(
    "gateway_upstream_retries_total",
    "Upstream calls retried after a retriable failure.",
    ["supplier", "operation"],
)
UPSTREAM_429 = Counter(
    "gateway_upstream_rate_limited_total",
    "429 answers received from a supplier.",
    ["supplier"],
)
UPSTREAM_LIMITER_WAIT = Histogram(
    "gateway_upstream_limiter_wait_seconds",
    "Time spent waiting on the shared client-side rate limiter before a call.",
    ["supplier", "bucket"],
    buckets=(0, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
UPSTREAM_QUOTA_REMAINING = Gauge(
    "gateway_upstream_quota_remaining",
    "Requests left in the supplier's current window, as reported by X-RateLimit-Remaining.",
    ["supplier"],
    multiprocess_mode="mostrecent",
)
BREAKER_STATE = Gauge(
    "gateway_upstream_circuit_state",
    "Circuit breaker state per supplier: 0 closed, 1 half-open, 2 open.",
    ["supplier"],
    multiprocess_mode="max",
)
AMBIGUOUS_OUTCOMES = Counter(
    "gateway_upstream_ambiguous_outcomes_total",
    "Non-idempotent calls whose outcome was unknown, by how reconciliation ended.",
    ["supplier", "resolution"],
)
