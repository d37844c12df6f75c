"""In-process search latency: p50/p99 of ``CatalogIndex.search`` at 1k, 10k, 100k and 1M
synthetic products, for one-word, two-word and prefix-or-typo queries (a page of 20, no
facets), with each index's build time.

Target (issue 3): p99 <= 1 ms at 100k products for every query kind.

Queries are drawn from the names of the catalog's own products (so most match
something, as real queries do) with a fixed seed: the same queries every run. Timing is
``perf_counter_ns`` around each call, garbage collector on (as in the service), after one
warm-up pass. ``BENCH_SIZES=1000,10000`` limits the sizes for a quick run.

The index is built with the matcher, as the service builds it: documents are canonical
products and unmatched supplier products, so the build time includes matching.
"""

from __future__ import annotations

import gc
import os
import random
import statistics
import time
from collections.abc import Callable, Iterator
from itertools import islice
from typing import Any

from adapters.models import Product
from bench import synthetic
from gateway.catalog.index import CatalogIndex, SearchQuery
from gateway.catalog.matching import BrandTable, Matcher
from gateway.catalog.text import TYPO_MIN_LENGTH, tokens

SIZES = (1_000, 10_000, 100_000, 1_000_000)
KINDS = ("one word", "two words", "prefix/typo")
TARGET_SIZE = 100_000
TARGET_P99_MS = 1.0
QUERIES_PER_KIND = 60
SAMPLES_PER_KIND = 3_000  # fewer at 1M: see _samples


def _typo(word: str, rng: random.Random) -> str:
    i = rng.randrange(len(word) - 1)
    letter = rng.choice("aeiourstnl")
    edits = (
        word[:i] + word[i + 1 :],  # deletion
        word[:i] + letter + word[i:],  # insertion
        word[:i] + letter + word[i + 1 :],  # substitution
        word[:i] + word[i + 1] + word[i] + word[i + 2 :],  # transposition
    )
    return rng.choice([e for e in edits if e != word] or [word + letter])


def queries(n: int, seed: int = 7) -> dict[str, list[str]]:
    """Deterministic query sets for a catalog of ``n`` synthetic products."""
    rng = random.Random(seed)
    names = [p.name for p in islice(synthetic.products(n), 0, min(n, 2_000))]
    word_lists = [w for w in (tokens(name) for name in names) if len(w) >= 2]
    one, two, fuzzy = [], [], []
    while len(one) < QUERIES_PER_KIND:
        words = rng.choice(word_lists)
        one.append(rng.choice(words))
    while len(two) < QUERIES_PER_KIND:
        words = rng.choice(word_lists)
        i = rng.randrange(len(words) - 1)
        two.append(f"{words[i]} {words[i + 1]}")
    while len(fuzzy) < QUERIES_PER_KIND:
        long_words = [w for w in rng.choice(word_lists) if len(w) >= TYPO_MIN_LENGTH]
        if not long_words:
            continue
        word = rng.choice(long_words)
        if len(fuzzy) % 2:
            fuzzy.append(word[: rng.randint(3, len(word) - 1)])  # still typing
        else:
            fuzzy.append(_typo(word, rng))
    return {"one word": one, "two words": two, "prefix/typo": fuzzy}


def _samples(n: int) -> int:
    return SAMPLES_PER_KIND if n < 1_000_000 else SAMPLES_PER_KIND // 3


def _time(search: Callable[[SearchQuery], Any], texts: list[str], samples: int) -> dict:
    prepared = [SearchQuery(text=t, limit=20) for t in texts]
    matches = [search(q).total for q in prepared]  # warm-up, and what the queries find
    timings = []
    for i in range(samples):
        q = prepared[i % len(prepared)]
        t0 = time.perf_counter_ns()
        search(q)
        timings.append(time.perf_counter_ns() - t0)
    timings.sort()
    return {
        "p50_ms": timings[len(timings) // 2] / 1e6,
        "p99_ms": timings[int(len(timings) * 0.99) - 1] / 1e6,
        "max_ms": timings[-1] / 1e6,
        "mean_matches": statistics.fmean(matches),
        "samples": samples,
    }


class _Timed:
    """Wraps the product generator and adds up the time spent generating, so the build
    time reported is the index's own."""

    def __init__(self, n: int) -> None:
        self.products = synthetic.products(n)
        self.seconds = 0.0

    def __iter__(self) -> Iterator[Product]:
        clock, products = time.perf_counter, self.products
        while True:
            t0 = clock()
            product = next(products, None)
            self.seconds += clock() - t0
            if product is None:
                return
            yield product


def measure(n: int) -> dict[str, Any]:
    timed = _Timed(n)
    started = time.perf_counter()
    index = CatalogIndex.build(timed, synthetic.price_list(), matcher=Matcher(BrandTable.load()))
    build_s = time.perf_counter() - started - timed.seconds
    gc.collect()
    row: dict[str, Any] = {
        "products": n,
        "build_s": build_s,
        "generate_s": timed.seconds,
        "stats": index.stats(),
    }
    for kind, texts in queries(n).items():
        row[kind] = _time(index.search, texts, _samples(n))
    del index
    gc.collect()
    return row


def run() -> dict[str, Any]:
    sizes = SIZES
    if os.environ.get("BENCH_SIZES"):
        sizes = tuple(int(s) for s in os.environ["BENCH_SIZES"].split(","))
    print(
        f"{'products':>10} {'build s':>8}  "
        + "  ".join(f"{kind + ' p50/p99 ms':>26}" for kind in KINDS)
        + f"  {'vocab':>7}",
        flush=True,
    )
    rows = []
    for n in sizes:
        row = measure(n)
        rows.append(row)
        cells = "  ".join(
            f"{row[k]['p50_ms']:>11.3f} / {row[k]['p99_ms']:<7.3f} ({row[k]['mean_matches']:>6.0f})"
            for k in KINDS
        )
        print(
            f"{n:>10,} {row['build_s']:>8.1f}  {cells}  {row['stats']['vocabulary']:>7,}",
            flush=True,
        )
    print("(in parentheses: mean matches per query; build: the index's own, generating the")
    print(" synthetic products excluded)")
    result: dict[str, Any] = {"rows": rows}
    at_target = [r for r in rows if r["products"] == TARGET_SIZE]
    if at_target:
        worst = max(at_target[0][k]["p99_ms"] for k in KINDS)
        verdict = "PASS" if worst <= TARGET_P99_MS else "MISS"
        print(
            f"target: p99 <= {TARGET_P99_MS} ms at {TARGET_SIZE:,} products, every kind: "
            f"worst p99 {worst:.3f} ms -> {verdict}"
        )
        result.update(target_p99_ms=TARGET_P99_MS, worst_p99_ms=worst, verdict=verdict)
    return result
