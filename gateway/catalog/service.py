"""One instance's catalog: the served index, the snapshot watcher and the periodic sync.

Requests never touch Redis for catalog reads: they read ``service.state``, an immutable
``CatalogState`` holding one ``CatalogIndex`` over every supplier's current snapshot.
A new state is built off to the side (in a thread, paced so that the event loop keeps
answering within milliseconds: ``gateway.catalog.pacing``) and swapped in with one
attribute assignment; a request that started on the old state finishes on it, and the
old index is freed in slices once the last such request is done. Which versions are
current is learnt by polling the suppliers' version pointers (one pipelined round trip,
every ``snapshot_poll_seconds``), and at once when a sync in this instance publishes.

Every instance also runs one sync loop per supplier; the lock in ``CatalogSync`` lets only
one instance sync a supplier at a time, and the shared status spaces the syncs by
``sync_interval_seconds`` whoever ran the last one.

Readiness: ready once every configured supplier is either loaded or known to have failed
its sync with nothing to serve (one supplier's outage must not keep the others out).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import random
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from adapters.base import SupplierAdapter
from adapters.models import Product, Variant
from gateway.catalog import metrics
from gateway.catalog.build_process import BuildJob, ProcessBuilder, build
from gateway.catalog.detail import DetailCache
from gateway.catalog.index import CatalogIndex
from gateway.catalog.matching import Matcher
from gateway.catalog.pacing import paced_build, trim_heap
from gateway.catalog.pages import PageCache
from gateway.catalog.snapshot import LoadedSnapshot, SnapshotMissing, SnapshotStore
from gateway.catalog.sync import CatalogSync, SyncReport, SyncStatus
from gateway.catalog.taxonomy import Taxonomy
from gateway.observability.shutdown import cancel_and_wait
from gateway.pricing import MarkupRule, PriceList
from gateway.redis_keys import RedisKeys
from gateway.settings import CatalogSettings

#: Records freed per turn of the event loop when a replaced index is released (a few
#: milliseconds of deallocation), and how long to wait for the requests still reading
#: the old index before leaving the rest to reference counting.
RETIRE_SLICE = 4096
RETIRE_WAIT_SECONDS = 60.0

#: How long ``stop`` waits for a cancelled sync to clean up (release its lock, discard
#: its staged version) before abandoning it.
STOP_SECONDS = 5.0

log = logging.getLogger("gateway.catalog.service")


def price_list(settings: CatalogSettings) -> PriceList:
    """The configured markup rules (global, then per supplier/category overrides)."""
    try:
        percent = Decimal(settings.markup_percent)
    except InvalidOperation as exc:
        raise ValueError(
            f"catalog.markup_percent {settings.markup_percent!r} is not a number"
        ) from exc
    global_rule = MarkupRule(percent=percent, fixed_minor=settings.markup_fixed_minor)
    rules = [MarkupRule.model_validate(rule) for rule in settings.markup_rules]
    return PriceList(global_rule, rules)


def grace_seconds(settings: CatalogSettings) -> float:
    """How long a replaced version stays readable: long enough for any instance that
    saw the old pointer to finish reading it."""
    return max(60.0, 10 * settings.snapshot_poll_seconds)


@dataclass(frozen=True, slots=True)
class CatalogState:
    """What one instance serves; replaced whole (its caches go with it)."""

    index: CatalogIndex
    versions: Mapping[str, int]
    snapshots: Mapping[str, LoadedSnapshot]
    built_at: float
    pages: PageCache

    @classmethod
    def of(
        cls,
        index: CatalogIndex,
        versions: Mapping[str, int] | None = None,
        snapshots: Mapping[str, LoadedSnapshot] | None = None,
        *,
        show_suppliers: bool = True,
    ) -> CatalogState:
        return cls(
            index,
            dict(versions or {}),
            dict(snapshots or {}),
            time.time(),
            PageCache(index, show_suppliers=show_suppliers),
        )


@dataclass
class _Readiness:
    #: Suppliers without a snapshot whose sync is known to have failed.
    settled: set[str] = field(default_factory=set)


class CatalogService:
    def __init__(
        self,
        *,
        redis: Any,
        keys: RedisKeys,
        adapters: Mapping[str, SupplierAdapter],
        settings: CatalogSettings,
        prices: PriceList | None = None,
        taxonomy: Taxonomy | None = None,
        matcher: Matcher | None = None,
        sync_enabled: bool = True,
        watch_enabled: bool = True,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.redis = redis
        self.keys = keys
        self.adapters = adapters
        self.settings = settings
        self.prices = prices if prices is not None else price_list(settings)
        self.taxonomy = (
            taxonomy if taxonomy is not None else Taxonomy.from_file(settings.taxonomy_file)
        )
        # Loaded here so that a bad brands or overrides file stops the start-up, like a
        # bad taxonomy file; `gateway catalog matches` reviews what it merges.
        self.matcher = (
            matcher
            if matcher is not None
            else Matcher.from_files(settings.brands_file, settings.match_overrides_file)
        )
        self.sync_enabled = sync_enabled
        self.watch_enabled = watch_enabled
        self.store = SnapshotStore(redis, keys, grace_seconds=grace_seconds(settings))
        self.syncs = {
            name: CatalogSync(
                adapter,
                self.store,
                lock_seconds=settings.sync_lock_seconds,
                interval_seconds=settings.sync_interval_seconds,
                clock=clock,
            )
            for name, adapter in adapters.items()
        }
        self.details = DetailCache(
            redis,
            keys,
            adapters,
            ttl_seconds=settings.detail_ttl_seconds,
            memory_ttl_seconds=settings.detail_memory_ttl_seconds,
            memory_size=settings.detail_memory_size,
            clock=clock,
        )
        self.state: CatalogState | None = None
        self._readiness = _Readiness()
        self._refresh_lock = asyncio.Lock()
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._retiring: set[asyncio.Task[None]] = set()
        self._statuses: dict[str, SyncStatus] = {}
        self._unreadable: dict[str, int] = {}
        self._builder = ProcessBuilder()
        self._clock = clock

    # --------------------------------------------------------------- reading

    @property
    def index(self) -> CatalogIndex | None:
        state = self.state
        return state.index if state is not None else None

    def find(self, product_id: str) -> Product | None:
        """A supplier product by its id, listed or absorbed into a canonical product
        (None for a canonical id: those are not supplier products)."""
        index = self.index
        return index.product(product_id) if index is not None else None

    def offer_rule(self, product: Product, reseller_rule: MarkupRule | None) -> MarkupRule:
        """The rule one offer is priced by for a reseller: its own rule, else the price
        list's for the offer's supplier and unified category - what an order for it is
        charged by (``gateway.orders.ports.PricedCatalog.unit_price``)."""
        category = self.taxonomy(product.supplier, product.category)
        return self.prices.rule_for(product.supplier, category, reseller_rule)

    def offers(self, variant_id: str) -> list[tuple[Product, Variant]] | None:
        """The live supplier offers behind a canonical variant id, as (product, variant)
        in a fixed order (supplier, then variant id); None when ``variant_id`` is not a
        canonical variant of the served catalog."""
        index = self.index
        if index is None:
            return None
        return index.offers.live_offers(variant_id, index.product)

    @property
    def ready(self) -> bool:
        state = self.state
        if state is None:
            return False
        return all(
            name in state.versions or name in self._readiness.settled for name in self.adapters
        )

    def readiness(self) -> dict[str, Any]:
        """The catalog part of ``/readyz``."""
        state = self.state
        suppliers: dict[str, Any] = {}
        for name in self.adapters:
            version = state.versions.get(name) if state is not None else None
            if version is not None:
                suppliers[name] = {"catalog": "loaded", "version": version}
            elif name in self._readiness.settled:
                suppliers[name] = {"catalog": "failed"}
            else:
                suppliers[name] = {"catalog": "loading"}
        return {
            "catalog": "ready" if self.ready else "loading",
            "products": state.index.supplier_products() if state is not None else 0,
            "suppliers": suppliers,
        }

    # ------------------------------------------------------------- lifecycle

    async def start(self) -> None:
        """Load what Redis holds (so a new instance serves at once), then start the
        watcher and the sync loops. Idempotent."""
        if self._tasks:
            return
        try:
            await self.refresh()
        except Exception as exc:  # Redis trouble at start: the watcher keeps trying
            log.warning("initial catalog load failed: %r", exc)
        if self.watch_enabled:
            self._tasks.append(asyncio.create_task(self._watch(), name="catalog:watch"))
        if self.sync_enabled:
            for name in self.syncs:
                self._tasks.append(
                    asyncio.create_task(self._sync_loop(name), name=f"catalog:sync:{name}")
                )

    async def stop(self) -> None:
        """Cancel the background work and wait for it (a running sync releases its lock
        and discards its staged version). Idempotent."""
        self._builder.cancel()  # a build in a child process ends with it
        tasks, self._tasks = [*self._tasks, *self._retiring], []
        await cancel_and_wait(tasks, within=STOP_SECONDS, what="catalog background work")

    # ------------------------------------------------------------ refreshing

    async def refresh(self) -> bool:
        """Load every supplier whose published version differs from the one served and
        swap in a rebuilt index. Returns whether the served state changed."""
        async with self._refresh_lock:
            names = list(self.adapters)
            current = await self.store.current_versions(names)
            await self._note_failures([n for n, v in current.items() if v is None])
            state = self.state
            served = dict(state.versions) if state is not None else {}
            changed = {
                n: v
                for n, v in current.items()
                if v is not None and served.get(n) != v and self._unreadable.get(n) != v
            }
            if not changed and (state is not None or names):
                return False
            snapshots = dict(state.snapshots) if state is not None else {}
            for name in changed:
                try:
                    loaded = await self.store.load_current(name)
                except SnapshotMissing as exc:
                    log.warning("catalog snapshot of %s unreadable now: %s", name, exc)
                    continue
                if loaded is not None:
                    snapshots[name] = loaded
            if not snapshots and names:
                return False
            if state is not None and all(
                snapshots.get(n) is state.snapshots.get(n) for n in snapshots
            ):
                return False
            started = time.perf_counter()
            with paced_build():
                built = await self._build_and_swap(state, snapshots, started)
            if built and state is not None:
                self._retire(state.index)
            return built

    async def _build_and_swap(
        self,
        state: CatalogState | None,
        snapshots: dict[str, LoadedSnapshot],
        started: float,
    ) -> bool:
        """Build the index over ``snapshots`` in a thread and swap it in (the caller
        paces the build: ``gateway.catalog.pacing``)."""
        index, unreadable = await asyncio.to_thread(self._build, snapshots)
        if unreadable:
            # A version this instance cannot decode (corrupt, or written by a newer
            # gateway with a model this one refuses): keep serving the previous
            # one, do not retry that version on every poll, and build again.
            for name in unreadable:
                self._unreadable[name] = snapshots[name].meta.version
                previous = state.snapshots.get(name) if state is not None else None
                if previous is not None:
                    snapshots[name] = previous
                else:
                    del snapshots[name]
            if not snapshots:
                return False
            index, _ = await asyncio.to_thread(self._build, snapshots)
        build_seconds = time.perf_counter() - started
        metrics.INDEX_BUILD.observe(build_seconds)
        self.state = CatalogState.of(
            index,
            {n: s.meta.version for n, s in snapshots.items()},
            snapshots,
            show_suppliers=self.settings.show_offer_suppliers,
        )
        # The index is millions of long-lived tuples: left to the cyclic collector,
        # every full collection walks them all (tens of ms of pause, the p99 of every
        # request). Freezing moves what is alive now out of its reach; reference
        # counting still frees the old index once it is swapped out.
        gc.freeze()
        for name, snap in snapshots.items():
            metrics.PRODUCTS.labels(name).set(snap.meta.products)
            metrics.SNAPSHOT_VERSION.labels(name).set(snap.meta.version)
        log.info(
            "catalog index rebuilt: %s products in %s listing rows, versions %s, in %.2f s",
            index.supplier_products(),
            len(index),
            dict(self.state.versions),
            build_seconds,
            extra={"build_seconds": round(build_seconds, 3)},
        )
        return True

    def _retire(self, index: CatalogIndex) -> None:
        """Free the index just swapped out in slices, in the background."""
        task = asyncio.create_task(_free_in_slices(index), name="catalog:retire")
        self._retiring.add(task)
        task.add_done_callback(self._retiring.discard)

    def _build(self, snapshots: Mapping[str, LoadedSnapshot]) -> tuple[CatalogIndex, list[str]]:
        """The index (with its offer book) over ``snapshots`` (run in a thread), and the
        suppliers whose snapshot could not be decoded (their products are then
        incomplete in it). Large catalogs are built in a child process
        (``gateway.catalog.build_process``), small ones here."""
        # The first build is not capped: until it ends, this instance serves no catalog
        # (it is not ready), so a cap would only delay its start (~3x at 100k).
        share = self.settings.build_cpu_share if self.state is not None else 1.0
        job = BuildJob(snapshots, self.prices, self.taxonomy, self.matcher, share)
        if job.products >= self.settings.build_process_min_products:
            built = self._builder.build(job)
            log.info(
                "catalog index built in a child process (peak RSS %s MB)",
                "?" if built.peak_mb is None else f"{built.peak_mb:.0f}",
                extra={"build_process_peak_mb": built.peak_mb},
            )
        else:
            built = build(job)
        for name, why in built.unreadable.items():
            log.error(
                "catalog snapshot %s of %s cannot be decoded: %s",
                snapshots[name].meta.version,
                name,
                why,
            )
        return built.index, list(built.unreadable)

    async def _note_failures(self, unpublished: list[str]) -> None:
        """Suppliers with nothing published: settled (for readiness) once a sync of theirs
        has failed, so their outage does not keep this instance unready."""
        for name in unpublished:
            if name in self._readiness.settled:
                continue
            status = await self.syncs[name].status()
            if status.outcome == "failed":
                self._readiness.settled.add(name)

    async def _watch(self) -> None:
        poll = self.settings.snapshot_poll_seconds
        while True:
            try:
                await self.refresh()
            except Exception as exc:
                log.warning("catalog refresh failed: %r", exc)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), poll)
            self._wake.clear()

    # --------------------------------------------------------------- syncing

    async def sync(self, supplier: str, *, force: bool = False, progress: Any = None) -> SyncReport:
        """Run one sync of ``supplier`` in this instance; wake the watcher on success."""
        report = await self.syncs[supplier].run(force=force, progress=progress)
        if report.outcome == "published":
            self._wake.set()
        return report

    async def _sync_loop(self, name: str) -> None:
        sync = self.syncs[name]
        while True:
            try:
                wait = sync.due_in(await sync.status())
                if wait <= 0:
                    report = await self.sync(name)
                    wait = (
                        min(sync.retry_seconds, 30.0)
                        if report.outcome == "busy"
                        else sync.due_in(await sync.status())
                    )
            except Exception as exc:  # Redis down, say: try again later
                log.warning("catalog sync loop of %s: %r", name, exc)
                wait = sync.retry_seconds
            # Jitter spreads instances that woke together; the lock settles the rest.
            await asyncio.sleep(max(wait, 0.05) + random.uniform(0, min(2.0, 0.05 * wait + 0.1)))

    # ---------------------------------------------------------------- status

    async def statuses(self) -> dict[str, SyncStatus]:
        """Each configured supplier's sync status from Redis; the last known one per
        supplier when Redis does not answer."""
        for name, sync in self.syncs.items():
            try:
                self._statuses[name] = await sync.status()
            except Exception as exc:
                log.warning("reading the %s sync status failed: %r", name, exc)
                self._statuses.setdefault(name, SyncStatus(name))
        return dict(self._statuses)


async def _free_in_slices(index: CatalogIndex) -> None:
    """Tear ``index`` down a slice per loop turn once nobody else reads it, then give
    the freed memory back to the system.

    ``index`` is a replaced index: requests that started on it may still hold it (or
    its ``CatalogState``), so this waits until the only references left are its own
    (``sys.getrefcount``: this frame's and the call's). Dropped at once instead, it
    would free millions of objects in one C-level cascade, holding the GIL for ~50 ms
    at 100k products while every request waits (``CatalogIndex.teardown``)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + RETIRE_WAIT_SECONDS
    while sys.getrefcount(index) > 2:
        if loop.time() > deadline:
            return  # still referenced: reference counting frees it with its holder
        await asyncio.sleep(0.05)
    for _ in index.teardown(RETIRE_SLICE):
        await asyncio.sleep(0)
    del index
    await asyncio.to_thread(trim_heap)
