"""Catalog metrics (issue 6 owns the whole picture; these are the catalog's part).

Labels are bounded: ``supplier`` comes from the adapter registry, ``layer`` and
``result`` from fixed sets.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

PRODUCTS = Gauge(
    "gateway_catalog_products",
    "Products this instance serves, per supplier.",
    ["supplier"],
    multiprocess_mode="mostrecent",
)
SNAPSHOT_VERSION = Gauge(
    "gateway_catalog_snapshot_version",
    "Snapshot version this instance serves, per supplier.",
    ["supplier"],
    multiprocess_mode="mostrecent",
)
SYNC_DURATION = Histogram(
    "gateway_catalog_sync_duration_seconds",
    "Duration of a successful catalog sync.",
    ["supplier"],
    buckets=(1, 5, 10, 30, 60, 120, 300, 600, 1800),
)
SYNC_LAST_SUCCESS = Gauge(
    "gateway_catalog_sync_last_success_timestamp_seconds",
    "Unix time of the last successful sync by any instance (from the status in Redis).",
    ["supplier"],
    multiprocess_mode="mostrecent",
)
SYNC_FAILURES = Counter(
    "gateway_catalog_sync_failures_total",
    "Catalog syncs that failed (the previous snapshot kept serving).",
    ["supplier"],
)
INDEX_BUILD = Histogram(
    "gateway_catalog_index_build_seconds",
    "Time to load changed snapshots and rebuild the in-memory index.",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
DETAIL_CACHE = Counter(
    "gateway_catalog_detail_cache_total",
    "Product-detail look-ups by cache layer (memory, redis) and result "
    "(hit, miss, stale: served expired during a supplier outage or while its budget is "
    "kept for orders, busy: refused for that reason with no copy to serve).",
    ["layer", "result"],
)
