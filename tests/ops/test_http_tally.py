"""The HTTP metrics are counted in process and handed to prometheus-client per loop turn:
what a scrape shows must be exactly what observing each request would have shown."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

from prometheus_client import CollectorRegistry, Histogram

from gateway.observability import metrics
from gateway.observability.metrics import HTTP_LATENCY_BUCKETS, HttpTally, exposition
from tests.ops.support import samples, value

# Durations on, between and beyond the bucket bounds (30 s is the last finite one).
DURATIONS = [0.0, 0.0004, 0.0005, 0.00051, 0.003, 0.01, 0.7, 2.5, 29.9, 30.0, 31.0, 120.0]


def _reference(durations: list[float]) -> dict[str, float]:
    """The bucket counts, count and sum a plain ``Histogram.observe`` gives."""
    registry = CollectorRegistry()
    histogram = Histogram(
        "ref_seconds", "reference", buckets=HTTP_LATENCY_BUCKETS, registry=registry
    )
    for duration in durations:
        histogram.observe(duration)
    return {
        f"{sample.name}{sample.labels.get('le', '')}": sample.value
        for family in registry.collect()
        for sample in family.samples
        if not sample.name.endswith("_created")
    }


def _exposed(text: str, route: str) -> dict[str, float]:
    name = "gateway_http_request_duration_seconds"
    out = {f"ref_seconds_bucket{le['le']}": v for le, v in samples(text, name + "_bucket")
           if le["route"] == route}  # fmt: skip
    out["ref_seconds_count"] = value(text, name + "_count", route=route)
    out["ref_seconds_sum"] = value(text, name + "_sum", route=route)
    return out


async def test_a_flushed_tally_exposes_what_observing_each_request_would() -> None:
    tally = HttpTally()
    route = "/test/tally/same-as-observe"
    for duration in DURATIONS:
        tally.started(asyncio.get_running_loop())
        tally.finished(route, "GET", 200, duration, asyncio.get_running_loop())
    assert (
        value(exposition(flush=False)[0].decode(), "gateway_http_requests_total", route=route) == 0
    )
    await asyncio.sleep(0)  # one loop turn

    text = exposition(flush=False)[0].decode()
    assert value(text, "gateway_http_requests_total", route=route, status="200") == len(DURATIONS)
    exposed, expected = _exposed(text, route), _reference(DURATIONS)
    assert exposed.pop("ref_seconds_sum") == expected.pop("ref_seconds_sum")
    assert exposed == expected


async def test_in_flight_is_published_while_requests_are_served() -> None:
    tally = HttpTally()
    before = value(exposition()[0].decode(), "gateway_http_requests_in_flight")
    tally.started(asyncio.get_running_loop())
    tally.started(asyncio.get_running_loop())
    await asyncio.sleep(0)
    assert (
        value(exposition(flush=False)[0].decode(), "gateway_http_requests_in_flight") == before + 2
    )
    tally.finished("/test/tally/in-flight", "GET", 200, 0.001, asyncio.get_running_loop())
    tally.finished("/test/tally/in-flight", "GET", 200, 0.001, asyncio.get_running_loop())
    await asyncio.sleep(0)
    assert value(exposition(flush=False)[0].decode(), "gateway_http_requests_in_flight") == before


def test_a_loop_closed_with_a_flush_queued_does_not_stop_later_flushes() -> None:
    """Tests run one event loop each; a loop that stops before its queued flush runs
    must not leave the tally thinking a flush is on its way."""
    tally = HttpTally()
    route = "/test/tally/closed-loop"
    loop = asyncio.new_event_loop()
    loop.call_soon(tally.finished, route, "GET", 200, 0.001, loop)
    loop.call_soon(loop.stop)  # stops after this turn: the flush stays queued
    loop.run_forever()
    loop.close()
    assert (
        value(exposition(flush=False)[0].decode(), "gateway_http_requests_total", route=route) == 0
    )

    async def one_more() -> None:
        tally.finished(route, "GET", 200, 0.001, asyncio.get_running_loop())
        await asyncio.sleep(0)

    asyncio.run(one_more())
    assert (
        value(exposition(flush=False)[0].decode(), "gateway_http_requests_total", route=route) == 2
    )


MULTIPROCESS_WRITER = r"""
import sys
from bisect import bisect_left
from prometheus_client import Histogram
from gateway.observability.metrics import HTTP_LATENCY_BUCKETS, TalliedHistogram

durations = [float(d) for d in sys.argv[1:]]
tallied = TalliedHistogram("tallied_seconds", "t", buckets=HTTP_LATENCY_BUCKETS)
observed = Histogram("observed_seconds", "o", buckets=HTTP_LATENCY_BUCKETS)
counts = [0] * (len(HTTP_LATENCY_BUCKETS) + 1)
for d in durations:
    counts[bisect_left(HTTP_LATENCY_BUCKETS, d)] += 1
    observed.observe(d)
tallied.add(counts, sum(durations))
"""


def test_tallied_histogram_matches_observe_in_multiprocess_mode(tmp_path: Path) -> None:
    """In multiprocess mode the values are memory-mapped files: ``add`` must write the
    same ones ``observe`` does, or the merged scrape would be wrong."""
    env = {**os.environ, metrics.MULTIPROC_ENV: str(tmp_path)}
    subprocess.run(
        [sys.executable, "-c", MULTIPROCESS_WRITER, *map(str, DURATIONS)], env=env, check=True
    )
    from prometheus_client import multiprocess

    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, path=str(tmp_path))
    merged = {
        (sample.name.split("_seconds")[1], sample.labels.get("le")): sample.value
        for family in registry.collect()
        for sample in family.samples
        if sample.name.startswith("tallied")
    }
    reference = {
        (sample.name.split("_seconds")[1], sample.labels.get("le")): sample.value
        for family in registry.collect()
        for sample in family.samples
        if sample.name.startswith("observed")
    }
    assert merged and merged == reference
