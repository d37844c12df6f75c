"""How long order work waits before its next try: pure functions, no clock, no I/O.

Every delay is an exponential ``initial * 2**step`` (the exponent bounded so a long-lived
order cannot overflow a float), capped, then jittered so that many orders failing at the
same moment (a supplier outage) do not all come back at the same moment:

* ``equal_jitter``: half the delay fixed, half random (placement retries, webhook
  retries): never sooner than half the ceiling, so a supplier that asked us to slow down
  is not hammered by the unlucky draws of full jitter;
* ``spread``: ±20 % around the delay (status polls): polls keep their rhythm but drift
  apart.

The random source is passed in (the processor's ``random.Random``), so tests seed it.
"""

from __future__ import annotations

import math
import random

#: ``2**30`` seconds is decades: enough for any ceiling, small enough for a float.
MAX_EXPONENT = 30


def exponential(
    initial: float, step: int, *, maximum: float = math.inf, max_exponent: int = MAX_EXPONENT
) -> float:
    """``initial * 2**step``, the exponent at most ``max_exponent``, at most ``maximum``."""
    return min(maximum, initial * float(2 ** min(step, max_exponent)))


def equal_jitter(ceiling: float, rng: random.Random) -> float:
    """Uniform in ``[ceiling / 2, ceiling]``."""
    return ceiling / 2 + rng.uniform(0, ceiling / 2)


def spread(delay: float, rng: random.Random) -> float:
    """Uniform in ``[0.8 * delay, 1.2 * delay]``."""
    return delay * rng.uniform(0.8, 1.2)
