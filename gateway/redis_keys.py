"""Every Redis key the gateway writes is built here, from one prefix.

Keys that must be read or written together (one Lua script, one MULTI) share a hash tag
``{...}`` so they land in one Redis Cluster slot. Tests use their own prefix, so they
never touch data they did not create and can run against a shared Redis.
"""

from __future__ import annotations


class RedisKeys:
    def __init__(self, prefix: str = "gw") -> None:
        self.prefix = prefix

    def key(self, *parts: str) -> str:
        """``<prefix>:<part>:<part>...``: the one way keys are joined."""
        return ":".join((self.prefix, *parts))

    def pattern(self) -> str:
        """Matches every key under this prefix (for clean-up in tests and tools)."""
        return f"{self.prefix}:*"

    # Supplier layer -------------------------------------------------------------
    def upstream_rate(self, supplier: str, bucket: str) -> str:
        return self.key("rl", "upstream", "{" + supplier + "}", bucket)
