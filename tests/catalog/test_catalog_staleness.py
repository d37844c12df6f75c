"""The last-success gauge after a restart: the CatalogStale alert reads it, so every
instance must report the stored time, not only the one whose sync succeeded."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from catalog_support import GG, Sandbox, ServiceFactory

from adapters.base import SupplierAdapter
from gateway.catalog import metrics
from gateway.catalog.snapshot import SnapshotStore
from gateway.catalog.sync import CatalogSync
from gateway.observability.metrics import exposition
from gateway.redis_keys import RedisKeys
from tests.ops.support import samples

LAST_SUCCESS = "gateway_catalog_sync_last_success_timestamp_seconds"
FAILURES = "gateway_catalog_sync_failures_total"
#: A success long before the test, so no sync run now could be mistaken for it.
SUCCEEDED_AT = 1_700_000_000.0


def exposed(name: str, supplier: str) -> list[float]:
    """What a scrape of this process shows for ``name`` of ``supplier``."""
    text = exposition()[0].decode()
    return [v for labels, v in samples(text, name) if labels["supplier"] == supplier]


async def test_a_restarted_instance_reports_the_stored_last_success_while_syncs_fail(
    sandboxes: dict[str, Sandbox],
    adapters: dict[str, SupplierAdapter],
    make_service: ServiceFactory,
    redis: Any,
    key_prefix: str,
) -> None:
    before = CatalogSync(
        adapters[GG],
        SnapshotStore(redis, RedisKeys(key_prefix)),
        lock_seconds=30,
        interval_seconds=3600,
        clock=lambda: SUCCEEDED_AT,
    )
    assert (await before.run(force=True)).outcome == "published"

    # The restart: this process has reported nothing yet, and the supplier is down.
    metrics.SYNC_LAST_SUCCESS.clear()
    assert exposed(LAST_SUCCESS, GG) == []
    sandboxes[GG].faults(error_rate=1.0)
    failed_before = exposed(FAILURES, GG)

    service = make_service({GG: adapters[GG]}, sync_enabled=True)
    await service.start()
    deadline = time.monotonic() + 10
    while exposed(FAILURES, GG) == failed_before:
        assert time.monotonic() < deadline, "the restarted instance never tried to sync"
        await asyncio.sleep(0.02)

    assert exposed(LAST_SUCCESS, GG) == [SUCCEEDED_AT]
    assert service.state is not None and GG in service.state.versions  # the old snapshot
    assert (await service.statuses())[GG].outcome == "failed"
