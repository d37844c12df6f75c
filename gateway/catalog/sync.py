"""Pulling one supplier's whole catalog into a new snapshot version, once at a time.

Every gateway instance runs the periodic sync, and ``gateway sync`` can run one by hand,
so concurrent attempts are normal. Exactly one proceeds per supplier: it takes a Redis
lock that expires by itself (``catalog.sync_lock_seconds``; a crashed holder cannot block
syncs for ever) and holds a *fencing token* issued by ``INCR`` with it. The token is the
version number the sync publishes under, and the publish script refuses a token at or
below the published version or whose lock another holder now owns. So a holder that
stalled (a long GC pause, a partition) until its lock expired and somebody else took
over can never overwrite the newer snapshot when it wakes up. While it runs, the holder
renews its lock every third of its lifetime and stops early once it has lost it.

A failed sync publishes nothing: readers keep the last good version, and the supplier's
status says ``stale`` with the error (unless a newer version was published meanwhile).
The other suppliers are not touched: every supplier has its own lock, keys and status.

Status hash fields (strings, as Redis keeps them): ``version``, ``products``, ``pages``,
``duration_seconds``, ``requests``, ``rate_limited``, ``retries``, ``last_success_at``,
``last_attempt_at``, ``last_error``, ``last_error_at``, ``outcome`` (``ok``/``failed``),
``stale`` (``0``/``1``); times are Unix seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

from adapters.base import SupplierAdapter
from adapters.models import CatalogPage, Product
from gateway.catalog import metrics
from gateway.catalog.snapshot import SnapshotStore

log = logging.getLogger("gateway.catalog.sync")

_LOCK = resources.files("gateway.catalog").joinpath("lua/lock.lua").read_text()
_FAIL = resources.files("gateway.catalog").joinpath("lua/fail.lua").read_text()

#: Longest error text kept in the status (it is shown to resellers via /v1/suppliers).
MAX_ERROR_CHARS = 300

ProgressCallback = Callable[[CatalogPage, int], None]
"""Called after each stored page with the page and the products stored so far."""


class SyncAborted(RuntimeError):
    """The sync stopped on purpose (lock lost, publish refused, suspicious catalog)."""


class SupplierLock:
    """The per-supplier sync lock (``lua/lock.lua``): acquire, renew, release by token."""

    def __init__(self, store: SnapshotStore, supplier: str, lock_seconds: float) -> None:
        keys = store.keys
        self._keys = [
            keys.catalog_lock(supplier),
            keys.catalog_fence(supplier),
            keys.catalog_current(supplier),
        ]
        self._script = store.redis.register_script(_LOCK)
        self.lock_ms = max(1000, int(lock_seconds * 1000))

    async def acquire(self) -> int | None:
        """A new fencing token, or ``None`` when another holder has the lock."""
        token = await self._script(keys=self._keys, args=["acquire", self.lock_ms])
        return int(token) if token is not None else None

    async def renew(self, token: int) -> bool:
        return bool(await self._script(keys=self._keys, args=["renew", token, self.lock_ms]))

    async def release(self, token: int) -> bool:
        return bool(await self._script(keys=self._keys, args=["release", token]))


@dataclass(frozen=True, slots=True)
class SyncStatus:
    """A supplier's sync status as stored in Redis (plus whether a sync holds the lock)."""

    supplier: str
    version: int | None = None
    products: int | None = None
    pages: int | None = None
    duration_seconds: float | None = None
    requests: int | None = None
    rate_limited: int | None = None
    last_success_at: float | None = None
    last_attempt_at: float | None = None
    last_error: str | None = None
    last_error_at: float | None = None
    outcome: str | None = None
    stale_flag: bool = False
    syncing: bool = False

    @classmethod
    def from_redis(
        cls, supplier: str, raw: dict[Any, Any], current: Any, locked: Any
    ) -> SyncStatus:
        data = {
            (k.decode() if isinstance(k, bytes) else k): (v.decode() if isinstance(v, bytes) else v)
            for k, v in raw.items()
        }

        def num(name: str, kind: type[int] | type[float] = float) -> Any:
            value = data.get(name)
            try:
                return kind(value) if value not in (None, "") else None
            except ValueError:
                return None

        return cls(
            supplier=supplier,
            version=int(current) if current is not None else None,
            products=num("products", int),
            pages=num("pages", int),
            duration_seconds=num("duration_seconds"),
            requests=num("requests", int),
            rate_limited=num("rate_limited", int),
            last_success_at=num("last_success_at"),
            last_attempt_at=num("last_attempt_at"),
            last_error=data.get("last_error") or None,
            last_error_at=num("last_error_at"),
            outcome=data.get("outcome") or None,
            stale_flag=data.get("stale") == "1",
            syncing=bool(locked),
        )

    def is_stale(self, now: float, interval_seconds: float, lock_seconds: float) -> bool:
        """Stale: the last sync failed, or no sync succeeded for much longer than the
        interval (no instance is syncing at all). Never stale without a snapshot: then
        there is nothing being served."""
        if self.version is None:
            return False
        if self.stale_flag:
            return True
        overdue = 2 * interval_seconds + lock_seconds
        return self.last_success_at is not None and now - self.last_success_at > overdue


@dataclass(slots=True)
class SyncReport:
    """What one sync attempt did, for logs, the CLI summary and tests."""

    supplier: str
    #: ``published`` | ``failed`` | ``busy`` (another holder) | ``not_due``
    outcome: str
    version: int | None = None
    products: int = 0
    pages: int = 0
    duration_seconds: float = 0.0
    requests: int = 0
    rate_limited: int = 0
    retries: int = 0
    duplicates: int = 0
    error: str | None = None
    stats: dict[str, int] = field(default_factory=dict)


class CatalogSync:
    """Syncs one supplier: lock, iterate the adapter, stage, publish, record status."""

    def __init__(
        self,
        adapter: SupplierAdapter,
        store: SnapshotStore,
        *,
        lock_seconds: float,
        interval_seconds: float,
        retry_seconds: float | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.adapter = adapter
        self.supplier = adapter.name
        self.store = store
        self.lock = SupplierLock(store, adapter.name, lock_seconds)
        self.lock_seconds = lock_seconds
        self.interval_seconds = interval_seconds
        #: After a failure, try again this soon rather than a whole interval later.
        self.retry_seconds = (
            retry_seconds if retry_seconds is not None else min(interval_seconds, 60.0)
        )
        self._clock = clock
        self._fail = store.redis.register_script(_FAIL)

    # ------------------------------------------------------------------ status

    async def status(self) -> SyncStatus:
        """The stored status; it also sets this process's last-success gauge.

        The gauge follows the shared status rather than the syncs this process ran: after
        a restart while syncs keep failing, no instance would otherwise report a last
        success at all, and the staleness alert would stay silent. Every instance reads
        the status here (its sync loop at start, before and after each attempt)."""
        keys = self.store.keys
        pipe = self.store.redis.pipeline(transaction=False)
        pipe.hgetall(keys.catalog_status(self.supplier))
        pipe.get(keys.catalog_current(self.supplier))
        pipe.exists(keys.catalog_lock(self.supplier))
        raw, current, locked = await pipe.execute()
        status = SyncStatus.from_redis(self.supplier, raw or {}, current, locked)
        if status.last_success_at is not None:
            metrics.SYNC_LAST_SUCCESS.labels(self.supplier).set(status.last_success_at)
        return status

    def due_in(self, status: SyncStatus) -> float:
        """Seconds until the next sync is due (0: now). Measured from the last attempt by
        any instance, so instances do not re-sync right after one another."""
        if status.last_attempt_at is None:
            return 0.0
        healthy = status.outcome == "ok" and status.version is not None
        wait = self.interval_seconds if healthy else self.retry_seconds
        return max(0.0, status.last_attempt_at + wait - self._clock())

    # --------------------------------------------------------------------- run

    async def run(
        self, *, force: bool = False, progress: ProgressCallback | None = None
    ) -> SyncReport:
        """One sync attempt. ``force``: even if the last one is recent (``gateway sync``).

        Never raises for an upstream or publishing failure: the report says ``failed``
        and the status records it. Cancellation propagates (shutdown) without marking
        the supplier stale."""
        token = await self.lock.acquire()
        if token is None:
            return SyncReport(self.supplier, "busy")
        lost = asyncio.Event()
        keeper = asyncio.create_task(self._keep_lock(token, lost), name=f"lock:{self.supplier}")
        try:
            if not force and self.due_in(await self.status()) > 0:
                return SyncReport(self.supplier, "not_due")
            return await self._sync(token, lost, progress)
        finally:
            keeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await keeper
            with contextlib.suppress(Exception):
                await asyncio.shield(self.lock.release(token))

    async def _keep_lock(self, token: int, lost: asyncio.Event) -> None:
        period = self.lock.lock_ms / 3000
        while True:
            await asyncio.sleep(period)
            try:
                if not await self.lock.renew(token):
                    log.warning("catalog sync of %s lost its lock (token %s)", self.supplier, token)
                    lost.set()
                    return
            except Exception as exc:  # Redis hiccup: the lock's expiry decides
                log.warning("renewing the %s sync lock failed: %r", self.supplier, exc)

    async def _sync(
        self, token: int, lost: asyncio.Event, progress: ProgressCallback | None
    ) -> SyncReport:
        started = self._clock()
        clock_start = time.perf_counter()
        stats_before = dict(self.adapter.stats)
        report = SyncReport(self.supplier, "failed", version=token)
        writer = self.store.writer(self.supplier, token, staging_ttl_seconds=2 * self.lock_seconds)
        seen: set[str] = set()
        try:
            async for page in self.adapter.iter_catalog():
                if lost.is_set():
                    raise SyncAborted("lost the sync lock (another instance took over)")
                fresh: list[Product] = []
                for product in page.products:
                    if product.id in seen or product.supplier != self.supplier:
                        report.duplicates += 1
                        continue
                    seen.add(product.id)
                    fresh.append(product)
                await writer.add(fresh)
                report.pages += 1
                report.products = writer.products
                if progress is not None:
                    progress(page, writer.products)
            meta = await writer.finish(report.pages)
            await self._check_plausible(meta.products)
            self._fill_stats(report, stats_before, clock_start)
            result = await self.store.publish(
                self.supplier,
                token,
                {
                    "version": token,
                    "products": meta.products,
                    "pages": meta.pages,
                    "duration_seconds": round(report.duration_seconds, 3),
                    "requests": report.requests,
                    "rate_limited": report.rate_limited,
                    "retries": report.retries,
                    "last_success_at": self._clock(),
                    "last_attempt_at": self._clock(),
                    "outcome": "ok",
                    "stale": "0",
                },
            )
            if not result.published:
                raise SyncAborted(
                    f"publish refused ({result.reason}; current version {result.previous})"
                )
        except asyncio.CancelledError:
            await self._discard(writer)
            raise
        except Exception as exc:
            await self._discard(writer)
            self._fill_stats(report, stats_before, clock_start)
            report.error = _describe(exc)
            await self._record_failure(token, report, started)
            metrics.SYNC_FAILURES.labels(self.supplier).inc()
            log.warning("catalog sync of %s failed: %s", self.supplier, report.error)
            return report
        report.outcome = "published"
        metrics.SYNC_DURATION.labels(self.supplier).observe(report.duration_seconds)
        log.info(
            "catalog sync of %s published version %s: %s products, %s pages, %.1fs",
            self.supplier,
            token,
            report.products,
            report.pages,
            report.duration_seconds,
        )
        return report

    async def _check_plausible(self, products: int) -> None:
        """An empty catalog where there was one is far likelier an upstream fault (a
        wrong account, a broken filter) than a supplier selling nothing: keep the old."""
        if products > 0:
            return
        current = await self.store.current_version(self.supplier)
        if current is None:
            return
        previous = await self.store.meta(self.supplier, current)
        if previous.products > 0:
            raise SyncAborted(
                f"upstream returned an empty catalog; keeping version {current} "
                f"with {previous.products} products"
            )

    def _fill_stats(self, report: SyncReport, before: dict[str, int], clock_start: float) -> None:
        delta = {k: v - before.get(k, 0) for k, v in self.adapter.stats.items()}
        report.stats = delta
        report.requests = delta.get("requests", 0)
        report.rate_limited = delta.get("rate_limited", 0)
        report.retries = delta.get("retries", 0)
        report.duration_seconds = time.perf_counter() - clock_start

    async def _discard(self, writer: Any) -> None:
        with contextlib.suppress(Exception):
            await asyncio.shield(writer.discard())

    async def _record_failure(self, token: int, report: SyncReport, started: float) -> None:
        keys = self.store.keys
        now = self._clock()
        fields: list[str | int | float] = [
            "last_attempt_at", now,
            "last_error", report.error or "unknown error",
            "last_error_at", now,
            "outcome", "failed",
            "stale", "1",
            "duration_seconds", round(report.duration_seconds, 3),
        ]  # fmt: skip
        try:
            await self._fail(
                keys=[keys.catalog_current(self.supplier), keys.catalog_status(self.supplier)],
                args=[token, *fields],
            )
        except Exception as exc:  # the failure stays in the logs and the report
            log.warning("could not record the %s sync failure: %r", self.supplier, exc)


def _describe(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    if not isinstance(exc, SyncAborted):
        text = f"{type(exc).__name__}: {text}"
    return text[:MAX_ERROR_CHARS]
