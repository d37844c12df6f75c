"""The one settings object, read once at start-up and passed down.

Sources, highest priority first: keyword arguments (tests), environment variables
(``GATEWAY_<FIELD>``, nested with ``__``: ``GATEWAY_CATALOG__SYNC_INTERVAL_SECONDS=600``,
``GATEWAY_SUPPLIERS__VOUCHERS__API_SECRET=...``), a TOML file named by
``GATEWAY_CONFIG_FILE``, then the defaults below. Nothing reads the environment at
import time: ``Settings()`` is called by the entry points (CLI, app factory) only.

Every field is documented in the README's configuration table.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class HttpSettings(_Section):
    host: str = Field(default="127.0.0.1", description="Interface the gateway listens on.")
    port: int = Field(default=8080, ge=0, le=65535, description="Port the gateway listens on.")
    workers: int = Field(default=1, ge=1, le=64, description="uvicorn worker processes.")
    max_body_bytes: int = Field(
        default=256 * 1024, ge=1024, description="Largest request body accepted (413 above)."
    )
    max_header_bytes: int = Field(
        default=16 * 1024,
        ge=1024,
        description="Largest request line and headers together (431 and close above; "
        "nginx allows 8 KB per line, 32 KB in all).",
    )
    header_timeout_seconds: float = Field(
        default=30.0,
        gt=0,
        description="A request head (line and headers) must arrive within this time of the "
        "connection's start or of its first byte; else the connection is closed.",
    )
    body_timeout_seconds: float = Field(
        default=60.0,
        gt=0,
        description="A request body must arrive within this time of its head; else the "
        "connection is closed.",
    )
    keep_alive_seconds: float = Field(
        default=65.0,
        gt=0,
        description="An idle connection between requests is closed after this long (more "
        "than a load balancer's idle timeout, AWS ALB 60 s).",
    )
    max_connections: int = Field(
        default=1000,
        ge=1,
        description="Open connections per worker process; one more is closed at once.",
    )
    public_url: str | None = Field(
        default=None, description="Base URL printed for humans; derived from host/port if unset."
    )
    shutdown_grace_seconds: float = Field(
        default=40.0,
        gt=0,
        description="On SIGTERM, how long in-flight requests may run before being cancelled "
        "(more than orders.max_wait_seconds).",
    )
    metrics_port: int | None = Field(
        default=None,
        ge=0,
        le=65535,
        description="Port of a separate /metrics listener for processes without the app "
        "(gateway worker).",
    )


class CatalogSettings(_Section):
    sync_interval_seconds: float = Field(
        default=900.0, gt=0, description="How often each supplier's catalog is re-synced."
    )
    sync_lock_seconds: float = Field(
        default=600.0, gt=0, description="Expiry of a supplier's sync lock (stalled holder)."
    )
    snapshot_poll_seconds: float = Field(
        default=2.0, gt=0, description="How often an instance checks for a newer snapshot."
    )
    build_cpu_share: float = Field(
        default=0.3,
        gt=0,
        le=1,
        description="Most of a CPU an index rebuild takes while requests are served: less "
        "keeps latency flat during the rebuild, which takes longer (1: no cap).",
    )
    build_process_min_products: int = Field(
        default=10_000,
        ge=0,
        description="Catalogs of at least this many products (all suppliers together) "
        "are indexed in a child process and handed over in slices: the serving process "
        "neither spends the build's CPU nor keeps its fragmented memory (0: always).",
    )
    detail_ttl_seconds: float = Field(
        default=3600.0, gt=0, description="Redis TTL of a cached product detail."
    )
    detail_memory_ttl_seconds: float = Field(
        default=60.0, gt=0, description="In-process TTL of a cached product detail."
    )
    detail_memory_size: int = Field(
        default=10_000, ge=1, description="Product details held in the in-process LRU."
    )
    taxonomy_file: Path | None = Field(
        default=None, description="Optional TOML mapping supplier categories to unified ones."
    )
    brands_file: Path | None = Field(
        default=None,
        description="Optional TOML of gift-card product lines and their spellings, adding to "
        "or replacing lines of the shipped brand table (docs/routing.md).",
    )
    match_overrides_file: Path | None = Field(
        default=None,
        description="Optional TOML forcing supplier products into a canonical product or "
        "keeping them apart (docs/routing.md).",
    )
    show_offer_suppliers: bool = Field(
        default=True,
        description="Show resellers which supplier stands behind each offer (names and "
        "supplier ids in canonical products, the supplier facet and filter); false hides "
        "them (docs/routing.md).",
    )
    markup_percent: str = Field(
        default="0", description="Global markup on supplier cost, percent (a decimal string)."
    )
    markup_fixed_minor: int = Field(
        default=0, ge=0, description="Global fixed markup per unit, in minor units."
    )
    markup_rules: list[dict[str, Any]] = Field(
        default_factory=list,
        description="Overrides: [{supplier?, category?, percent?, fixed_minor?}]; the most "
        "specific match wins.",
    )


class AccessSettings(_Section):
    trusted_proxies: list[str] = Field(
        default_factory=list, description="CIDRs whose X-Forwarded-For is believed."
    )
    key_cache_seconds: float = Field(
        default=5.0, ge=0, description="In-process cache of API-key look-ups (revocation lag)."
    )
    default_rate_limit: int = Field(
        default=600, ge=1, description="Requests per minute per key unless the key says else."
    )
    failed_auth_limit: int = Field(
        default=30,
        ge=0,
        description="Invalid, revoked or expired keys one client address may present per "
        "window before it is refused 429 without a look-up (IPv6: per /64; 0: no limit).",
    )
    failed_auth_window_seconds: float = Field(
        default=60.0, gt=0, description="The window of failed_auth_limit."
    )
    fail_open_reads: bool = Field(
        default=True, description="Admit catalog reads when Redis cannot rate-limit them."
    )
    fail_open_writes: bool = Field(
        default=False, description="Admit order writes when Redis cannot rate-limit them."
    )
    demo_key: SecretStr | None = Field(
        default=None,
        description="An API key registered at start-up for a demo reseller (set by "
        "`gateway serve` in demo mode; leave unset in production). Refused with a real "
        "Redis unless demo_in_redis is set.",
    )
    demo_in_redis: bool = Field(
        default=False,
        description="Let the demo key be written to a real Redis (`gateway serve "
        "--demo-key`): usable from loopback only, it expires after demo_key_ttl_seconds, "
        "and any start without a demo key revokes it.",
    )
    demo_key_ttl_seconds: float = Field(
        default=3600.0, gt=0, description="Lifetime of a demo key written to a real Redis."
    )


class RoutingSettings(_Section):
    """How a part for a canonical variant picks its supplier at placement
    (``gateway.orders.router``; docs/routing.md "How an offer is chosen")."""

    supplier_priority: dict[str, int] = Field(
        default_factory=dict,
        description="Tie-break between offers of equal cost: supplier name -> priority, "
        "lower first (unlisted suppliers: 100); equal priorities go by supplier name.",
    )
    success_window: int = Field(
        default=20,
        ge=1,
        description="Recent placement outcomes per supplier the success rate is taken over "
        "(in process, like the circuit breaker).",
    )
    min_samples: int = Field(
        default=5,
        ge=1,
        description="Outcomes a supplier needs in the window before its success rate can "
        "make routing skip it.",
    )
    min_success_rate: float = Field(
        default=0.5,
        ge=0,
        le=1,
        description="A supplier whose recent placement success rate is below this is "
        "skipped until its probe is due (probe_after_seconds; 0: never skip on success "
        "rate).",
    )
    probe_after_seconds: float = Field(
        default=30.0,
        gt=0,
        description="A supplier skipped for failing gets one placement again this long "
        "after its last one (a probe); its outcome updates the rate.",
    )
    absorb_price_difference: bool = Field(
        default=True,
        description="A dearer offer may take over from one that refused (failover): the "
        "reseller is still charged the accepted price and the margin absorbs the "
        "difference, never below cost (the offer's cost must not exceed the accepted "
        "price). false: only offers whose own reseller price is not above the accepted "
        "price are eligible, which with one markup for all suppliers means no failover "
        "to a dearer supplier.",
    )
    no_offer_retry_seconds: float = Field(
        default=5.0,
        gt=0,
        description="When every offer left is only skipped for a while (open circuit, "
        "failing supplier), look again after this long; the part fails once "
        "placement_timeout_seconds has passed.",
    )


class OrderSettings(_Section):
    idempotency_ttl_seconds: int = Field(
        default=48 * 3600, ge=24 * 3600, description="How long an Idempotency-Key is kept."
    )
    max_wait_seconds: float = Field(
        default=30.0, ge=0, description="Upper bound of Prefer: wait=N."
    )
    max_items: int = Field(default=50, ge=1, description="Items per order.")
    max_quantity: int = Field(default=100, ge=1, description="Units per item.")
    inline_workers: bool = Field(
        default=True, description="Run order workers inside the gateway process."
    )
    worker_concurrency: int = Field(default=8, ge=1, description="Jobs per worker process.")
    encryption_keys: list[SecretStr] = Field(
        default_factory=list,
        description="Fernet keys for codes at rest, newest first (rotation: prepend a new one).",
    )
    webhook_timeout_seconds: float = Field(
        default=5.0, gt=0, description="Bound on one webhook POST to a reseller."
    )
    webhook_allow_private_targets: bool = Field(
        default=False,
        description="Allow webhook URLs on loopback, private and other non-public "
        "addresses (link-local, metadata, multicast and unspecified ones never).",
    )
    webhook_max_seconds: float = Field(
        default=24 * 3600.0, gt=0, description="Give up on a webhook after this long."
    )
    webhook_backoff_seconds: float = Field(
        default=5.0, gt=0, description="First webhook retry delay (doubles, full jitter)."
    )
    webhook_backoff_max_seconds: float = Field(
        default=3600.0, gt=0, description="Longest delay between two webhook attempts."
    )
    idempotency_lease_seconds: float = Field(
        default=30.0,
        gt=0,
        description="An in-flight Idempotency-Key is held this long beyond Prefer: wait; "
        "after it a retry may take over a request whose instance died.",
    )
    job_lease_seconds: float = Field(
        default=30.0,
        ge=0.5,
        description="A job unacknowledged this long (its worker died) is claimed by another "
        "worker; running jobs renew their lease.",
    )
    job_max_deliveries: int = Field(
        default=10, ge=2, description="Deliveries of one job before it is held for review."
    )
    job_timeout_seconds: float = Field(
        default=600.0, gt=0, description="Bound on one job; a placement cut off is held."
    )
    schedule_poll_seconds: float = Field(
        default=0.25, gt=0, description="Longest pause between moves of due delayed jobs."
    )
    poll_initial_seconds: float = Field(
        default=1.0, gt=0, description="First fulfilment poll delay (doubles, with jitter)."
    )
    poll_max_seconds: float = Field(default=60.0, gt=0, description="Longest poll delay.")
    retry_initial_seconds: float = Field(
        default=1.0, gt=0, description="First delay after a retriable placement failure."
    )
    retry_max_seconds: float = Field(default=300.0, gt=0, description="Longest such delay.")
    placement_timeout_seconds: float = Field(
        default=3600.0,
        gt=0,
        description="Stop retrying a placement after this long: reconcile, then fail it.",
    )
    fulfilment_timeout_seconds: float = Field(
        default=24 * 3600.0,
        gt=0,
        description="A placed order still undelivered after this long is held for review.",
    )
    shutdown_grace_seconds: float = Field(
        default=10.0, ge=0, description="Running jobs may finish for this long on shutdown."
    )
    review_reconcile_seconds: float = Field(
        default=60.0,
        gt=0,
        description="A part held with an unknown outcome is looked up by reference again "
        "after this long (doubling); found, it continues; confirmed absent, it is sent "
        "again under the same reference; still unknown, it waits for an operator.",
    )
    review_reconcile_attempts: int = Field(
        default=3, ge=0, description="Automatic look-ups of a held part (0: none)."
    )
    routing: RoutingSettings = Field(default_factory=RoutingSettings)


class AccountSettings(_Section):
    enforce: bool = Field(
        default=True,
        description="Orders draw on the reseller's account per currency; a currency without "
        "an account is refused (402). false lets resellers without an account buy without "
        "limit (UNSAFE: any key with orders:write can spend freely).",
    )
    demo_balance: int = Field(
        default=100_000,
        ge=0,
        description="Major units credited to the demo reseller in each demo currency when "
        "the gateway runs in demo mode (access.demo_key set).",
    )
    demo_currencies: list[str] = Field(
        default_factory=lambda: ["EUR", "USD", "GBP", "CAD", "JPY", "AED", "AUD", "BHD"],
        description="Currencies of the demo reseller's funded accounts.",
    )


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="GATEWAY_",
        env_nested_delimiter="__",
        extra="forbid",
        case_sensitive=False,
    )

    redis_url: str | None = Field(
        default=None,
        description="Redis URL (redis:// or rediss://). Unset: an embedded in-process store, "
        "for the demo only. Set but unreachable: start-up fails.",
    )
    redis_cluster: bool = Field(default=False, description="Connect as a Redis Cluster client.")
    key_prefix: str = Field(
        default="gw", pattern=r"^[A-Za-z0-9_.-]{1,32}$", description="Prefix of every Redis key."
    )
    sandbox: Literal["auto", "on", "off"] = Field(
        default="auto",
        description="Run the built-in supplier sandboxes in-process: 'auto' when no supplier "
        "has a base_url configured.",
    )
    log_level: str = Field(
        default="INFO", description="Python log level (DEBUG, INFO, WARNING, ERROR, CRITICAL)."
    )
    log_json: bool | None = Field(
        default=None,
        description="One JSON object per log line (true) or short text lines (false); unset: "
        "JSON unless the log stream (stderr) is a terminal.",
    )
    log_flush_seconds: float = Field(
        default=0.05,
        ge=0,
        le=5,
        description="How long access-log lines may wait in the buffer before they are "
        "written together (0: at the end of every event-loop turn). Warnings and errors "
        "are written at once; a graceful stop writes everything; a process killed outright "
        "loses at most this long of access lines.",
    )
    suppliers: dict[str, dict[str, Any]] = Field(
        default_factory=dict,
        description="Per-supplier settings by supplier name, validated by each adapter.",
    )
    http: HttpSettings = HttpSettings()
    catalog: CatalogSettings = CatalogSettings()
    access: AccessSettings = AccessSettings()
    orders: OrderSettings = OrderSettings()
    accounts: AccountSettings = AccountSettings()

    @model_validator(mode="after")
    def _no_standing_demo_key(self) -> Settings:
        """A demo key printed on a terminal must not become a standing credential in a
        Redis that outlives the run (and may later serve real suppliers)."""
        if (
            self.access.demo_key is not None
            and self.redis_url is not None
            and not self.access.demo_in_redis
        ):
            raise ValueError(
                "access.demo_key is set with a real Redis (redis_url): a demo key would "
                "outlive this run there; unset it, or set access.demo_in_redis for a key "
                "that works from loopback only and expires (gateway serve --demo-key)"
            )
        return self

    @field_validator("log_level")
    @classmethod
    def _known_level(cls, value: str) -> str:
        if value.upper() not in logging.getLevelNamesMapping():
            raise ValueError("must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL")
        return value.upper()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        config_file = os.environ.get("GATEWAY_CONFIG_FILE")
        if config_file:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=config_file))
        return tuple(sources)

    def supplier_values(self, name: str) -> dict[str, Any]:
        """Raw settings of one supplier; env keys arrive lower-cased, names use ``_``."""
        return dict(self.suppliers.get(name) or self.suppliers.get(name.replace("-", "_")) or {})
