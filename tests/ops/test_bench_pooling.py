"""The rebuild benchmark's p99 pools every request of its windows: a figure the README
reports, so its arithmetic is checked here (the benchmark itself is not run in tests)."""

from __future__ import annotations

from typing import Any

from bench._serve import TAIL_PERCENTILES, pooled


def window(requests: int, latency_ms: Any) -> dict[str, Any]:
    """A window whose latency at percentile p is ``latency_ms(p)``."""
    return {"requests": requests, "tail": [[p, latency_ms(p)] for p in TAIL_PERCENTILES]}


def test_one_window_pools_to_its_own_percentiles() -> None:
    w = window(10_000, lambda p: p / 10)
    assert pooled([w]) == 9.9 and pooled([w], 50) == 5.0


def test_a_short_slow_window_weighs_by_its_requests() -> None:
    calm = window(99_000, lambda p: 2.0 if p < 99.5 else 4.0)
    stalled = window(800, lambda p: 80.0)  # one bad second: every request slow
    # 800 of 99,800 requests took 80 ms: under 1 %, so the p99 is still calm ...
    assert pooled([calm, stalled]) == 4.0
    # ... while the worst window's own p99 (the previous figure) is the stall's.
    assert max(w["tail"][-3][1] for w in (calm, stalled)) == 80.0
    more = window(2_000, lambda p: 80.0)  # 2 % of the requests: the p99 is the stall's
    assert pooled([calm, more]) == 80.0
