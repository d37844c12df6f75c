"""Order work as a Redis Stream with one consumer group, plus a schedule of delayed jobs.

Why a stream and a group: an entry read by a worker stays *pending* until that worker
acknowledges it, so a worker that dies (SIGKILL, OOM, lost node) loses nothing: after
``job_lease_seconds`` without a renewal another worker takes the entry over with
``XAUTOCLAIM``. Entries are spread over every worker of every instance reading the group.

Delayed work (fulfilment polls with backoff, retries after a retriable failure, webhook
retries) waits in a ZSET scored by its due time on the Redis clock; any worker moves due
entries into the stream with one script (``lua/jobs_promote.lua``), so a job is always in
exactly one place. An acknowledged entry is deleted at once: the stream holds only work
not yet done and never needs trimming (trimming could drop pending work). Jobs enter the
stream only through the order scripts (``order_create``, ``order_update``,
``jobs_promote``), atomically with the change that makes them due; operator commands
(``gateway orders resolve``) go through ``order_update`` too.

A job entry is ``<kind>|<order id>|<part>|<nonce>``. The nonce ties it to the one live job
of its part (``Part.job``), so a duplicate (a re-delivered entry whose work another worker
already finished) is recognised and dropped.
"""

from __future__ import annotations

import contextlib
import enum
from dataclasses import dataclass
from typing import Any

from redis.exceptions import ResponseError

from gateway.orders.ids import job_nonce
from gateway.orders.scripts import OrderScripts
from gateway.redis_keys import RedisKeys

GROUP = "order-workers"


class JobKind(enum.StrEnum):
    PLACE = "place"
    POLL = "poll"
    RECONCILE = "reconcile"
    WEBHOOK = "webhook"
    #: An account's low-balance event (``gateway.accounts.notices``); its "order id" is
    #: ``<reseller>/<currency>/<event id>``.
    ACCOUNT_NOTICE = "account_notice"


@dataclass(frozen=True, slots=True)
class Job:
    kind: JobKind
    order_id: str
    part: int
    nonce: str

    @classmethod
    def new(cls, kind: JobKind, order_id: str, part: int = 0) -> Job:
        return cls(kind, order_id, part, job_nonce())

    def encode(self) -> str:
        return f"{self.kind.value}|{self.order_id}|{self.part}|{self.nonce}"

    @classmethod
    def decode(cls, raw: bytes | str | None) -> Job | None:
        if raw is None:
            return None
        text = raw.decode() if isinstance(raw, bytes) else raw
        fields = text.split("|")
        if len(fields) != 4:
            return None
        try:
            return cls(JobKind(fields[0]), fields[1], int(fields[2]), fields[3])
        except ValueError:
            return None


@dataclass(frozen=True, slots=True)
class Delivery:
    """One stream entry handed to this worker; ``job`` is None for an unreadable entry."""

    entry_id: str
    job: Job | None
    deliveries: int = 1


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _entry_order(entry_id: str) -> tuple[int, int]:
    millis, _, seq = entry_id.partition("-")
    return int(millis), int(seq or 0)


def _job_of(fields: Any) -> Job | None:
    if not fields:
        return None
    raw = fields.get(b"j", fields.get("j"))
    return Job.decode(raw)


class JobQueue:
    def __init__(self, redis: Any, keys: RedisKeys, scripts: OrderScripts) -> None:
        self.redis = redis
        self.stream = keys.order_jobs()
        self.schedule = keys.order_schedule()
        self._scripts = scripts
        #: Where each consumer's next ``XAUTOCLAIM`` sweep resumes (see ``reclaim``).
        self._reclaim_cursor: dict[str, str] = {}

    async def ensure_group(self) -> None:
        """Create the consumer group (and the stream) once; from id 0, so entries written
        before any worker existed are delivered too."""
        with contextlib.suppress(ResponseError):  # BUSYGROUP: it exists
            await self.redis.xgroup_create(self.stream, GROUP, id="0", mkstream=True)

    async def read(self, consumer: str, count: int, block_ms: int) -> list[Delivery]:
        """New entries for ``consumer``, waiting up to ``block_ms`` for the first."""
        try:
            answer = await self.redis.xreadgroup(
                GROUP, consumer, {self.stream: ">"}, count=count, block=block_ms
            )
        except ResponseError as exc:
            if "NOGROUP" not in str(exc):
                raise
            await self.ensure_group()  # the stream was deleted (FLUSHALL): recreate
            return []
        deliveries: list[Delivery] = []
        for _stream, entries in answer or []:
            for entry_id, fields in entries:
                deliveries.append(Delivery(_text(entry_id), _job_of(fields)))
        return deliveries

    async def reclaim(self, consumer: str, min_idle_ms: int, count: int) -> list[Delivery]:
        """Take over entries whose worker stopped renewing them (it died), with how many
        times each has been delivered (to stop a job that kills every worker).

        ``XAUTOCLAIM`` examines at most ``10 × count`` pending entries per call and returns
        where it stopped. Each call resumes from the cursor the previous one returned for
        this consumer (back to ``0-0`` once Redis says the sweep went round), so idle
        entries behind any number of live, renewed ones are reached within a bounded
        number of calls; always starting at ``0-0`` would scan the same live entries
        forever."""
        start = self._reclaim_cursor.get(consumer, "0-0")
        answer = await self.redis.xautoclaim(
            self.stream, GROUP, consumer, min_idle_ms, start_id=start, count=count
        )
        self._reclaim_cursor[consumer] = _text(answer[0]) if answer else "0-0"
        claimed = answer[1] if len(answer) > 1 else []
        deleted = answer[2] if len(answer) > 2 else []
        if deleted:  # entries acknowledged and deleted under our feet: nothing to do
            await self.ack(*(_text(d) for d in deleted))
        if not claimed:
            return []
        ids = [_text(entry_id) for entry_id, _ in claimed]
        counts: dict[str, int] = {}
        pending = await self.redis.xpending_range(
            self.stream,
            GROUP,
            min=min(ids, key=_entry_order),
            max=max(ids, key=_entry_order),
            count=len(ids) + 100,
            consumername=consumer,
        )
        for row in pending:
            counts[_text(row["message_id"])] = int(row["times_delivered"])
        return [
            Delivery(_text(entry_id), _job_of(fields), counts.get(_text(entry_id), 2))
            for entry_id, fields in claimed
        ]

    async def renew(self, consumer: str, entry_ids: list[str]) -> None:
        """Reset the idle time of entries still being worked on (the job's lease)."""
        if entry_ids:
            await self.redis.xclaim(self.stream, GROUP, consumer, 0, entry_ids, justid=True)

    async def release(self, consumer: str, entry_ids: list[str], idle_ms: int) -> None:
        """On shutdown: mark unfinished entries idle for ``idle_ms`` so that another
        worker's next sweep takes them over at once instead of after a full lease."""
        if entry_ids:
            await self.redis.xclaim(
                self.stream, GROUP, consumer, 0, entry_ids, idle=idle_ms, justid=True
            )

    async def ack(self, *entry_ids: str) -> None:
        if entry_ids:
            await self._scripts.jobs_ack(keys=[self.stream], args=[GROUP, *entry_ids])

    async def promote(self, batch: int = 200) -> float | None:
        """Move due delayed jobs into the stream; seconds until the next one is due."""
        _moved, wait_ms = await self._scripts.jobs_promote(
            keys=[self.schedule, self.stream], args=[batch]
        )
        wait_ms = int(wait_ms)
        return None if wait_ms < 0 else wait_ms / 1000

    async def backlog(self) -> dict[str, int]:
        """Entries waiting or being worked on, and delayed jobs (for ops and metrics)."""
        pipe = self.redis.pipeline(transaction=False)
        pipe.xlen(self.stream)
        pipe.zcard(self.schedule)
        length, scheduled = await pipe.execute()
        return {"stream": int(length), "scheduled": int(scheduled)}

    async def prune_consumers(self, idle_ms: int) -> int:
        """Forget consumers (dead worker processes) idle this long with nothing pending."""
        removed = 0
        try:
            consumers = await self.redis.xinfo_consumers(self.stream, GROUP)
        except ResponseError:
            return 0
        for info in consumers:
            name = _text(info["name"])
            if int(info["pending"]) == 0 and int(info["idle"]) >= idle_ms:
                await self.redis.xgroup_delconsumer(self.stream, GROUP, name)
                removed += 1
        return removed
