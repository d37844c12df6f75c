"""Every Redis key the gateway writes is built here, from one prefix.

Keys that must be read or written together (one Lua script, one MULTI) share a hash tag
``{...}`` so they land in one Redis Cluster slot. Tests use their own prefix, so they
never touch data they did not create and can run against a shared Redis.
"""

from __future__ import annotations

from adapters.keys import upstream_rate_key


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
        """A supplier's shared upstream rate-limit bucket: built by the supplier layer's
        own helper, so the gateway and the adapters can never disagree on it."""
        return upstream_rate_key(self.prefix, supplier, bucket)

    # Orders ----------------------------------------------------------------------
    # Every key of order work carries the hash tag ``{orders}``: creating an order writes
    # its record, the reseller's indexes, the Idempotency-Key record and its first jobs in
    # one script, and the job scripts move entries between the schedule and the stream,
    # so all of them must live in one Cluster slot (see docs/orders.md for the trade-off).
    def _orders(self, *parts: str) -> str:
        return self.key("{orders}", *parts)

    def order(self, order_id: str) -> str:
        """Hash ``{doc: <JSON>, v: <version>}`` of one order (codes encrypted inside)."""
        return self._orders("order", order_id)

    def order_idempotency(self, reseller_id: str, key_digest: str) -> str:
        """Hash of one Idempotency-Key of one reseller (the key's SHA-256 hex)."""
        return self._orders("idem", reseller_id, key_digest)

    def reseller_orders(self, reseller_id: str, status: str | None = None) -> str:
        """ZSET of a reseller's order ids by creation time (ms); one more per status."""
        if status is None:
            return self._orders("by-reseller", reseller_id)
        return self._orders("by-reseller", reseller_id, status)

    def order_jobs(self) -> str:
        """The Redis Stream of due order jobs (consumer group ``order-workers``)."""
        return self._orders("jobs")

    def order_schedule(self) -> str:
        """ZSET of delayed jobs by due time (ms, Redis clock), moved into the stream."""
        return self._orders("schedule")

    def order_review(self) -> str:
        """ZSET of ``<order id>:<part>`` held for review, by the time they were held."""
        return self._orders("review")

    def order_events(self) -> str:
        """Pub/sub channel announcing orders that reached a final state."""
        return self._orders("events")

    # Accounts ---------------------------------------------------------------------
    # Account keys carry the ``{orders}`` hash tag too: a hold is written by the script
    # that creates the order, and captures/releases by the script that commits the
    # order's change, so accounts, ledgers and orders must share one Cluster slot.
    def account(self, reseller_id: str, currency: str) -> str:
        """Hash of one account: balance, held, limit, caps, low-balance state."""
        return self._orders("account", reseller_id, currency)

    def account_ledger(self, reseller_id: str, currency: str) -> str:
        """Stream of one account's ledger entries (append-only, never trimmed)."""
        return self._orders("ledger", reseller_id, currency)

    def account_currencies(self, reseller_id: str) -> str:
        """Set of the currencies a reseller has an account in."""
        return self._orders("accounts", reseller_id)

    def account_references(self, reseller_id: str) -> str:
        """Hash of a reseller's operator references (top-ups, adjustments) -> entry."""
        return self._orders("account-refs", reseller_id)

    def account_events(self, reseller_id: str, currency: str) -> str:
        """Hash of an account's undelivered low-balance events."""
        return self._orders("account-events", reseller_id, currency)

    def account_holds(self) -> str:
        """ZSET of open holds ``<order id>:<currency>`` by creation time (ms)."""
        return self._orders("holds")

    # Reseller access -------------------------------------------------------------
    # Each record is one key, read and written alone, so no hash tags are needed.
    def reseller(self, reseller_id: str) -> str:
        """One reseller (JSON), including its webhook signing secret."""
        return self.key("access", "reseller", reseller_id)

    def resellers(self) -> str:
        """Set of every reseller id (for listing)."""
        return self.key("access", "resellers")

    def api_key(self, key_id: str) -> str:
        """One API key record (JSON): scopes, limits, status and the SHA-256 of the key."""
        return self.key("access", "key", key_id)

    def reseller_keys(self, reseller_id: str) -> str:
        """Set of the key ids issued to one reseller."""
        return self.key("access", "reseller-keys", reseller_id)

    def reseller_rate(self, key_id: str) -> str:
        """The GCRA bucket of one API key, shared by every gateway instance."""
        return self.key("rl", "reseller", "{" + key_id + "}")

    # Catalog ---------------------------------------------------------------------
    # Every key of one supplier's catalog carries the hash tag ``{catalog:<supplier>}``:
    # the publish, lock and failure scripts touch several of them in one call, so they
    # must share one Cluster slot. Versions are fencing tokens (see gateway/catalog/sync.py).
    def _catalog(self, supplier: str, *parts: str) -> str:
        return self.key("catalog", "{catalog:" + supplier + "}", *parts)

    def catalog_current(self, supplier: str) -> str:
        """The published snapshot version of ``supplier`` (an integer string)."""
        return self._catalog(supplier, "current")

    def catalog_version(self, supplier: str, version: int | str) -> str:
        """Hash holding one snapshot version: ``meta`` and compressed chunks ``c:<n>``."""
        return self._catalog(supplier, "v", str(version))

    def catalog_lock(self, supplier: str) -> str:
        """The sync lock: holds the holder's fencing token, expires by itself."""
        return self._catalog(supplier, "lock")

    def catalog_fence(self, supplier: str) -> str:
        """Counter issuing fencing tokens (INCR), one per lock acquisition."""
        return self._catalog(supplier, "fence")

    def catalog_status(self, supplier: str) -> str:
        """Hash of the supplier's sync status (served by ``GET /v1/suppliers``)."""
        return self._catalog(supplier, "status")

    def catalog_detail(self, supplier: str, upstream_id: str) -> str:
        """A cached product detail (JSON with its fetch time)."""
        return self._catalog(supplier, "detail", upstream_id)
