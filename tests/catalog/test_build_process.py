"""Building an index in a child process: the index handed over answers exactly as one
built in place, the stream stays in small slices, and a child that fails, is cancelled
or loses its parent ends without leaving anything behind.

What it buys (no stall and less memory while a 100k-product catalog is swapped in) is a
figure of ``python -m bench rebuild_under_load``, not a timed assertion here."""

from __future__ import annotations

import io
import pickle
import subprocess
import sys
import threading
import time
from array import array
from typing import Any

import pytest

from bench import synthetic
from gateway.catalog import build_process
from gateway.catalog.build_process import BuildFailed, BuildJob, ProcessBuilder
from gateway.catalog.index import CatalogIndex, SearchQuery
from gateway.catalog.matching import BrandTable, Matcher
from gateway.catalog.snapshot import CHUNK_SIZE, LoadedSnapshot, SnapshotMeta, encode_chunk
from gateway.catalog.staging import same_category

QUERIES = [
    SearchQuery(),
    SearchQuery(text="steam"),
    SearchQuery(text="netflx"),  # a typo: the deletion hashes must survive the move
    SearchQuery(text="gift car", sort="price_asc"),
    SearchQuery(text="xbox", facets=True),
]


def job(n: int, cpu_share: float = 1.0, **snapshots: LoadedSnapshot) -> BuildJob:
    products = list(synthetic.products(n))
    chunks = tuple(encode_chunk(products[i : i + CHUNK_SIZE]) for i in range(0, n, CHUNK_SIZE))
    snapshot = LoadedSnapshot(SnapshotMeta("gg", 1, n, len(chunks), 1, 0.0), chunks)
    return BuildJob(
        {"gg": snapshot, **snapshots},
        synthetic.price_list(),
        same_category,
        Matcher(BrandTable.load()),
        cpu_share,
    )


def some_ids(request: BuildJob) -> list[str]:
    """Supplier product ids of ``request``'s catalog (listed or absorbed)."""
    return [p.id for p in request.snapshots["gg"].products()][::20]


def assert_same_answers(moved: CatalogIndex, built: CatalogIndex, ids: list[str]) -> None:
    assert len(moved) == len(built) and moved.supplier_products() == built.supplier_products()
    for query in QUERIES:
        a, b = moved.search(query), built.search(query)
        assert (a.ids, a.total, a.facets) == (b.ids, b.total, b.facets), query
    assert moved.summaries(ids, None) == built.summaries(ids, None)
    assert all(built.product(pid) is not None for pid in ids)
    for pid in ids:
        assert moved.product(pid) == built.product(pid)
    assert moved.offers.variant_ids() == built.offers.variant_ids()
    for variant in built.offers.variant_ids()[:50]:
        assert moved.offers.offers(variant) == built.offers.offers(variant)
        assert moved.offers.key(variant) == built.offers.key(variant)


def test_an_index_sent_in_slices_answers_as_the_one_sent(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(build_process, "SLICE", 64)  # many slices of every kind
    monkeypatch.setattr(build_process, "ARRAY_SLICE", 256)
    request = job(1500)
    built = build_process.build(request)
    stream = io.BytesIO()
    build_process.send(built, stream)
    stream.seek(0)
    receiver = build_process._Receiver(stream)
    monkeypatch.setattr(build_process, "_Receiver", lambda _: receiver)
    moved = build_process.receive(stream)

    kinds = {type(c) for c in receiver.containers.values()}
    assert {list, dict, array} <= kinds  # each way of filling was taken
    assert_same_answers(moved.index, built.index, some_ids(request))
    assert moved.unreadable == {} and moved.peak_mb is not None


def test_a_child_builds_what_this_process_builds() -> None:
    request = job(800)
    moved = ProcessBuilder().build(request)
    assert_same_answers(moved.index, build_process.build(request).index, some_ids(request))


def test_a_child_reports_an_undecodable_snapshot_and_builds_the_rest() -> None:
    import zlib

    bad = LoadedSnapshot(
        SnapshotMeta("vouchers", 3, 1, 1, 1, 0.0),
        (zlib.compress(b'[{"id": "vouchers:1", "a_field_from_the_future": 1}]'),),
    )
    moved = ProcessBuilder().build(job(300, vouchers=bad))
    assert list(moved.unreadable) == ["vouchers"]
    assert moved.index.supplier_products() == 300


class _NotInTheChild:
    """A taxonomy the child cannot import (this test module is not on its path)."""

    def __call__(self, supplier: str, category: str | None) -> str | None:
        return category


def test_a_failing_child_is_a_build_failure_quoting_its_error() -> None:
    request = job(50)
    broken = BuildJob(request.snapshots, request.prices, _NotInTheChild(), request.matcher, 1.0)
    with pytest.raises(BuildFailed, match=r"(?s)exited with code 1: .*ModuleNotFoundError"):
        ProcessBuilder().build(broken)


def test_a_cancelled_build_ends_its_child() -> None:
    builder = ProcessBuilder()
    outcome: list[Any] = []

    def run() -> None:
        try:
            outcome.append(builder.build(job(3000, cpu_share=0.02)))  # slow on purpose
        except BuildFailed as exc:
            outcome.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    deadline = time.monotonic() + 30
    while not builder._running:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    (child,) = builder._running
    builder.cancel()
    thread.join(30)
    assert isinstance(outcome[0], BuildFailed) and child.poll() is not None


def test_a_child_whose_parent_is_gone_exits() -> None:
    """The parent closes the child's input when it dies: the child must not build on."""
    child = subprocess.Popen(
        [sys.executable, "-m", "gateway.catalog.build_process"],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    assert child.stdin is not None
    pickle.dump(job(3000, cpu_share=0.02), child.stdin)
    child.stdin.flush()
    child.stdin.close()
    assert child.wait(30) == 3
