"""HTTP metrics and the ``/metrics`` exposition, correct under several worker processes.

Label values are bounded, so one client cannot blow up the series count: ``route`` is the
matched Starlette route's *path template* (``/v1/products/{id}``), never the raw URL, and
``UNMATCHED`` for anything no route matches; ``method`` is one of the standard methods or
``other``; ``status`` is the numeric code.

Multiprocess mode
-----------------
With ``PROMETHEUS_MULTIPROC_DIR`` set *before the first metric is created*, every process
writes its samples to memory-mapped files in that directory, and ``/metrics`` (whichever
worker answers) merges them: counters and histograms are summed across processes. Gauges
say how to merge with ``multiprocess_mode``, and every gauge in the gateway must pick one
(a test enforces it), because the default (``all``) exports one series per pid:

* ``livesum``    a quantity every live process contributes to (requests in flight);
* ``max``        a state where the worst process counts (circuit open = 2);
* ``mostrecent`` a value any process may report, the latest wins (upstream quota left,
  catalog snapshot version, last successful sync timestamp, products per supplier).

``gateway serve --workers N`` creates (and wipes) the directory itself when the variable
is unset; when ops set it, it must be a directory private to that one server, emptied
before start. A separate ``gateway worker`` process serves its own ``/metrics`` on its own
port (``serve_metrics``) and Prometheus scrapes it as one more target.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
import threading
from bisect import bisect_left
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client import multiprocess as _multiprocess
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.types import Scope

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
UNMATCHED = "<unmatched>"
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class TalliedHistogram(Histogram):
    """A ``Histogram`` that also takes observations already sorted into its buckets.

    ``add`` is what ``observe`` does for one value, for many at once: the per-bucket
    counts and their sum. prometheus-client has no public call for that (``observe`` per
    request is the ~3 µs ``HttpTally`` exists to avoid), so it reaches into the parent's
    private ``_buckets`` and ``_sum`` (the values ``observe`` increments, memory-mapped
    in multiprocess mode). Kept, rather than replaced, because nothing public is as fast;
    guarded instead: pyproject.toml pins prometheus-client below the first version not
    tested, ``tests/test_library_contracts.py`` fails loudly (naming this class) when the
    private attributes change shape, and ``tests/ops/test_http_tally.py`` compares ``add``
    with ``observe`` in both modes."""

    def add(self, bucket_counts: Sequence[int], total: float) -> None:
        self._raise_if_not_observable()  # type: ignore[no-untyped-call]  # private, untyped
        self._sum.inc(total)
        for bucket, count in zip(self._buckets, bucket_counts, strict=True):
            if count:
                bucket.inc(count)


HTTP_REQUESTS = Counter(
    "gateway_http_requests_total",
    "HTTP requests answered, by route template, method and status code.",
    ["route", "method", "status"],
)
HTTP_LATENCY_BUCKETS = (
    # Catalog reads answer in well under a millisecond; Prefer: wait holds up to 30 s.
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30,
)  # fmt: skip
HTTP_LATENCY = TalliedHistogram(
    "gateway_http_request_duration_seconds",
    "Time from request to the end of the response, by route template and method.",
    ["route", "method"],
    buckets=HTTP_LATENCY_BUCKETS,
)
HTTP_IN_FLIGHT = Gauge(
    "gateway_http_requests_in_flight",
    "Requests being served right now (all live worker processes together).",
    multiprocess_mode="livesum",
)


class _RouteTally:
    __slots__ = ("buckets", "seconds")

    def __init__(self) -> None:
        self.seconds = 0.0
        self.buckets = [0] * (len(HTTP_LATENCY_BUCKETS) + 1)  # the last one is +Inf


class HttpTally:
    """The HTTP metrics of this process, counted in plain integers and handed to
    prometheus-client once per event-loop turn.

    Updating a labelled counter, a histogram and the in-flight gauge per request costs
    about 3 µs (a lock per value, mmap writes in multiprocess mode), a tenth of the
    whole gateway path of a cached search; counting here costs about 0.3 µs, and the
    flush that follows at the next turn of the loop pays prometheus-client once per route
    and status for every request served in that turn. The exported series are the same
    ones, and they are never more than one loop turn behind: ``/metrics`` flushes before
    it exposes, and another worker's scrape sees this one's counts as soon as its loop
    has turned once after the request. One tally per process, as the metrics are.
    """

    def __init__(self) -> None:
        self._pending: dict[tuple[str, str, int], _RouteTally] = {}
        self._children: dict[tuple[str, str, int], tuple[Any, TalliedHistogram]] = {}
        self._in_flight = 0
        self._published_in_flight = 0
        # The loop a flush is scheduled on (``None``: none is). Compared with the running
        # loop, not just a flag, so that a loop closed with a flush still queued (tests
        # run one loop per test) cannot stop every later flush.
        self._flush_loop: asyncio.AbstractEventLoop | None = None

    def started(self, loop: asyncio.AbstractEventLoop | None) -> None:
        """One more request in flight (``loop``: the running loop, or ``None`` when there
        is none; the caller looks it up once for all it does per request, because
        asyncio's look-up asks the kernel for the process id every time)."""
        self._in_flight += 1
        if self._flush_loop is not loop:  # else a flush is due this turn
            self._schedule(loop)

    def finished(
        self,
        route: str,
        method: str,
        status: int,
        seconds: float,
        loop: asyncio.AbstractEventLoop | None,
    ) -> None:
        """A request left flight: count it under its labels and time it."""
        self._in_flight -= 1
        key = (route, method, status)
        tally = self._pending.get(key)
        if tally is None:
            tally = self._pending[key] = _RouteTally()
        tally.seconds += seconds
        tally.buckets[bisect_left(HTTP_LATENCY_BUCKETS, seconds)] += 1
        if self._flush_loop is not loop:
            self._schedule(loop)

    def _schedule(self, loop: asyncio.AbstractEventLoop | None) -> None:
        if loop is None:  # no loop (a synchronous caller): publish at once
            self.flush()
            return
        self._flush_loop = loop
        loop.call_soon(self.flush)

    def flush(self) -> None:
        """Hand everything counted so far to prometheus-client."""
        self._flush_loop = None
        pending, self._pending = self._pending, {}
        for key, tally in pending.items():
            children = self._children.get(key)
            if children is None:
                route, method, status = key
                children = self._children[key] = (
                    HTTP_REQUESTS.labels(route, method, str(status)),
                    HTTP_LATENCY.labels(route, method),
                )
            children[0].inc(sum(tally.buckets))
            children[1].add(tally.buckets, tally.seconds)
        change = self._in_flight - self._published_in_flight
        if change:
            HTTP_IN_FLIGHT.inc(change)
            self._published_in_flight = self._in_flight


HTTP_TALLY = HttpTally()


def multiprocess_dir() -> str | None:
    return os.environ.get(MULTIPROC_ENV) or None


def exposition(*, flush: bool = True) -> tuple[bytes, str]:
    """The text exposition of this process, or of every process when in multiprocess mode.

    ``flush``: first hand over the HTTP counts of the current loop turn (``HttpTally``).
    Only from the thread that serves requests: the tally is not shared across threads."""
    if flush:
        HTTP_TALLY.flush()
    path = multiprocess_dir()
    if path:
        registry = CollectorRegistry()
        _multiprocess.MultiProcessCollector(registry, path=path)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST


async def metrics_endpoint(request: Request) -> Response:
    """``GET /metrics`` for Prometheus. Merging the mmap files of many workers takes a few
    milliseconds; it runs in a thread so the event loop keeps serving meanwhile."""
    from starlette.concurrency import run_in_threadpool

    HTTP_TALLY.flush()  # on the loop's thread, before another one reads
    body, content_type = await run_in_threadpool(exposition, flush=False)
    return Response(body, media_type=content_type)


routes = [Route("/metrics", metrics_endpoint, methods=["GET"], include_in_schema=False)]


def prepare_multiprocess(workers: int) -> str | None:
    """Before spawning ``workers`` processes: make sure their metrics are merged.

    With more than one worker and no ``PROMETHEUS_MULTIPROC_DIR``, a fresh temporary
    directory is created and exported (children inherit it); a configured directory is
    emptied, since files left by a previous run would add old counts to new ones.
    Returns the directory the caller must remove afterwards, if it created one."""
    path = multiprocess_dir()
    if path:
        Path(path).mkdir(parents=True, exist_ok=True)
        for stale in Path(path).glob("*.db"):
            stale.unlink(missing_ok=True)
        return None
    if workers <= 1:
        return None
    created = tempfile.mkdtemp(prefix="gateway-metrics-")
    os.environ[MULTIPROC_ENV] = created
    return created


def remove_multiprocess_dir(path: str | None) -> None:
    if path:
        shutil.rmtree(path, ignore_errors=True)


def process_exited(pid: int | None = None) -> None:
    """Drop a finished process's ``live*`` gauges (its in-flight count) from the merge."""
    if multiprocess_dir():
        _multiprocess.mark_process_dead(pid or os.getpid())


def serve_metrics(port: int, host: str = "0.0.0.0") -> threading.Thread:
    """Expose ``/metrics`` from a process that serves no HTTP app (``gateway worker``)."""
    from prometheus_client import start_http_server

    registry: CollectorRegistry = REGISTRY
    if multiprocess_dir():
        registry = CollectorRegistry()
        _multiprocess.MultiProcessCollector(registry)
    _server, thread = start_http_server(port, addr=host, registry=registry)
    return thread


# --------------------------------------------------------------- route labels


class RouteTemplates:
    """Maps a request to the full path template of the route that serves it.

    Starlette records the matched route in ``scope["route"]``; a route inside a ``Mount``
    only knows its own part of the path, so the full templates are computed once from the
    routing tree. Requests answered before routing (authentication, rate limiting) have no
    ``scope["route"]``: they are matched here against the same tree, which gives them the
    same label as the requests that get through.
    """

    def __init__(self) -> None:
        # id(route) -> (route, template): the route is kept to check identity, so an id
        # reused by another object after a route is gone cannot borrow its template.
        self._by_route: dict[int, tuple[BaseRoute, str]] = {}

    def label(self, scope: Scope) -> str:
        route = scope.get("route")
        if route is not None:
            known = self._by_route.get(id(route))
            if known is None or known[0] is not route:  # not seen yet: a new app, new routes
                self._by_route = dict(_templates(_app_routes(scope) or [], ""))
                known = self._by_route.get(id(route))
            if known is not None and known[0] is route:
                return known[1]
        return _match(_app_routes(scope) or [], scope, "") or UNMATCHED

    def routed(self, scope: Scope) -> str | None:
        """The template once the router has matched this request, else ``None`` (cheap:
        for log lines written while the request is served)."""
        return self.label(scope) if scope.get("route") is not None else None


def _app_routes(scope: Scope) -> list[BaseRoute] | None:
    app = scope.get("app")
    router = getattr(app, "router", None)
    routes = getattr(router, "routes", None)
    return routes if isinstance(routes, list) else None


def _templates(
    routes: Iterable[BaseRoute], prefix: str
) -> Iterable[tuple[int, tuple[BaseRoute, str]]]:
    for route in routes:
        if isinstance(route, Mount):
            yield id(route), (route, prefix + route.path + "/{path:path}")
            if route.routes:
                yield from _templates(route.routes, prefix + route.path)
        else:
            path = getattr(route, "path", None)
            if isinstance(path, str):
                yield id(route), (route, prefix + path)


def _match(routes: Iterable[BaseRoute], scope: Scope, prefix: str) -> str | None:
    """The template of the route that would serve ``scope`` (a method mismatch counts:
    a 405 on ``/v1/orders`` is still about ``/v1/orders``)."""
    from starlette.routing import Match

    partial: str | None = None
    for route in routes:
        try:
            match, child = route.matches(scope)
        except Exception:  # a malformed path must not break the metrics
            continue
        if match is Match.NONE:
            continue
        if isinstance(route, Mount):
            inner = route.routes
            if inner:
                found = _match(inner, {**scope, **child}, prefix + route.path)
                if found is not None:
                    return found
                continue
            template = prefix + route.path + "/{path:path}"
        else:
            template = prefix + str(getattr(route, "path", ""))
        if match is Match.FULL:
            return template
        partial = partial or template
    return partial
