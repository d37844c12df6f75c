"""Settings every supplier adapter shares; each adapter subclasses it for its own fields.

Values come from the gateway's one settings object (environment
``GATEWAY_SUPPLIERS__<NAME>__<FIELD>``
or the config file), validated by the adapter's ``settings_model`` once at start-up.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from adapters.ratelimit import RateLimit


class TimeoutSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    connect: float = Field(default=3.0, gt=0, description="TCP/TLS connect timeout, seconds.")
    read: float = Field(default=10.0, gt=0, description="Time to wait for response bytes.")
    total: float = Field(default=20.0, gt=0, description="Bound on one whole attempt.")


class RetrySettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    max_attempts: int = Field(default=5, ge=1, description="Attempts per call, first included.")
    max_total_seconds: float = Field(
        default=60.0, gt=0, description="No retry starts after this much time on one call."
    )
    backoff_base: float = Field(default=0.2, gt=0, description="First backoff ceiling, seconds.")
    backoff_max: float = Field(default=10.0, gt=0, description="Largest backoff ceiling.")


class BreakerSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    failure_threshold: int = Field(
        default=5, ge=1, description="Consecutive failures (5xx, timeouts) that open the circuit."
    )
    reset_timeout: float = Field(
        default=30.0, gt=0, description="Seconds an open circuit waits before one probe call."
    )


class SupplierSettings(BaseModel):
    """Shared per-supplier settings. Adapters add credentials and paths."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = Field(default=True, description="Set false to switch the supplier off.")
    base_url: str = Field(description="Upstream base URL including any path prefix.")
    timeouts: TimeoutSettings = TimeoutSettings()
    retries: RetrySettings = RetrySettings()
    breaker: BreakerSettings = BreakerSettings()
    rate_limits: dict[str, RateLimit] = Field(
        default_factory=dict,
        description="Per-bucket overrides of the adapter's documented upstream limits.",
    )
    rate_limit_safety: float = Field(
        default=0.95,
        gt=0,
        le=1,
        description="Fraction of the documented limit the shared limiter allows, to absorb "
        "clock skew and network jitter between us and the upstream's counter.",
    )
    order_reserve: int = Field(
        default=4,
        ge=0,
        le=100,
        description="Slots of each rate bucket, on top of its burst, kept for order calls "
        "(placement, reconciliation, fulfilment polls): product-detail reads and syncs only "
        "take a slot while this many are left, so an order's first calls (this many less one) "
        "find one free at once. Order calls may then burst burst + order_reserve: keep "
        "that within the headroom rate_limit_safety leaves under the documented limit.",
    )
    limiter_max_wait_seconds: float = Field(
        default=30.0,
        gt=0,
        description="Longest wait an order call accepts for a slot of the shared rate limit; "
        "beyond it nothing is sent and the call is retried later (a placement is never "
        "recorded as sent while it waits).",
    )
    detail_share_per_caller: float = Field(
        default=0.5,
        gt=0,
        le=1,
        description="Fraction of a bucket's rate one reseller's product-detail reads may "
        "use; over it, detail reads are served from cache or refused with 503.",
    )
    reconcile_attempts: int = Field(
        default=3, ge=1, description="Look-ups of an ambiguous order before giving up."
    )
    reconcile_delay: float = Field(
        default=1.0, ge=0, description="Seconds between reconciliation look-ups."
    )
