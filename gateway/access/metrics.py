"""Access metrics. Labels are bounded: scopes and reasons are fixed sets, never key ids."""

from __future__ import annotations

from prometheus_client import Counter

RATELIMIT_REJECTIONS = Counter(
    "gateway_ratelimit_rejections_total",
    "Requests refused with 429 by the per-key rate limit, by the operation's scope.",
    ["scope"],
)
RATELIMIT_UNAVAILABLE = Counter(
    "gateway_ratelimit_unavailable_total",
    "Requests the rate limiter could not decide (Redis unavailable), by scope and whether "
    "they were admitted (fail open) or refused (fail closed).",
    ["scope", "outcome"],
)
AUTH_FAILURES = Counter(
    "gateway_auth_failures_total",
    "Requests refused by authentication or authorisation, by reason.",
    ["reason"],
)
