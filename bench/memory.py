"""Memory: RSS of a fresh process holding a catalog index of 100k synthetic products.

The index is built as the service builds it, with the matcher: supplier products whose
variants all match are listed through canonical products (one row per canonical product)
and kept aside, marshalled, so that their ids still answer ("absorbed+offers").

Target (issue 3): at most 300 MB RSS for one instance holding 100k products.

A child process (``python -m bench.memory --child N``) imports what a gateway instance
imports, reads its RSS, builds the index from the synthetic generator (streamed, as the
service streams a snapshot), collects garbage and reads its RSS again, then walks the
index's objects to say where the bytes went. The parent prints the table. RSS is
``VmRSS`` from ``/proc/self/status``; the build's peak is ``VmHWM``.
"""

from __future__ import annotations

import gc
import json
import subprocess
import sys
import time
from typing import Any

PRODUCTS = 100_000
TARGET_MB = 300.0


def _status_mb(field: str) -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    raise RuntimeError(f"{field} not in /proc/self/status")


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


def child(n: int) -> dict[str, Any]:
    # What a gateway instance has imported before it loads a catalog.
    import httpx  # noqa: F401
    import prometheus_client  # noqa: F401
    import redis.asyncio  # noqa: F401
    import starlette.applications  # noqa: F401

    from bench import synthetic
    from gateway.catalog.index import CatalogIndex
    from gateway.catalog.matching import BrandTable, Matcher

    matcher = Matcher(BrandTable.load())
    gc.collect()
    before = _status_mb("VmRSS")
    started = time.perf_counter()
    index = CatalogIndex.build(synthetic.products(n), synthetic.price_list(), matcher=matcher)
    build_s = time.perf_counter() - started
    gc.collect()
    after = _status_mb("VmRSS")
    peak = _status_mb("VmHWM")
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
        "products": index.supplier_products(),
        "rows": len(index),
        "rss_before_mb": before,
        "rss_after_mb": after,
        "peak_mb": peak,
        "build_s": build_s,
        "parts_mb": {k: v / 2**20 for k, v in parts.items()},
        "stats": index.stats(),
    }


def run() -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, "-m", "bench.memory", "--child", str(PRODUCTS)],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"memory child failed: {proc.stderr.strip()[-2000:]}")
    figures: dict[str, Any] = json.loads(proc.stdout)
    n = figures["products"]
    index_mb = figures["rss_after_mb"] - figures["rss_before_mb"]
    print(f"{'products':>10} {'RSS before':>11} {'RSS after':>10} {'index':>8} {'per product':>12} "
          f"{'build peak':>11} {'gen+build s':>12}")  # fmt: skip
    print(
        f"{n:>10,} {figures['rss_before_mb']:>8.1f} MB {figures['rss_after_mb']:>7.1f} MB "
        f"{index_mb:>5.1f} MB {index_mb * 2**20 / n:>8.0f} B {figures['peak_mb']:>8.1f} MB "
        f"{figures['build_s']:>12.1f}"
    )
    stats = figures["stats"]
    print(
        f"listing rows: {figures['rows']:,} (canonical and unmatched products); supplier "
        f"products listed through a canonical one: {stats['absorbed']:,}; canonical "
        f"variants: {stats['canonical_variants']:,}"
    )
    print("where the index's bytes are (deep sys.getsizeof, shared objects counted once):")
    for part, mb in figures["parts_mb"].items():
        print(f"  {part:<16} {mb:>7.1f} MB  {mb * 2**20 / n:>6.0f} B/product")
    verdict = "PASS" if figures["rss_after_mb"] <= TARGET_MB else "MISS"
    print(
        f"target: RSS <= {TARGET_MB:.0f} MB with {n:,} products: "
        f"{figures['rss_after_mb']:.1f} MB -> {verdict}"
    )
    figures.update(target_mb=TARGET_MB, index_mb=index_mb, verdict=verdict)
    return figures


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--child":
        print(json.dumps(child(int(sys.argv[2]))))
    else:
        run()
