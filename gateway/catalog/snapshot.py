"""Versioned catalog snapshots in Redis, switched atomically.

One supplier's catalog is published as a *version*: a hash holding ``meta`` (JSON) and
the products as zlib-compressed JSON chunks ``c:0``, ``c:1``, ... of ``chunk_size``
products each (``CHUNK_SIZE``: a 250-product chunk compresses to tens of KB, well under
the size where one Redis value starts to hurt, and decoding one, a single call that
holds the GIL, takes a few milliseconds: an instance rebuilding its index in a thread
never keeps its requests waiting longer than that). A version is written completely, under its own
key, *before* anybody can see it; publishing is then one Lua script (``lua/publish.lua``)
that moves the supplier's ``current`` pointer to it, so a reader that follows the pointer
finds either the whole old catalog or the whole new one, never a mix. The previous
version is left readable for a grace period (an instance may be in the middle of loading
it), then expires.

A version number is the fencing token of the sync that wrote it (``gateway.catalog.sync``);
the publish script refuses a token at or below the published version, or one whose lock
is now held by somebody else.

Key layout (one hash tag per supplier, so every script touches one Cluster slot)::

    <prefix>:catalog:{catalog:<supplier>}:current   "17"          published version
    <prefix>:catalog:{catalog:<supplier>}:v:17      hash          meta, c:0, c:1, ...
    <prefix>:catalog:{catalog:<supplier>}:lock      "18"          sync lock (token, PX)
    <prefix>:catalog:{catalog:<supplier>}:fence     "18"          token counter
    <prefix>:catalog:{catalog:<supplier>}:status    hash          sync status
    <prefix>:catalog:{catalog:<supplier>}:detail:<upstream id>    cached detail
"""

from __future__ import annotations

import json
import time
import zlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from importlib import resources
from typing import Any

from pydantic import TypeAdapter

from adapters.models import Product
from gateway.redis_keys import RedisKeys

_PUBLISH = resources.files("gateway.catalog").joinpath("lua/publish.lua").read_text()
_PRODUCTS: TypeAdapter[list[Product]] = TypeAdapter(list[Product])

META_FIELD = "meta"
CODEC = "zlib+json/1"
#: Products per chunk (see the module docstring).
CHUNK_SIZE = 250
#: Chunks fetched per HMGET while loading: bounds one reply to a few MB.
LOAD_BATCH = 32


def chunk_field(index: int) -> str:
    return f"c:{index}"


def encode_chunk(products: Sequence[Product]) -> bytes:
    """Products → compressed JSON (defaults left out: they come back on decoding)."""
    return zlib.compress(_PRODUCTS.dump_json(list(products), exclude_defaults=True), 6)


def decode_chunk(blob: bytes) -> list[Product]:
    """Compressed JSON → validated ``Product``s (pydantic-core parses in Rust: fast)."""
    return _PRODUCTS.validate_json(zlib.decompress(blob))


class SnapshotMissing(LookupError):
    """The version asked for does not exist (never published, or expired after its grace
    period while being read): read the current pointer again."""


@dataclass(frozen=True, slots=True)
class SnapshotMeta:
    supplier: str
    version: int
    products: int
    chunks: int
    pages: int
    created_at: float
    codec: str = CODEC

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, raw: bytes | str) -> SnapshotMeta:
        data = json.loads(raw)
        return cls(
            supplier=str(data["supplier"]),
            version=int(data["version"]),
            products=int(data["products"]),
            chunks=int(data["chunks"]),
            pages=int(data["pages"]),
            created_at=float(data["created_at"]),
            codec=str(data.get("codec", CODEC)),
        )


@dataclass(frozen=True, slots=True)
class LoadedSnapshot:
    """One version as read from Redis, still compressed: an instance keeps these (a few
    bytes per product) rather than 100k pydantic objects, and decodes them again when the
    index must be rebuilt because another supplier changed."""

    meta: SnapshotMeta
    chunks: tuple[bytes, ...]

    def products(self) -> Iterable[Product]:
        for blob in self.chunks:
            yield from decode_chunk(blob)


@dataclass(frozen=True, slots=True)
class PublishResult:
    published: bool
    reason: str
    #: The version current before (published) or now (refused); ``None``: none.
    previous: int | None


class SnapshotWriter:
    """Streams one version's products into its (not yet visible) hash.

    The staged hash carries a TTL, refreshed on every write, so a sync that dies halfway
    leaves nothing behind for long; ``publish`` removes the TTL atomically.
    """

    def __init__(
        self,
        redis: Any,
        keys: RedisKeys,
        supplier: str,
        version: int,
        *,
        staging_ttl_seconds: float,
        chunk_size: int,
    ) -> None:
        self._redis = redis
        self._key = keys.catalog_version(supplier, version)
        self._ttl_ms = max(1000, int(staging_ttl_seconds * 1000))
        self._chunk_size = chunk_size
        self.supplier = supplier
        self.version = version
        self._buffer: list[Product] = []
        self.chunks = 0
        self.products = 0

    async def add(self, products: Iterable[Product]) -> None:
        for product in products:
            self._buffer.append(product)
            self.products += 1
            if len(self._buffer) >= self._chunk_size:
                await self._flush()

    async def _flush(self) -> None:
        if not self._buffer:
            return
        blob = encode_chunk(self._buffer)
        self._buffer = []
        pipe = self._redis.pipeline(transaction=False)
        pipe.hset(self._key, chunk_field(self.chunks), blob)
        pipe.pexpire(self._key, self._ttl_ms)
        await pipe.execute()
        self.chunks += 1

    async def finish(self, pages: int) -> SnapshotMeta:
        """Write the remaining products and the meta record; the version is then complete
        (but still invisible until published)."""
        await self._flush()
        meta = SnapshotMeta(
            supplier=self.supplier,
            version=self.version,
            products=self.products,
            chunks=self.chunks,
            pages=pages,
            created_at=time.time(),
        )
        pipe = self._redis.pipeline(transaction=False)
        pipe.hset(self._key, META_FIELD, meta.to_json())
        pipe.pexpire(self._key, self._ttl_ms)
        await pipe.execute()
        return meta

    async def discard(self) -> None:
        self._buffer = []
        await self._redis.delete(self._key)


class SnapshotStore:
    """Reads and publishes snapshot versions of every supplier."""

    def __init__(
        self,
        redis: Any,
        keys: RedisKeys,
        *,
        grace_seconds: float = 60.0,
        chunk_size: int = CHUNK_SIZE,
    ) -> None:
        self.redis = redis
        self.keys = keys
        self.grace_seconds = grace_seconds
        self.chunk_size = chunk_size
        self._publish = redis.register_script(_PUBLISH)

    def writer(self, supplier: str, version: int, *, staging_ttl_seconds: float) -> SnapshotWriter:
        return SnapshotWriter(
            self.redis,
            self.keys,
            supplier,
            version,
            staging_ttl_seconds=staging_ttl_seconds,
            chunk_size=self.chunk_size,
        )

    async def current_version(self, supplier: str) -> int | None:
        raw = await self.redis.get(self.keys.catalog_current(supplier))
        return int(raw) if raw is not None else None

    async def current_versions(self, suppliers: Sequence[str]) -> dict[str, int | None]:
        """Every supplier's published version in one round trip (a pipeline of GETs: the
        pointers live in different slots, so not one MGET)."""
        if not suppliers:
            return {}
        pipe = self.redis.pipeline(transaction=False)
        for supplier in suppliers:
            pipe.get(self.keys.catalog_current(supplier))
        raws = await pipe.execute()
        return {s: int(r) if r is not None else None for s, r in zip(suppliers, raws, strict=True)}

    async def publish(
        self, supplier: str, version: int, status: Mapping[str, str | int | float] | None = None
    ) -> PublishResult:
        """Make ``version`` current (fenced by its token) and set ``status`` fields with it.

        Retries by itself when the pointer moved between reading and publishing; the
        lock makes that rare (only a refused stale publisher could have moved it)."""
        flat: list[str | int | float] = []
        for field, value in (status or {}).items():
            flat += [field, value]
        for _ in range(5):
            previous = await self.current_version(supplier)
            prev_key = (
                self.keys.catalog_version(supplier, previous)
                if previous is not None
                else self.keys.catalog_version(supplier, version)
            )
            ok, reason, seen = await self._publish(
                keys=[
                    self.keys.catalog_current(supplier),
                    self.keys.catalog_lock(supplier),
                    self.keys.catalog_version(supplier, version),
                    prev_key,
                    self.keys.catalog_status(supplier),
                ],
                args=[
                    version,
                    "" if previous is None else previous,
                    int(self.grace_seconds * 1000),
                    *flat,
                ],
            )
            reason = reason.decode() if isinstance(reason, bytes) else str(reason)
            seen_version = int(seen) if seen not in (b"", "", None) else None
            if reason != "moved":
                return PublishResult(bool(int(ok)), reason, seen_version)
        return PublishResult(False, "moved", seen_version)

    async def meta(self, supplier: str, version: int) -> SnapshotMeta:
        raw = await self.redis.hget(self.keys.catalog_version(supplier, version), META_FIELD)
        if raw is None:
            raise SnapshotMissing(f"{supplier} snapshot version {version} does not exist")
        return SnapshotMeta.from_json(raw)

    async def load(self, supplier: str, version: int) -> LoadedSnapshot:
        """Read one whole version; ``SnapshotMissing`` if it (or any part) is gone."""
        key = self.keys.catalog_version(supplier, version)
        meta = await self.meta(supplier, version)
        chunks: list[bytes] = []
        for start in range(0, meta.chunks, LOAD_BATCH):
            fields = [chunk_field(i) for i in range(start, min(start + LOAD_BATCH, meta.chunks))]
            values = await self.redis.hmget(key, fields)
            if any(v is None for v in values):
                raise SnapshotMissing(f"{supplier} snapshot version {version} expired mid-read")
            chunks.extend(values)
        return LoadedSnapshot(meta, tuple(chunks))

    async def load_current(self, supplier: str) -> LoadedSnapshot | None:
        """The current version of ``supplier`` (``None``: never published), following the
        pointer again should the version expire while being read."""
        for _ in range(5):
            version = await self.current_version(supplier)
            if version is None:
                return None
            try:
                return await self.load(supplier, version)
            except SnapshotMissing:
                continue
        raise SnapshotMissing(f"{supplier}: the current snapshot kept moving while read")
