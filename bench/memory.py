"""Memory: RSS of a fresh process holding a catalog index of 100k synthetic products.

The index is built as the service builds it, with the matcher: supplier products whose
variants all match are listed through canonical products (one row per canonical product)
and kept aside, marshalled, so that their ids still answer ("absorbed+offers"); and, at
this size, in a child process that hands it over (``gateway.catalog.build_process``).

Target (issue 3): at most 300 MB RSS for one instance holding 100k products.

The parent encodes the synthetic catalog into snapshot chunks, in a file. A child
process (``python -m bench.memory --child N WHERE FILE``) imports what a gateway
instance imports, loads the chunks, reads its RSS, gets the index (``process``: from a
build process, as shipped; ``here``, a lab row: built in this process), collects
garbage and reads its RSS again, then walks the index's objects to say where the bytes
went. RSS is ``VmRSS`` from ``/proc/self/status``; peaks are ``VmHWM`` (the builder's
own, for a build process).
"""

from __future__ import annotations

import gc
import json
import subprocess
import sys
import time
from typing import Any

from gateway.observability.process_memory import memory_mb

PRODUCTS = 100_000
TARGET_MB = 300.0


def _deep_size(root: Any, seen: set[int]) -> int:
    """Bytes of ``root`` and everything it references that ``seen`` has not counted
    (shared strings count once, for whichever part reaches them first)."""
    total = 0
    stack = [root]
    while stack:
        obj = stack.pop()
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        total += sys.getsizeof(obj)
        if isinstance(obj, dict):
            stack.extend(obj.keys())
            stack.extend(obj.values())
        elif isinstance(obj, list | tuple | set | frozenset):
            stack.extend(obj)
        elif hasattr(obj, "__slots__"):
            stack.extend(getattr(obj, s) for s in obj.__slots__ if hasattr(obj, s))
    return total


def _snapshot_file(n: int) -> str:
    """``n`` synthetic products as one supplier's snapshot chunks, in a file (made here,
    not in the measured process, whose heap the generation would churn)."""
    import pickle
    import tempfile

    from bench import synthetic
    from gateway.catalog.snapshot import CHUNK_SIZE, encode_chunk

    chunks, batch = [], []
    for product in synthetic.products(n):
        batch.append(product)
        if len(batch) == CHUNK_SIZE:
            chunks.append(encode_chunk(batch))
            batch = []
    if batch:
        chunks.append(encode_chunk(batch))
    with tempfile.NamedTemporaryFile("wb", suffix=".snapshot", delete=False) as out:
        pickle.dump(chunks, out)
    return out.name


def child(n: int, where: str, snapshot_file: str) -> dict[str, Any]:
    # What a gateway instance has imported before it loads a catalog.
    import pickle

    import httpx  # noqa: F401
    import prometheus_client  # noqa: F401
    import redis.asyncio  # noqa: F401
    import starlette.applications  # noqa: F401

    from bench import synthetic
    from gateway.catalog.build_process import BuildJob, ProcessBuilder, build
    from gateway.catalog.matching import BrandTable, Matcher
    from gateway.catalog.snapshot import LoadedSnapshot, SnapshotMeta
    from gateway.catalog.staging import same_category

    with open(snapshot_file, "rb") as stored:
        chunks = tuple(pickle.load(stored))
    snapshot = LoadedSnapshot(SnapshotMeta("bench", 1, n, len(chunks), 1, 0.0), chunks)
    job = BuildJob(
        {"bench": snapshot}, synthetic.price_list(), same_category, Matcher(BrandTable.load()), 1
    )
    gc.collect()
    before = memory_mb()["VmRSS"]
    started = time.perf_counter()
    # As the service does it (gateway.catalog.service): with paced_build's collector
    # off; from a child process at this size (catalog.build_process_min_products).
    gc.disable()
    built = ProcessBuilder().build(job) if where == "process" else build(job)
    gc.enable()
    build_s = time.perf_counter() - started
    index = built.index
    gc.collect()
    memory = memory_mb()
    after, peak = memory["VmRSS"], memory["VmHWM"]
    seen: set[int] = set()
    # The roots are built first and kept alive: a temporary tuple freed after its part
    # was counted leaves its id to the next one, which would then count as seen.
    roots = {
        "records": (index._records, index._ids),
        "full text": index._text,
        "filters+facets": (index._fields, index._in_stock, index._out_of_stock, index._all),
        "prices": (index._list_price, index._cost, index._list_order, index._cost_order),
        "id lookup": index._doc_of,
        "absorbed+offers": (index._absorbed, index._offers),
    }
    parts = {name: _deep_size(root, seen) for name, root in roots.items()}
    return {
        "where": where,
        "products": index.supplier_products(),
        "rows": len(index),
        "rss_before_mb": before,
        "rss_after_mb": after,
        "peak_mb": peak,
        "builder_peak_mb": built.peak_mb,
        "build_s": build_s,
        "parts_mb": {k: v / 2**20 for k, v in parts.items()},
        "stats": index.stats(),
    }


def _measure(where: str, snapshot_file: str) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, "-m", "bench.memory", "--child", str(PRODUCTS), where, snapshot_file],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"memory child failed: {proc.stderr.strip()[-2000:]}")
    figures: dict[str, Any] = json.loads(proc.stdout)
    return figures


def run() -> dict[str, Any]:
    import os

    snapshot_file = _snapshot_file(PRODUCTS)
    try:
        figures = _measure("process", snapshot_file)
        lab = _measure("here", snapshot_file)
    finally:
        os.unlink(snapshot_file)
    n = figures["products"]
    print(f"{'index':<44} {'RSS before':>11} {'RSS after':>10} {'index':>8} {'per product':>12} "
          f"{'peak':>9} {'builder peak':>13} {'build s':>8}")  # fmt: skip
    for label, f in (
        ("as shipped: built in a child, handed over", figures),
        ("lab: built in this process", lab),
    ):
        index_mb = f["rss_after_mb"] - f["rss_before_mb"]
        builder = f["builder_peak_mb"] if f["where"] == "process" else f["peak_mb"]
        print(
            f"{label:<44} {f['rss_before_mb']:>8.1f} MB {f['rss_after_mb']:>7.1f} MB "
            f"{index_mb:>5.1f} MB {index_mb * 2**20 / n:>10.0f} B {f['peak_mb']:>6.1f} MB "
            f"{builder:>10.1f} MB {f['build_s']:>8.1f}"
        )
    stats = figures["stats"]
    print(
        f"{n:,} supplier products; listing rows: {figures['rows']:,} (canonical and "
        f"unmatched products); supplier products listed through a canonical one: "
        f"{stats['absorbed']:,}; canonical variants: {stats['canonical_variants']:,}"
    )
    print("where the index's bytes are (deep sys.getsizeof, shared objects counted once):")
    for part, mb in figures["parts_mb"].items():
        print(f"  {part:<16} {mb:>7.1f} MB  {mb * 2**20 / n:>6.0f} B/product")
    verdict = "PASS" if figures["rss_after_mb"] <= TARGET_MB else "MISS"
    print(
        f"target: RSS <= {TARGET_MB:.0f} MB with {n:,} products, as shipped: "
        f"{figures['rss_after_mb']:.1f} MB -> {verdict}"
    )
    index_mb = figures["rss_after_mb"] - figures["rss_before_mb"]
    figures.update(target_mb=TARGET_MB, index_mb=index_mb, verdict=verdict, lab_built_here=lab)
    return figures


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "--child":
        print(json.dumps(child(int(sys.argv[2]), sys.argv[3], sys.argv[4])))
    else:
        run()
