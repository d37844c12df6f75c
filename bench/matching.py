"""Matching: CPU seconds to match 100k synthetic supplier products into canonical ones.

Target (issue 13): matching 100k supplier products takes at most 10 s of CPU.

The catalog is ``bench.synthetic``'s (four suppliers; game keys, gift cards with fixed
and range variants, subscriptions), built before the clock starts. The figure is
``time.process_time`` around ``match_catalog`` with the shipped brand table: every
variant gets its verdict, offers are grouped and ordered, misses sorted. The baseline,
measured in the same run, is the cheapest pass that reads every variant's name:
tokenising it once (matching does that and more, so the ratio says what the rules cost
on top of reading the text). Counts say what the run matched: canonical variants, those
with offers from more than one supplier product, and variants left unmatched.
"""

from __future__ import annotations

import gc
import os
import time
from typing import Any

from bench import synthetic
from gateway.catalog.matching import BrandTable, Matcher, match_catalog
from gateway.catalog.text import tokens

PRODUCTS = int(os.environ.get("BENCH_PRODUCTS", "100000"))
TARGET_CPU_S = 10.0


def run() -> dict[str, Any]:
    products = list(synthetic.products(PRODUCTS))
    variants = sum(len(p.variants) for p in products)
    matcher = Matcher(BrandTable.load())
    gc.collect()

    started = time.process_time()
    for product in products:
        for _ in product.variants:
            tokens(product.name)
    baseline_s = time.process_time() - started

    started = time.process_time()
    matches = match_catalog(products, matcher)
    cpu_s = time.process_time() - started

    merged = matches.merged
    figures: dict[str, Any] = {
        "products": len(products),
        "variants": variants,
        "cpu_s": cpu_s,
        "baseline_s": baseline_s,
        "ratio": cpu_s / baseline_s if baseline_s else float("inf"),
        "canonical_variants": len(matches.offers),
        "merged": len(merged),
        "merged_offers": sum(len(o) for o in merged.values()),
        "misses": len(matches.misses),
    }
    print(
        f"{'products':>9} {'variants':>9} {'match CPU s':>12} {'tokenise s':>11} {'ratio':>6} "
        f"{'canonical':>10} {'merged':>7} {'their offers':>13} {'misses':>7}"
    )
    print(
        f"{figures['products']:>9,} {variants:>9,} {cpu_s:>12.2f} {baseline_s:>11.2f} "
        f"{figures['ratio']:>6.1f} {figures['canonical_variants']:>10,} "
        f"{figures['merged']:>7,} {figures['merged_offers']:>13,} {figures['misses']:>7,}"
    )
    verdict = "PASS" if cpu_s <= TARGET_CPU_S else "MISS"
    print(
        f"target: matching {figures['products']:,} products <= {TARGET_CPU_S:.0f} s of CPU: "
        f"{cpu_s:.2f} s -> {verdict}"
    )
    figures.update(target_cpu_s=TARGET_CPU_S, verdict=verdict)
    return figures


if __name__ == "__main__":
    run()
