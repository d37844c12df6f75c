"""The Redis keys the supplier layer writes, built here and nowhere else.

The gateway reads and writes some of them too (``gateway.redis_keys.RedisKeys`` builds
the upstream rate-limit key through ``upstream_rate_key``): every instance, and every
process of an instance, must land on the same key for a supplier's bucket, or each
would silently get a budget of its own and together they would exceed the upstream's
limit. Each key carries the supplier as a hash tag ``{<supplier>}``, so all of one
supplier's keys live in one Redis Cluster slot.
"""

from __future__ import annotations


def upstream_rate_key(prefix: str, supplier: str, bucket: str) -> str:
    """The GCRA bucket of one supplier's rate limit, shared by every gateway instance."""
    return ":".join((prefix, "rl", "upstream", "{" + supplier + "}", bucket))


def adapter_state_key(prefix: str, supplier: str, *parts: str) -> str:
    """A key for an adapter's private state (reconciliation ledgers, tokens)."""
    return ":".join((prefix, "adapter", "{" + supplier + "}", *parts))
