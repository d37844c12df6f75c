"""Rebuilding the index beside the event loop: the same results, the interpreter's
settings restored, and a replaced index freed only once nobody reads it any more.

The latency itself (no stall while a 100k-product snapshot is swapped in) is a figure of
``python -m bench rebuild_under_load``, not a timed assertion here."""

from __future__ import annotations

import asyncio
import gc
import random
import sys
import time
import weakref
from typing import Any

import httpx
import pytest
from catalog_support import (
    GG,
    AdapterFactory,
    Sandbox,
    ServiceFactory,
    catalog_settings,
    start_sandbox,
)

from bench import synthetic
from gateway.catalog import pacing
from gateway.catalog.index import CatalogIndex, SearchQuery
from gateway.catalog.matching import BrandTable, Matcher
from gateway.catalog.pacing import drained, paced_build, paced_sorted, sorted_order
from gateway.catalog.service import _free_in_slices
from gateway.catalog.snapshot import SnapshotStore
from gateway.catalog.sync import CatalogSync
from gateway.redis_keys import RedisKeys


def test_paced_sorting_gives_exactly_what_sorted_gives() -> None:
    rng = random.Random(7)
    n = pacing.RUN * 3 + 17  # several runs and a short last one
    pairs = [(rng.randrange(50), i) for i in range(n)]
    keys = [rng.choice("abcde") + str(rng.randrange(9)) for _ in range(n)]

    assert paced_sorted(pairs) == sorted(pairs)
    by_first = paced_sorted(pairs, key=lambda p: p[0])  # ties keep their order (stable)
    assert by_first == sorted(pairs, key=lambda p: p[0])
    assert sorted_order(keys) == sorted(range(n), key=keys.__getitem__)
    assert paced_sorted([]) == [] and sorted_order(["b", "a"]) == [1, 0]


def test_a_paced_build_restores_the_collector_and_the_switch_interval() -> None:
    interval = sys.getswitchinterval()
    assert gc.isenabled()
    with paced_build():
        with paced_build():  # nested (or another build in another thread)
            assert not gc.isenabled()
            assert sys.getswitchinterval() == pacing.SWITCH_INTERVAL
        assert not gc.isenabled()
    assert gc.isenabled() and sys.getswitchinterval() == interval

    gc.disable()  # a process that runs without the collector keeps it off
    try:
        with paced_build():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()


class _Watched(CatalogIndex):
    """An index that can be watched with a weak reference."""

    __slots__ = ("__weakref__",)


async def test_a_replaced_index_is_torn_down_only_after_its_last_reader_lets_go() -> None:
    index = _Watched.build(
        synthetic.products(400), synthetic.price_list(), matcher=Matcher(BrandTable.load())
    )
    book, first = index.offers, next(synthetic.products(1)).id  # a supplier product
    assert len(book) > 0 and index.product(first) is not None
    still_reading = [index]  # a request that started on the old index holds it
    watched = weakref.ref(index)
    task = asyncio.create_task(_free_in_slices(index))
    del index
    for _ in range(20):
        await asyncio.sleep(0)
    alive = watched()
    assert alive is not None and alive.product(first) is not None and not task.done()
    del alive

    still_reading.clear()  # the request finished
    await asyncio.wait_for(task, timeout=10)
    assert watched() is None and len(book) == 0  # torn down, then freed


def test_teardown_empties_an_index_a_slice_at_a_time() -> None:
    index = CatalogIndex.build(
        synthetic.products(400), synthetic.price_list(), matcher=Matcher(BrandTable.load())
    )
    first = next(synthetic.products(1)).id
    assert index.product(first) is not None
    slices = sum(1 for _ in index.teardown(64))
    assert slices >= 400 // 64  # the records alone take that many
    assert index.product(first) is None and len(index.offers) == 0
    assert list(drained([], 10)) == [] and list(drained({1: 2, 3: 4, 5: 6}, 2)) == [None, None]


async def _publish(adapter: Any, redis: Any, key_prefix: str) -> Any:
    sync = CatalogSync(
        adapter, SnapshotStore(redis, RedisKeys(key_prefix)), lock_seconds=30, interval_seconds=3600
    )
    return await sync.run(force=True)


@pytest.mark.parametrize("in_child", [False, True], ids=["built-here", "built-in-a-child"])
async def test_a_swap_serves_the_new_catalog_and_frees_the_old_one(
    sandboxes: dict[str, Sandbox],
    make_adapter: AdapterFactory,
    make_service: ServiceFactory,
    redis: Any,
    key_prefix: str,
    http: httpx.AsyncClient,
    in_child: bool,
) -> None:
    other = start_sandbox(GG, seed=8, catalog_size=45)
    try:
        large, small = make_adapter(GG, sandboxes[GG].url), make_adapter(GG, other.url)
        await _publish(large, redis, key_prefix)
        settings = catalog_settings(build_process_min_products=0 if in_child else 10**9)
        service = make_service({GG: large}, settings)
        assert await service.refresh()
        old = service.index
        assert old is not None
        interval = sys.getswitchinterval()

        report = await _publish(small, redis, key_prefix)
        assert await service.refresh()
        assert service.state is not None and service.state.versions[GG] == report.version
        assert 0 < len(service.index or []) < len(old)  # the small catalog now
        assert gc.isenabled() and sys.getswitchinterval() == interval

        # A reader still on the old index keeps all of it until it lets go.
        retiring = set(service._retiring)
        assert len(retiring) == 1
        for _ in range(10):
            await asyncio.sleep(0)
        first = old.search(SearchQuery()).ids[0]
        assert old.product(first) is not None
        del old
        deadline = time.monotonic() + 10
        while service._retiring:
            assert time.monotonic() < deadline, "the replaced index was never freed"
            await asyncio.sleep(0.02)
    finally:
        other.server.stop()


def test_a_duty_cycle_makes_a_build_rest_in_proportion_to_its_cpu() -> None:
    def work(cpu_seconds: float) -> tuple[float, float]:
        """Spin for ``cpu_seconds`` of this thread's CPU, through checkpoints."""
        wall, cpu = time.perf_counter(), time.thread_time()
        while time.thread_time() - cpu < cpu_seconds:
            sum(range(200))
            pacing.checkpoint()
        return time.perf_counter() - wall, time.thread_time() - cpu

    with pacing.duty_cycle(0.25):
        wall, cpu = work(0.06)
    # Rests are sleeps, never shorter than asked: 3 s of rest per CPU second used, but
    # for the last slice, not rested yet.
    assert wall >= cpu + 3 * (cpu - 2 * pacing.SLICE_SECONDS)

    with pacing.duty_cycle(1):  # no cap: no rest
        with pacing.duty_cycle(0.5):
            pass
        wall, cpu = work(0.02)
    assert wall < cpu + 3 * 0.02

    for share in (0, -0.5, 1.5):
        with pytest.raises(ValueError), pacing.duty_cycle(share):
            pass
