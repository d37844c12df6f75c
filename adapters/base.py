"""The supplier adapter contract and the behaviour every adapter shares.

A supplier adapter declares what it is with class attributes (``name``, ``capabilities``,
``settings_model``, ``rate_limits``) and implements five private coroutines:
``_iter_catalog``, ``_get_product``, ``_place_order``, ``_get_order`` and ``_find_order``.
Everything else lives here, once, for every supplier: timeouts, retries with full-jitter
exponential backoff (tenacity) that honour ``Retry-After`` and ``X-RateLimit-Reset``, the
Redis-shared client-side rate limiter, the circuit breaker, metrics, mapping of transport
failures into the error taxonomy, and the resolution of ambiguous order placements by
reconciliation.

The public coroutines (``iter_catalog``, ``get_product``, ``place_order``, ``get_order``,
``find_order``) are what the gateway calls; adapters do not override them.
"""

from __future__ import annotations

import asyncio
import datetime
import email.utils
import logging
import math
import re
import time
from abc import ABC, abstractmethod
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextvars import ContextVar
from typing import Any, ClassVar

import httpx
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_attempt,
    stop_before_delay,
    wait_random_exponential,
)

from adapters import ids, metrics
from adapters.breaker import BreakerState, CircuitBreaker
from adapters.config import SupplierSettings
from adapters.errors import (
    AmbiguousOutcomeError,
    AuthenticationError,
    CircuitOpenError,
    FatalError,
    NotFoundError,
    RateLimitedError,
    RetriableError,
    SupplierError,
    SupplierTimeout,
    UpstreamBusyError,
)
from adapters.http_errors import read_error
from adapters.keys import adapter_state_key, upstream_rate_key
from adapters.models import (
    Capability,
    CatalogPage,
    OrderLine,
    ProductDetail,
    UpstreamOrder,
)
from adapters.ratelimit import Admission, Priority, RateLimit, RedisRateLimiter, SlotRefused

_REFERENCE = re.compile(r"^[\x21-\x7e]{1,64}$")
_BREAKER_GAUGE = {BreakerState.CLOSED: 0, BreakerState.HALF_OPEN: 1, BreakerState.OPEN: 2}
#: One line per upstream HTTP request: never the URL (query strings), never a header.
_log = logging.getLogger("adapters.upstream")
_ATTEMPT: ContextVar[int] = ContextVar("upstream_attempt", default=1)
#: The priority (and, for detail reads, the caller) of the calls made in this context:
#: set by the public coroutines, read by the limiter. Unclassified calls are syncs.
_CALL_CLASS: ContextVar[tuple[Priority, str | None]] = ContextVar(
    "upstream_call_class", default=(Priority.SYNC, None)
)
#: Awaited once per attempt just before the request leaves (``request(on_send=...)``).
_ON_SEND: ContextVar[Callable[[], Awaitable[None]] | None] = ContextVar(
    "upstream_on_send", default=None
)


def retry_after_seconds(response: httpx.Response, *, now: float | None = None) -> float | None:
    """The delay an upstream asks for: ``Retry-After`` (seconds or HTTP date), else
    ``X-RateLimit-Reset`` (a Unix timestamp, or seconds when the value is small)."""
    now = time.time() if now is None else now
    value = response.headers.get("retry-after")
    if value:
        try:
            seconds = float(value)
        except ValueError:
            try:
                when = email.utils.parsedate_to_datetime(value)
            except (TypeError, ValueError):
                pass
            else:
                # An HTTP date is always GMT; "-0000" parses as naive (would mean local time).
                if when.tzinfo is None:
                    when = when.replace(tzinfo=datetime.UTC)
                return max(0.0, when.timestamp() - now)
        else:
            if math.isfinite(seconds):
                return max(0.0, seconds)
    reset = response.headers.get("x-ratelimit-reset")
    if reset:
        try:
            number = float(reset)
        except ValueError:
            return None
        if not math.isfinite(number):
            return None
        return max(0.0, number - now) if number > 1_000_000_000 else max(0.0, number)
    return None


class SupplierAdapter(ABC):
    """One upstream supplier, mapped into the unified model.

    Subclasses set the class attributes and implement the five abstract coroutines.
    Construct with the supplier's validated settings, an ``httpx.AsyncClient`` (tests hand
    in one whose transport is the sandbox app, or one pointed at a sandbox on loopback),
    and a Redis client used for the shared rate limiter and any reconciliation state.
    """

    #: Stable supplier name: the namespace of product ids, a metrics label, a settings key.
    name: ClassVar[str]
    #: Human-readable name for docs and ``GET /v1/suppliers``.
    display_name: ClassVar[str]
    #: Optional features the gateway may rely on.
    capabilities: ClassVar[frozenset[Capability]] = frozenset()
    #: The pydantic model validating this adapter's settings.
    settings_model: ClassVar[type[SupplierSettings]] = SupplierSettings
    #: Documented upstream limits per bucket; ``request(bucket=...)`` names one.
    rate_limits: ClassVar[Mapping[str, RateLimit]] = {}
    #: Most lines one upstream order may carry (``None``: any). The order layer splits
    #: larger orders into several upstream orders, each under its own reference.
    max_lines_per_order: ClassVar[int | None] = None
    #: Whether ``auth_headers(refresh=True)`` can renew credentials after a 401.
    refreshable_auth: ClassVar[bool] = False

    def __init__(
        self,
        settings: SupplierSettings,
        *,
        http: httpx.AsyncClient,
        redis: Any,
        key_prefix: str = "gw",
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.settings = settings
        self.http = http
        self.redis = redis
        self.key_prefix = key_prefix
        self._sleep = sleep
        self._limiter = RedisRateLimiter(redis) if redis is not None else None
        self.breaker = CircuitBreaker(
            failure_threshold=settings.breaker.failure_threshold,
            reset_timeout=settings.breaker.reset_timeout,
            on_change=lambda s: metrics.BREAKER_STATE.labels(self.name).set(_BREAKER_GAUGE[s]),
        )
        metrics.BREAKER_STATE.labels(self.name).set(0)
        self._timeout = httpx.Timeout(settings.timeouts.read, connect=settings.timeouts.connect)
        #: Counters for sync summaries and tests; reset freely.
        self.stats: dict[str, int] = {"requests": 0, "rate_limited": 0, "retries": 0}

    # ------------------------------------------------------------- sandbox

    @classmethod
    def create_sandbox(cls, **options: Any) -> Any:
        """A Starlette app simulating this upstream, with ``app.state.control`` holding its
        ``adapters.sandbox_kit.SandboxControl``. Every adapter ships one: the contract suite
        and the demo run use it. ``options`` are sandbox-specific (catalog size, seed, ...)."""
        raise NotImplementedError(f"{cls.__name__} ships no sandbox")

    @classmethod
    def sandbox_settings(cls, base_url: str) -> dict[str, Any]:
        """Settings values (``base_url``, credentials) that talk to a sandbox at ``base_url``."""
        raise NotImplementedError(f"{cls.__name__} ships no sandbox")

    # ------------------------------------------------------------------ ids

    def product_id(self, upstream_id: str | int) -> str:
        return ids.product_id(self.name, upstream_id)

    def variant_id(self, upstream_id: str | int, key: str) -> str:
        return ids.variant_id(self.name, upstream_id, key)

    def split_variant_id(self, variant_id: str) -> tuple[str, str]:
        """``<name>:<upstream id>:<key>`` → (upstream id, key); ``NotFoundError`` otherwise."""
        ref = ids.parse_variant_id(variant_id)
        if ref is None or ref.supplier != self.name:
            raise NotFoundError(f"{variant_id!r} is not a {self.name} variant", supplier=self.name)
        return ref.upstream_id, ref.key

    def redis_key(self, *parts: str) -> str:
        """A key for adapter-private state, hash-tagged per supplier (one Cluster slot)."""
        return adapter_state_key(self.key_prefix, self.name, *parts)

    # ------------------------------------------------------------- contract

    async def iter_catalog(self) -> AsyncGenerator[CatalogPage, None]:
        """Every product the supplier offers us, page by page, in a stable order. Its
        calls are syncs: they take what orders and detail reads leave of the budget."""
        pages = aiter(self._iter_catalog())
        while True:
            # Classed per step: a generator's body runs in its consumer's context.
            token = _CALL_CLASS.set((Priority.SYNC, None))
            try:
                page = await anext(pages)
            except StopAsyncIteration:
                return
            finally:
                _CALL_CLASS.reset(token)
            yield page

    async def get_product(self, upstream_id: str, *, caller: str | None = None) -> ProductDetail:
        """One product's full detail; ``NotFoundError`` when the upstream has none.

        A detail read never queues for the rate limit: when the part of the budget not
        kept for orders (or ``caller``'s share of it) is spent, it raises
        ``UpstreamBusyError`` at once, without sending anything."""
        token = _CALL_CLASS.set((Priority.DETAIL, caller))
        try:
            return await self._get_product(upstream_id)
        finally:
            _CALL_CLASS.reset(token)

    async def place_order(self, reference: str, lines: Sequence[OrderLine]) -> UpstreamOrder:
        """Place one upstream order, at most once per ``reference``, whatever fails.

        ``reference`` is derived by the caller from its own order, so a retry from any
        instance after any crash is the same request upstream. A ``FatalError`` means
        nothing was bought under ``reference`` by this call (the order layer may then
        buy elsewhere): a refusal of a resend made after an unknown outcome is raised as
        ``AmbiguousOutcomeError`` instead. When the outcome of an
        attempt is unknown (timeout after sending, dropped connection, 5xx) the order is
        looked up by reference; only when the upstream positively has no such order is it
        sent again, under the same reference. If that still leaves the outcome unknown,
        ``AmbiguousOutcomeError`` reaches the caller, which must hold the order for review.
        """
        if not _REFERENCE.match(reference):
            raise ValueError("reference must be 1-64 printable ASCII characters")
        if not lines:
            raise ValueError("an order needs at least one line")
        token = _CALL_CLASS.set((Priority.ORDER, None))
        try:
            return await self._place_and_reconcile(reference, lines)
        finally:
            _CALL_CLASS.reset(token)

    async def _place_and_reconcile(
        self, reference: str, lines: Sequence[OrderLine]
    ) -> UpstreamOrder:
        sends = self.settings.reconcile_attempts
        cause: SupplierError | None = None
        for send in range(1, sends + 1):
            try:
                return await self._place_order(reference, lines)
            except AmbiguousOutcomeError as exc:
                cause = exc
            except FatalError as exc:
                if cause is None:
                    raise
                # A refusal of a resend says nothing certain about the first send: the
                # look-up may have raced with it still in flight. FatalError must mean
                # "nothing was bought" (the order layer fails over on it), so it stays
                # unknown.
                metrics.AMBIGUOUS_OUTCOMES.labels(self.name, "refused_after_unknown").inc()
                raise AmbiguousOutcomeError(
                    f"order {reference} refused on a resend after an unknown outcome",
                    supplier=self.name,
                ) from exc
            found, answered, lookup_error = await self._reconcile(reference)
            if found is not None:
                metrics.AMBIGUOUS_OUTCOMES.labels(self.name, "found").inc()
                return found
            if not answered:
                # No look-up got an answer, so absence is not verified: sending again
                # could buy twice.
                cause = lookup_error or cause
                break
            if send < sends:
                metrics.AMBIGUOUS_OUTCOMES.labels(self.name, "absent_resent").inc()
        metrics.AMBIGUOUS_OUTCOMES.labels(self.name, "unresolved").inc()
        raise AmbiguousOutcomeError(
            f"order {reference} still unknown after reconciliation", supplier=self.name
        ) from cause

    async def get_order(self, upstream_id: str) -> UpstreamOrder:
        """The upstream order's current state and, once delivered, its codes."""
        token = _CALL_CLASS.set((Priority.ORDER, None))
        try:
            return await self._get_order(upstream_id)
        finally:
            _CALL_CLASS.reset(token)

    async def find_order(self, reference: str) -> UpstreamOrder | None:
        """The upstream order placed under ``reference``, or ``None`` if there is none."""
        token = _CALL_CLASS.set((Priority.ORDER, None))
        try:
            return await self._find_order(reference)
        finally:
            _CALL_CLASS.reset(token)

    async def _reconcile(
        self, reference: str
    ) -> tuple[UpstreamOrder | None, bool, SupplierError | None]:
        """Look the order up ``reconcile_attempts`` times: (order found, whether any look-up
        answered, the last look-up error). A look-up that fails (even with a fatal error
        such as 401) proves nothing about the order, so it never counts as "absent"."""
        answered = False
        last_error: SupplierError | None = None
        for attempt in range(self.settings.reconcile_attempts):
            if attempt:
                await self._sleep(self.settings.reconcile_delay)
            try:
                found = await self._find_order(reference)
            except SupplierError as exc:
                last_error = exc
                continue
            if found is not None:
                return found, True, None
            answered = True
        return None, answered, last_error

    # ------------------------------------------------ what an adapter writes

    @abstractmethod
    def _iter_catalog(self) -> AsyncIterator[CatalogPage]:
        """Yield the whole catalog, page by page, as unified ``Product``s.

        Must reach the end of the upstream's pagination (not stop at a default page size),
        yield each product exactly once, and give every product and variant an id that does
        not change between runs (see ``adapters.models``). Use ``self.request`` for every
        call so that retries, rate limiting and error mapping apply. Pages are yielded as
        soon as they arrive: the caller may stream them into storage.
        """

    @abstractmethod
    async def _get_product(self, upstream_id: str) -> ProductDetail:
        """Fetch one product from the upstream's detail endpoint.

        ``upstream_id`` is the part of the product id after ``<name>:``. Raise
        ``NotFoundError`` when the upstream answers that it does not exist.
        """

    @abstractmethod
    async def _place_order(self, reference: str, lines: Sequence[OrderLine]) -> UpstreamOrder:
        """Send one order-creation request carrying ``reference`` as the upstream's
        idempotency key (a header, a ``client_reference`` field, ...), with
        ``idempotent=False`` in ``self.request``.

        Return the order as the upstream answered (often ``PENDING``). If the upstream says
        the reference was already used, return that existing order (``self._find_order``).
        Let ``AmbiguousOutcomeError`` propagate: ``place_order`` reconciles it. Raise
        ``RejectedError`` for orders the upstream refuses (stock, face value, limits).
        """

    @abstractmethod
    async def _get_order(self, upstream_id: str) -> UpstreamOrder:
        """Fetch one upstream order by the upstream's own id, with codes once delivered."""

    @abstractmethod
    async def _find_order(self, reference: str) -> UpstreamOrder | None:
        """Find the order placed under ``reference`` (reconciliation), or return ``None``.

        Return ``None`` only when the upstream positively has no such order: the caller
        then sends the order again under the same reference.
        """

    # -------------------------------------------------------------- hooks

    async def auth_headers(self, *, refresh: bool = False) -> dict[str, str]:
        """Headers that authenticate a request. ``refresh=True`` follows a 401: obtain new
        credentials (re-login) before answering. Default: none."""
        return {}

    def classify_response(self, response: httpx.Response) -> SupplierError | None:
        """Map an upstream answer to the taxonomy: ``None`` for success.

        This is the one place an upstream's error shape is read; override it to switch on
        the upstream's error codes and call ``super()`` for the status-based defaults.
        """
        answer = read_error(response, self.name)
        if answer is None:
            return None
        status, message = answer.status, answer.message
        if status == 429:
            return answer.error(
                RateLimitedError,
                message or "rate limited",
                retry_after=retry_after_seconds(response),
            )
        if status in (401, 403):
            return answer.error(AuthenticationError, message or "credentials refused")
        if status == 404:
            return answer.error(NotFoundError, message or "not found")
        if status >= 500:
            return answer.error(RetriableError, message or "upstream error")
        return answer.error(FatalError, message or "request refused")

    # ------------------------------------------------------- shared calls

    def bucket_rate(self, bucket: str) -> RateLimit | None:
        rate = self.settings.rate_limits.get(bucket) or self.rate_limits.get(bucket)
        return rate.scaled(self.settings.rate_limit_safety) if rate else None

    async def request(
        self,
        method: str,
        path: str,
        *,
        operation: str,
        bucket: str = "default",
        idempotent: bool | None = None,
        authenticate: bool = True,
        on_send: Callable[[], Awaitable[None]] | None = None,
        **kwargs: Any,
    ) -> httpx.Response:
        """Send one logical upstream call and return its successful response.

        Idempotent calls (by default every method but POST/PATCH) are retried on
        ``RetriableError`` with full-jitter exponential backoff, never sooner than the
        upstream asked, within ``retries.max_attempts`` and ``retries.max_total_seconds``.
        A non-idempotent call is retried only when it certainly did not take effect
        (connection refused, 429, 401 before re-login); once it may have reached the
        upstream, failures become ``AmbiguousOutcomeError``.

        ``on_send`` is awaited before each attempt leaves, after its rate-limit wait: the
        moment a request is really sent (an order ledger records it then, not before a
        wait of unknown length). If it raises, that attempt is not sent.
        """
        # Set (or cleared) for this call only: a call made inside it (a re-login) is not
        # the request the hook is about.
        token = _ON_SEND.set(on_send)
        try:
            return await self._request(
                method, path, operation, bucket, idempotent, authenticate, kwargs
            )
        finally:
            _ON_SEND.reset(token)

    async def _request(
        self,
        method: str,
        path: str,
        operation: str,
        bucket: str,
        idempotent: bool | None,
        authenticate: bool,
        kwargs: dict[str, Any],
    ) -> httpx.Response:
        if idempotent is None:
            idempotent = method.upper() not in ("POST", "PATCH")
        retry = self.settings.retries
        retrying = AsyncRetrying(
            stop=stop_after_attempt(retry.max_attempts)
            | stop_before_delay(retry.max_total_seconds),
            wait=self._backoff,
            retry=retry_if_exception(
                lambda e: (
                    isinstance(e, RetriableError)
                    and not isinstance(e, CircuitOpenError | UpstreamBusyError)
                )
            ),
            sleep=self._sleep,
            reraise=True,
            before_sleep=lambda _: self._count_retry(operation),
        )
        async for attempt in retrying:
            with attempt:
                _ATTEMPT.set(attempt.retry_state.attempt_number)
                return await self._attempt(
                    method, path, operation, bucket, idempotent, authenticate, kwargs
                )
        raise AssertionError("unreachable: tenacity reraises")  # pragma: no cover

    def _backoff(self, state: RetryCallState) -> float:
        retry = self.settings.retries
        jitter = wait_random_exponential(multiplier=retry.backoff_base, max=retry.backoff_max)(
            state
        )
        exc = state.outcome.exception() if state.outcome else None
        hinted = getattr(exc, "retry_after", None)
        return max(jitter, float(hinted)) if hinted else jitter

    def _count_retry(self, operation: str) -> None:
        self.stats["retries"] += 1
        metrics.UPSTREAM_RETRIES.labels(self.name, operation).inc()

    async def _attempt(
        self,
        method: str,
        path: str,
        operation: str,
        bucket: str,
        idempotent: bool,
        authenticate: bool,
        kwargs: dict[str, Any],
    ) -> httpx.Response:
        kwargs = dict(kwargs)
        extra_headers: dict[str, str] = dict(kwargs.pop("headers", None) or {})
        refreshed = False
        while True:
            headers = dict(extra_headers)
            if authenticate:
                headers.update(await self.auth_headers(refresh=refreshed))
            response = await self._send(
                method, path, operation, bucket, idempotent, headers, kwargs
            )
            error = self.classify_response(response)
            if error is None:
                return response
            if (
                response.status_code == 401
                and authenticate
                and self.refreshable_auth
                and not refreshed
            ):
                # A 401 was not processed: renew the credentials and send it once more.
                refreshed = True
                continue
            if response.status_code >= 500 and not idempotent:
                raise AmbiguousOutcomeError(
                    f"{operation}: upstream answered {response.status_code}; it may still be "
                    "processed",
                    supplier=self.name,
                    upstream_status=response.status_code,
                    upstream_code=error.upstream_code,
                ) from error
            raise error

    async def _send(
        self,
        method: str,
        path: str,
        operation: str,
        bucket: str,
        idempotent: bool,
        headers: dict[str, str],
        kwargs: dict[str, Any],
    ) -> httpx.Response:
        if not self.breaker.allow():
            raise CircuitOpenError(
                f"circuit open for {self.name}",
                supplier=self.name,
                retry_after=self.breaker.retry_after(),
            )
        rate = self.bucket_rate(bucket)
        if rate is not None and self._limiter is not None:
            try:
                waited = await self._limiter.acquire(
                    upstream_rate_key(self.key_prefix, self.name, bucket),
                    rate,
                    self._admission(),
                )
            except SlotRefused as exc:
                self.breaker.release_probe()
                raise UpstreamBusyError(
                    f"{operation}: {exc}", supplier=self.name, retry_after=exc.wait_seconds
                ) from None
            except BaseException:
                # Nothing was sent (Redis down, caller cancelled): a half-open probe slot
                # taken by allow() must be handed back, or the circuit never closes again.
                self.breaker.release_probe()
                raise
            metrics.UPSTREAM_LIMITER_WAIT.labels(self.name, bucket).observe(waited)
        on_send = _ON_SEND.get()
        if on_send is not None:
            try:
                await on_send()
            except BaseException:
                self.breaker.release_probe()
                raise
        url = self.settings.base_url.rstrip("/") + path
        self.stats["requests"] += 1
        started = time.perf_counter()
        outcome = "ok"
        try:
            async with asyncio.timeout(self.settings.timeouts.total):
                response = await self.http.request(
                    method, url, headers=headers, timeout=self._timeout, **kwargs
                )
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
            # Nothing reached the upstream: safe to retry whatever the method.
            outcome = "connect_error"
            self.breaker.record_failure()
            raise RetriableError(
                f"{operation}: cannot connect ({exc!r})", supplier=self.name
            ) from exc
        except (httpx.TimeoutException, TimeoutError) as exc:
            outcome = "timeout"
            self.breaker.record_failure()
            if not idempotent:
                raise AmbiguousOutcomeError(
                    f"{operation}: no answer in time; it may have been applied", supplier=self.name
                ) from exc
            raise SupplierTimeout(f"{operation}: no answer in time", supplier=self.name) from exc
        except httpx.TransportError as exc:
            outcome = "transport_error"
            self.breaker.record_failure()
            if not idempotent:
                raise AmbiguousOutcomeError(
                    f"{operation}: connection failed mid-request ({type(exc).__name__})",
                    supplier=self.name,
                ) from exc
            raise RetriableError(
                f"{operation}: connection failed ({type(exc).__name__})", supplier=self.name
            ) from exc
        except BaseException:
            # Cancelled by the caller, or a client-side error (bad URL, decoding): says
            # nothing about the upstream, but must not keep the half-open probe slot.
            outcome = "error"
            self.breaker.release_probe()
            raise
        finally:
            elapsed = time.perf_counter() - started
            metrics.UPSTREAM_LATENCY.labels(self.name, operation).observe(elapsed)
            if outcome != "ok":
                metrics.UPSTREAM_CALLS.labels(self.name, operation, outcome).inc()
                _log_call(self.name, operation, method, outcome, None, elapsed)

        status = response.status_code
        remaining = response.headers.get("x-ratelimit-remaining")
        if remaining is not None and remaining.isdigit():
            metrics.UPSTREAM_QUOTA_REMAINING.labels(self.name).set(int(remaining))
        if status == 429:
            self.stats["rate_limited"] += 1
            metrics.UPSTREAM_429.labels(self.name).inc()
            self.breaker.release_probe()
        elif status >= 500:
            self.breaker.record_failure()
        else:
            self.breaker.record_success()
        outcome = "2xx" if status < 300 else f"{status // 100}xx" if status != 429 else "429"
        metrics.UPSTREAM_CALLS.labels(self.name, operation, outcome).inc()
        _log_call(self.name, operation, method, outcome, status, elapsed)
        return response

    def _admission(self) -> Admission:
        """How the call being sent may take a rate-limit slot: its class, from the public
        coroutine it runs under, with this supplier's settings."""
        priority, caller = _CALL_CLASS.get()
        settings = self.settings
        return Admission(
            priority=priority,
            reserve=settings.order_reserve,
            max_wait=settings.limiter_max_wait_seconds if priority is Priority.ORDER else None,
            caller=caller,
            caller_share=settings.detail_share_per_caller,
        )

    async def aclose(self) -> None:
        """Release resources the adapter owns itself (not the injected client)."""


def _log_call(
    supplier: str, operation: str, method: str, outcome: str, status: int | None, elapsed: float
) -> None:
    level = logging.INFO if outcome in ("2xx", "3xx", "4xx") else logging.WARNING
    if _log.isEnabledFor(level):
        _log.log(
            level,
            "upstream %s %s %s",
            supplier,
            operation,
            outcome,
            extra={
                "supplier": supplier,
                "operation": operation,
                "method": method.upper(),
                "outcome": outcome,
                "upstream_status": status,
                "duration_ms": round(elapsed * 1000, 3),
                "attempt": _ATTEMPT.get(),
            },
        )
