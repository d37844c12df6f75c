"""The shared adapter machinery in ``adapters.base``: retries, backoff, error mapping,
re-authentication, the breaker and limiter hooks, and order reconciliation.

Upstreams here are in-process ``httpx.MockTransport`` handlers (each test scripts exactly
what the upstream answers); the contract suite covers the same behaviour over real HTTP.
"""

from __future__ import annotations

import asyncio
import email.utils
import time
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

import httpx
import pytest
from prometheus_client import REGISTRY

from adapters.base import SupplierAdapter, retry_after_seconds
from adapters.breaker import BreakerState, CircuitBreaker
from adapters.config import SupplierSettings
from adapters.errors import (
    AmbiguousOutcomeError,
    AuthenticationError,
    CircuitOpenError,
    FatalError,
    NotFoundError,
    RateLimitedError,
    RejectedError,
    RetriableError,
    SupplierError,
    SupplierTimeout,
)
from adapters.models import (
    CatalogPage,
    OrderLine,
    ProductDetail,
    UpstreamOrder,
    UpstreamOrderState,
)
from adapters.ratelimit import RateLimit, RedisRateLimiter
from gateway.redis_keys import RedisKeys

Handler = Callable[[httpx.Request], Any]
NOW = 1_700_000_000.0


class TinyAdapter(SupplierAdapter):
    """The least an adapter can be; tests call ``request`` and ``place_order`` on it."""

    name = "tiny"
    display_name = "Tiny"
    rate_limits = {"default": RateLimit(limit=6000, period_seconds=60)}

    def __init__(self, *args: Any, token: str = "stale", **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.token = token
        self.refreshes = 0

    async def auth_headers(self, *, refresh: bool = False) -> dict[str, str]:
        if refresh:
            self.refreshes += 1
            self.token = "fresh"
        return {"Authorization": f"Bearer {self.token}"}

    async def _iter_catalog(self) -> AsyncIterator[CatalogPage]:
        yield CatalogPage(products=(), page=1)

    async def _get_product(self, upstream_id: str) -> ProductDetail:
        raise NotImplementedError

    async def _place_order(self, reference: str, lines: Sequence[OrderLine]) -> UpstreamOrder:
        raise NotImplementedError

    async def _get_order(self, upstream_id: str) -> UpstreamOrder:
        raise NotImplementedError

    async def _find_order(self, reference: str) -> UpstreamOrder | None:
        raise NotImplementedError


class Refreshable(TinyAdapter):
    refreshable_auth = True


class Sleeps:
    """A fake ``sleep``: records the delays, returns at once."""

    def __init__(self) -> None:
        self.calls: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


class Upstream:
    """A scripted upstream: answers (or raises) the next item per request."""

    def __init__(self, *script: Any) -> None:
        self.script = list(script)
        self.requests: list[httpx.Request] = []

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        item = self.script.pop(0) if len(self.script) > 1 else self.script[0]
        if isinstance(item, BaseException):
            raise item
        if callable(item):
            return await item(request)
        return item


def settings(**overrides: Any) -> SupplierSettings:
    values: dict[str, Any] = {
        "base_url": "http://upstream.test/api",
        "retries": {"max_attempts": 4, "backoff_base": 0.01, "backoff_max": 0.05},
        "timeouts": {"connect": 1.0, "read": 1.0, "total": 2.0},
    }
    for key, value in overrides.items():
        values[key] = {**values[key], **value} if isinstance(values.get(key), dict) else value
    return SupplierSettings.model_validate(values)


@pytest.fixture
async def make() -> AsyncIterator[Callable[..., tuple[TinyAdapter, Sleeps]]]:
    clients: list[httpx.AsyncClient] = []

    def build(
        upstream: Handler, cls: type[TinyAdapter] = TinyAdapter, redis: Any = None, **kw: Any
    ) -> tuple[TinyAdapter, Sleeps]:
        http = httpx.AsyncClient(transport=httpx.MockTransport(upstream))
        clients.append(http)
        sleeps = Sleeps()
        key_prefix = kw.pop("key_prefix", "gw")
        adapter = cls(settings(**kw), http=http, redis=redis, key_prefix=key_prefix, sleep=sleeps)
        return adapter, sleeps

    yield build
    for client in clients:
        await client.aclose()


def answer(status: int, body: Any = None, **headers: str) -> httpx.Response:
    return httpx.Response(status, json=body if body is not None else {}, headers=headers)


def upstream_error(status: int, code: str) -> httpx.Response:
    return answer(status, {"error": {"code": code, "message": f"{code} happened"}})


# ---------------------------------------------------------------- retry hints


def hinted(**headers: str) -> float | None:
    return retry_after_seconds(httpx.Response(429, headers=headers), now=NOW)


def http_date(timestamp: float) -> str:
    return email.utils.formatdate(timestamp, usegmt=True)


def test_retry_after_in_seconds() -> None:
    assert hinted(**{"Retry-After": "7"}) == 7.0
    assert hinted(**{"Retry-After": "1.5"}) == 1.5
    assert hinted(**{"Retry-After": "-3"}) == 0.0


def test_retry_after_as_http_date() -> None:
    assert hinted(**{"Retry-After": http_date(NOW + 30)}) == pytest.approx(30.0)
    assert hinted(**{"Retry-After": http_date(NOW - 30)}) == 0.0


def test_retry_after_date_without_zone_is_gmt_not_local_time(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    naive = http_date(NOW + 30).replace("GMT", "-0000")
    monkeypatch.setenv("TZ", "Asia/Tokyo")  # a local zone far from GMT
    time.tzset()
    try:
        assert hinted(**{"Retry-After": naive}) == pytest.approx(30.0)
    finally:
        monkeypatch.undo()
        time.tzset()


def test_ratelimit_reset_as_epoch_or_seconds() -> None:
    assert hinted(**{"X-RateLimit-Reset": str(int(NOW + 12))}) == pytest.approx(12.0)
    assert hinted(**{"X-RateLimit-Reset": str(int(NOW - 12))}) == 0.0
    assert hinted(**{"X-RateLimit-Reset": "20"}) == 20.0


def test_retry_after_wins_over_ratelimit_reset_and_garbage_falls_back() -> None:
    reset = str(int(NOW + 12))
    assert hinted(**{"Retry-After": "3", "X-RateLimit-Reset": reset}) == 3.0
    assert hinted(**{"Retry-After": "soon", "X-RateLimit-Reset": reset}) == pytest.approx(12.0)


@pytest.mark.parametrize("value", ["inf", "nan", "soon", ""])
def test_unusable_hints_give_none(value: str) -> None:
    assert hinted(**{"Retry-After": value}) is None
    assert hinted(**{"X-RateLimit-Reset": value}) is None
    assert hinted() is None


# ------------------------------------------------------------ error mapping


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (401, AuthenticationError),
        (403, AuthenticationError),
        (404, NotFoundError),
        (400, FatalError),
        (418, FatalError),
        (500, RetriableError),
        (503, RetriableError),
    ],
)
async def test_status_defaults_map_to_the_taxonomy(
    make: Callable[..., tuple[TinyAdapter, Sleeps]], status: int, error: type[SupplierError]
) -> None:
    adapter, _ = make(Upstream(upstream_error(status, "some_code")))
    response = httpx.Response(status, json={"error": {"code": "some_code", "message": "m"}})
    classified = adapter.classify_response(response)
    assert type(classified) is error
    assert classified.upstream_code == "some_code"
    assert classified.upstream_status == status
    assert classified.supplier == "tiny"


async def test_rate_limited_answers_carry_their_hint(
    make: Callable[..., tuple[TinyAdapter, Sleeps]],
) -> None:
    adapter, _ = make(Upstream(answer(200)))
    error = adapter.classify_response(
        httpx.Response(429, text="slow down", headers={"Retry-After": "4"})
    )
    assert isinstance(error, RateLimitedError)
    assert error.retry_after == 4.0
    assert adapter.classify_response(httpx.Response(204)) is None


# ----------------------------------------------------------- idempotent calls


async def test_reads_are_retried_up_to_max_attempts(
    make: Callable[..., tuple[TinyAdapter, Sleeps]],
) -> None:
    upstream = Upstream(upstream_error(500, "boom"))
    adapter, sleeps = make(upstream)
    with pytest.raises(RetriableError) as raised:
        await adapter.request("GET", "/products", operation="list")
    assert raised.value.upstream_status == 500
    assert len(upstream.requests) == 4
    assert len(sleeps.calls) == 3
    assert adapter.stats == {"requests": 4, "rate_limited": 0, "retries": 3}
    assert str(upstream.requests[0].url) == "http://upstream.test/api/products"


async def test_a_read_succeeds_once_the_upstream_recovers(
    make: Callable[..., tuple[TinyAdapter, Sleeps]],
) -> None:
    upstream = Upstream(
        upstream_error(502, "x"), httpx.RemoteProtocolError("reset"), answer(200, {"ok": 1})
    )
    adapter, _ = make(upstream)
    response = await adapter.request("GET", "/products", operation="list")
    assert response.json() == {"ok": 1}
    assert len(upstream.requests) == 3


@pytest.mark.parametrize(("status", "error"), [(404, NotFoundError), (400, FatalError)])
async def test_fatal_answers_are_not_retried(
    make: Callable[..., tuple[TinyAdapter, Sleeps]], status: int, error: type[SupplierError]
) -> None:
    upstream = Upstream(upstream_error(status, "nope"))
    adapter, sleeps = make(upstream)
    with pytest.raises(error):
        await adapter.request("GET", "/products/1", operation="get")
    assert len(upstream.requests) == 1
    assert sleeps.calls == []


async def test_read_timeouts_become_supplier_timeouts_after_retries(
    make: Callable[..., tuple[TinyAdapter, Sleeps]],
) -> None:
    upstream = Upstream(httpx.ReadTimeout("slow"))
    adapter, _ = make(upstream, retries={"max_attempts": 2})
    with pytest.raises(SupplierTimeout):
        await adapter.request("GET", "/products", operation="list")
    assert len(upstream.requests) == 2


async def test_the_total_bound_applies_to_a_hanging_answer(
    make: Callable[..., tuple[TinyAdapter, Sleeps]],
) -> None:
    async def hang(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(5)
        return answer(200)

    upstream = Upstream(hang)
    adapter, _ = make(upstream, retries={"max_attempts": 1}, timeouts={"total": 0.05})
    with pytest.raises(SupplierTimeout):
        await adapter.request("GET", "/products", operation="list")


async def test_full_jitter_stays_within_the_exponential_ceiling(
    make: Callable[..., tuple[TinyAdapter, Sleeps]],
) -> None:
    base, cap, attempts = 0.1, 0.4, 5
    ceilings = [min(cap, base * 2**i) for i in range(attempts - 1)]
    samples: list[list[float]] = [[] for _ in ceilings]
    for _ in range(40):
        adapter, sleeps = make(
            Upstream(upstream_error(500, "x")),
            retries={"max_attempts": attempts, "backoff_base": base, "backoff_max": cap},
        )
        with pytest.raises(RetriableError):
            await adapter.request("GET", "/x", operation="x")
        assert len(sleeps.calls) == attempts - 1
        for i, delay in enumerate(sleeps.calls):
            assert 0 <= delay <= ceilings[i] + 1e-9
            samples[i].append(delay)
    for ceiling, delays in zip(ceilings, samples, strict=True):
        # Full jitter: spread over [0, ceiling], not pinned near it (2^-40 to fail by luck).
        assert min(delays) < ceiling / 2 < max(delays)


async def test_a_hint_longer_than_the_total_budget_stops_without_sleeping(
    make: Callable[..., tuple[TinyAdapter, Sleeps]],
) -> None:
    upstream = Upstream(answer(429, {}, **{"Retry-After": "5"}))
    adapter, sleeps = make(upstream, retries={"max_attempts": 10, "max_total_seconds": 3.0})
    with pytest.raises(RateLimitedError) as raised:
        await adapter.request("GET", "/x", operation="x")
    assert raised.value.retry_after == 5.0
    assert len(upstream.requests) == 1
    assert sleeps.calls == []


async def test_retries_stop_within_max_total_seconds(
    make: Callable[..., tuple[TinyAdapter, Sleeps]],
) -> None:
    upstream = Upstream(answer(429, {}, **{"Retry-After": "0.05"}))
    adapter, _ = make(
        upstream,
        retries={"max_attempts": 100, "max_total_seconds": 0.2, "backoff_base": 0.001},
    )
    slept: list[float] = []

    async def real_sleep(seconds: float) -> None:
        slept.append(seconds)
        await asyncio.sleep(seconds)

    adapter._sleep = real_sleep
    with pytest.raises(RateLimitedError):
        await adapter.request("GET", "/x", operation="x")
    assert 1 <= len(upstream.requests) < 100
    assert all(s >= 0.05 for s in slept), "a retry came sooner than the upstream asked"
    assert sum(slept) < 0.2, "a retry started after max_total_seconds"


# ------------------------------------------------------- non-idempotent calls


async def test_post_timeout_is_ambiguous_and_not_resent(
    make: Callable[..., tuple[TinyAdapter, Sleeps]],
) -> None:
    upstream = Upstream(httpx.ReadTimeout("slow"), answer(201))
    adapter, _ = make(upstream)
    with pytest.raises(AmbiguousOutcomeError):
        await adapter.request("POST", "/orders", operation="order")
    assert len(upstream.requests) == 1


async def test_post_server_error_is_ambiguous_and_not_resent(
    make: Callable[..., tuple[TinyAdapter, Sleeps]],
) -> None:
    upstream = Upstream(upstream_error(500, "internal"), answer(201))
    adapter, _ = make(upstream)
    with pytest.raises(AmbiguousOutcomeError) as raised:
        await adapter.request("POST", "/orders", operation="order")
    assert raised.value.upstream_status == 500
    assert raised.value.upstream_code == "internal"
    assert not isinstance(raised.value, RetriableError)
    assert len(upstream.requests) == 1


async def test_post_connection_dropped_mid_request_is_ambiguous(
    make: Callable[..., tuple[TinyAdapter, Sleeps]],
) -> None:
    upstream = Upstream(httpx.RemoteProtocolError("peer closed"), answer(201))
    adapter, _ = make(upstream)
    with pytest.raises(AmbiguousOutcomeError):
        await adapter.request("POST", "/orders", operation="order")
    assert len(upstream.requests) == 1


async def test_post_connect_error_is_retried(
    make: Callable[..., tuple[TinyAdapter, Sleeps]],
) -> None:
    upstream = Upstream(httpx.ConnectError("refused"), answer(201, {"id": "o1"}))
    adapter, _ = make(upstream)
    response = await adapter.request("POST", "/orders", operation="order")
    assert response.json() == {"id": "o1"}
    assert len(upstream.requests) == 2


async def test_post_rate_limited_is_retried_after_the_hint(
    make: Callable[..., tuple[TinyAdapter, Sleeps]],
) -> None:
    upstream = Upstream(answer(429, {}, **{"Retry-After": "2"}), answer(201, {"id": "o1"}))
    adapter, sleeps = make(upstream)
    response = await adapter.request("POST", "/orders", operation="order")
    assert response.status_code == 201
    assert len(upstream.requests) == 2
    assert sleeps.calls and sleeps.calls[0] >= 2.0
    assert adapter.stats["rate_limited"] == 1


async def test_post_marked_idempotent_is_retried(
    make: Callable[..., tuple[TinyAdapter, Sleeps]],
) -> None:
    upstream = Upstream(upstream_error(500, "x"), answer(200, {"token": "t"}))
    adapter, _ = make(upstream)
    response = await adapter.request("POST", "/login", operation="login", idempotent=True)
    assert response.json() == {"token": "t"}
    assert len(upstream.requests) == 2


# ---------------------------------------------------------- re-authentication


def needs_fresh_token(request: httpx.Request) -> httpx.Response:
    if request.headers.get("authorization") == "Bearer fresh":
        return answer(200, {"ok": True})
    return upstream_error(401, "UNAUTHORIZED")


async def test_a_401_triggers_one_refresh_then_succeeds(
    make: Callable[..., tuple[TinyAdapter, Sleeps]],
) -> None:
    seen: list[httpx.Request] = []

    async def upstream(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return needs_fresh_token(request)

    adapter, _ = make(upstream, cls=Refreshable)
    response = await adapter.request("POST", "/orders", operation="order")
    assert response.json() == {"ok": True}
    assert adapter.refreshes == 1
    assert [r.headers["authorization"] for r in seen] == ["Bearer stale", "Bearer fresh"]


async def test_a_401_after_refresh_is_an_authentication_error(
    make: Callable[..., tuple[TinyAdapter, Sleeps]],
) -> None:
    upstream = Upstream(upstream_error(401, "UNAUTHORIZED"))
    adapter, _ = make(upstream, cls=Refreshable)
    with pytest.raises(AuthenticationError):
        await adapter.request("GET", "/products", operation="list")
    assert adapter.refreshes == 1
    assert len(upstream.requests) == 2


async def test_without_refreshable_auth_a_401_is_final(
    make: Callable[..., tuple[TinyAdapter, Sleeps]],
) -> None:
    upstream = Upstream(upstream_error(401, "UNAUTHORIZED"))
    adapter, _ = make(upstream)
    with pytest.raises(AuthenticationError):
        await adapter.request("GET", "/products", operation="list")
    assert adapter.refreshes == 0
    assert len(upstream.requests) == 1


# ------------------------------------------------------ breaker and limiter


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_an_open_circuit_fails_fast_without_sending(
    make: Callable[..., tuple[TinyAdapter, Sleeps]],
) -> None:
    upstream = Upstream(upstream_error(500, "x"))
    adapter, _ = make(upstream, retries={"max_attempts": 1}, breaker={"failure_threshold": 2})
    for _ in range(2):
        with pytest.raises(RetriableError):
            await adapter.request("GET", "/x", operation="x")
    assert adapter.breaker.state is BreakerState.OPEN
    with pytest.raises(CircuitOpenError) as raised:
        await adapter.request("GET", "/x", operation="x")
    assert raised.value.retry_after is not None and raised.value.retry_after > 0
    assert len(upstream.requests) == 2


def open_breaker(adapter: TinyAdapter, clock: FakeClock) -> None:
    adapter.breaker = CircuitBreaker(failure_threshold=1, reset_timeout=10, clock=clock)
    adapter.breaker.record_failure()
    clock.now += 10
    assert adapter.breaker.state is BreakerState.HALF_OPEN


async def test_a_cancelled_probe_does_not_wedge_the_circuit(
    make: Callable[..., tuple[TinyAdapter, Sleeps]],
) -> None:
    started = asyncio.Event()

    async def hang(request: httpx.Request) -> httpx.Response:
        started.set()
        await asyncio.sleep(30)
        return answer(200)

    upstream = Upstream(hang, answer(200, {"ok": True}))
    adapter, _ = make(upstream)
    clock = FakeClock()
    open_breaker(adapter, clock)
    probe = asyncio.create_task(adapter.request("GET", "/x", operation="x"))
    await started.wait()
    probe.cancel()
    with pytest.raises(asyncio.CancelledError):
        await probe
    response = await adapter.request("GET", "/x", operation="x")  # the next probe
    assert response.json() == {"ok": True}
    assert adapter.breaker.state is BreakerState.CLOSED


class BrokenRedis:
    """A Redis whose scripts fail, as when the server is unreachable."""

    def register_script(self, script: str) -> Callable[..., Any]:
        async def run(**kwargs: Any) -> Any:
            raise ConnectionError("redis unreachable")

        return run


async def test_a_limiter_failure_does_not_wedge_the_circuit(
    make: Callable[..., tuple[TinyAdapter, Sleeps]],
) -> None:
    upstream = Upstream(answer(200))
    adapter, _ = make(upstream, redis=BrokenRedis())
    clock = FakeClock()
    open_breaker(adapter, clock)
    with pytest.raises(ConnectionError):
        await adapter.request("GET", "/x", operation="x")
    assert adapter.breaker.allow(), "the probe slot was not handed back"
    assert upstream.requests == []


async def test_calls_go_through_the_shared_limiter_key(
    make: Callable[..., tuple[TinyAdapter, Sleeps]], redis: Any, key_prefix: str
) -> None:
    upstream = Upstream(answer(200))
    adapter, _ = make(
        upstream,
        redis=redis,
        key_prefix=key_prefix,
        rate_limits={"default": {"limit": 1, "period_seconds": 60}},
        rate_limit_safety=1.0,
    )
    await adapter.request("GET", "/x", operation="x")
    key = RedisKeys(key_prefix).upstream_rate("tiny", "default")
    assert await redis.pttl(key) > 0
    # The adapter's call took the minute's only slot in the shared bucket.
    decision = await RedisRateLimiter(redis).decide(
        key, RateLimit(limit=1, period_seconds=60), mode="deny"
    )
    assert not decision.allowed


def test_bucket_rate_prefers_settings_and_applies_the_safety_margin() -> None:
    http = httpx.AsyncClient()
    adapter = TinyAdapter(settings(), http=http, redis=None)
    assert adapter.bucket_rate("default") == RateLimit(limit=5700, period_seconds=60)
    tuned = TinyAdapter(
        settings(rate_limits={"default": {"limit": 10, "period_seconds": 1}}, rate_limit_safety=1),
        http=http,
        redis=None,
    )
    assert tuned.bucket_rate("default") == RateLimit(limit=10, period_seconds=1)
    assert adapter.bucket_rate("unknown") is None


# ------------------------------------------------------------------------ ids


def test_ids_are_namespaced_and_split_back() -> None:
    adapter = TinyAdapter(settings(), http=httpx.AsyncClient(), redis=None)
    assert adapter.product_id(42) == "tiny:42"
    assert adapter.variant_id("a:b", "fv500") == "tiny:a:b:fv500"
    assert adapter.split_variant_id("tiny:a:b:fv500") == ("a:b", "fv500")
    for bad in ("other:1:std", "tiny:1", "1:std"):
        with pytest.raises(NotFoundError):
            adapter.split_variant_id(bad)
    assert adapter.redis_key("ref", "x") == "gw:adapter:{tiny}:ref:x"


# ------------------------------------------------------------- reconciliation


def order(upstream_id: str, reference: str = "ref-1") -> UpstreamOrder:
    return UpstreamOrder(
        supplier="scripted",
        upstream_id=upstream_id,
        reference=reference,
        state=UpstreamOrderState.PENDING,
    )


AMBIGUOUS = AmbiguousOutcomeError("no answer", supplier="scripted")


class ScriptedAdapter(TinyAdapter):
    """``_place_order`` and ``_find_order`` follow scripts: an order, ``None`` or an error."""

    name = "scripted"

    def __init__(self, sends: list[Any], lookups: list[Any], sleep: Sleeps) -> None:
        super().__init__(
            settings(reconcile_attempts=3, reconcile_delay=0.25),
            http=httpx.AsyncClient(),
            redis=None,
            sleep=sleep,
        )
        self.sends, self.lookups = sends, lookups
        self.sent = self.looked = 0

    async def _place_order(self, reference: str, lines: Sequence[OrderLine]) -> UpstreamOrder:
        self.sent += 1
        return self._next(self.sends)

    async def _find_order(self, reference: str) -> UpstreamOrder | None:
        self.looked += 1
        return self._next(self.lookups)

    @staticmethod
    def _next(script: list[Any]) -> Any:
        item = script.pop(0) if len(script) > 1 else script[0]
        if isinstance(item, BaseException):
            raise item
        return item


LINE = [OrderLine(variant_id="scripted:1:std", quantity=1)]


def outcomes(resolution: str) -> float:
    value = REGISTRY.get_sample_value(
        "gateway_upstream_ambiguous_outcomes_total",
        {"supplier": "scripted", "resolution": resolution},
    )
    return value or 0.0


async def test_an_ambiguous_order_found_by_reference_is_returned() -> None:
    sleeps = Sleeps()
    adapter = ScriptedAdapter([AMBIGUOUS], [None, order("u1")], sleeps)
    found_before = outcomes("found")
    assert (await adapter.place_order("ref-1", LINE)).upstream_id == "u1"
    assert (adapter.sent, adapter.looked) == (1, 2)
    assert sleeps.calls == [0.25]
    assert outcomes("found") == found_before + 1


async def test_a_verified_absent_order_is_sent_again_under_the_same_reference() -> None:
    adapter = ScriptedAdapter([AMBIGUOUS, order("u2")], [None], Sleeps())
    assert (await adapter.place_order("ref-1", LINE)).upstream_id == "u2"
    assert (adapter.sent, adapter.looked) == (2, 3)


async def test_one_answered_look_up_among_failures_verifies_absence() -> None:
    lookups = [RetriableError("down"), None, RetriableError("down")]
    adapter = ScriptedAdapter([AMBIGUOUS, order("u3")], lookups, Sleeps())
    assert (await adapter.place_order("ref-1", LINE)).upstream_id == "u3"
    assert adapter.sent == 2


async def test_an_order_that_stays_ambiguous_is_unresolved_after_the_attempts() -> None:
    adapter = ScriptedAdapter([AMBIGUOUS], [None], Sleeps())
    resent, unresolved = outcomes("absent_resent"), outcomes("unresolved")
    with pytest.raises(AmbiguousOutcomeError):
        await adapter.place_order("ref-1", LINE)
    assert (adapter.sent, adapter.looked) == (3, 9)
    assert outcomes("absent_resent") == resent + 2  # resends happened twice, not thrice
    assert outcomes("unresolved") == unresolved + 1


@pytest.mark.parametrize(
    "failure",
    [RetriableError("down"), CircuitOpenError("open"), AuthenticationError("401")],
)
async def test_failed_look_ups_never_lead_to_a_resend(failure: SupplierError) -> None:
    adapter = ScriptedAdapter([AMBIGUOUS, order("dup")], [failure], Sleeps())
    with pytest.raises(AmbiguousOutcomeError) as raised:
        await adapter.place_order("ref-1", LINE)
    assert adapter.sent == 1, "the order was sent again without proof it is absent"
    assert adapter.looked == 3
    assert raised.value.__cause__ is failure


@pytest.mark.parametrize("error", [RejectedError("no stock"), RetriableError("refused")])
async def test_errors_that_prove_nothing_was_bought_propagate(error: SupplierError) -> None:
    adapter = ScriptedAdapter([error], [order("x")], Sleeps())
    with pytest.raises(type(error)):
        await adapter.place_order("ref-1", LINE)
    assert (adapter.sent, adapter.looked) == (1, 0)


async def test_a_refused_resend_after_an_unknown_outcome_stays_unknown() -> None:
    """The look-up found nothing, the resend was refused: but the first request may still
    be in flight and commit later, so this is no proof that nothing was bought (the order
    layer would buy elsewhere on a refusal)."""
    refusal = RejectedError("no stock")
    adapter = ScriptedAdapter([AMBIGUOUS, refusal], [None], Sleeps())
    before = outcomes("refused_after_unknown")
    with pytest.raises(AmbiguousOutcomeError) as raised:
        await adapter.place_order("ref-1", LINE)
    assert raised.value.__cause__ is refusal
    assert adapter.sent == 2
    assert outcomes("refused_after_unknown") == before + 1


@pytest.mark.parametrize("reference", ["", "has space", "x" * 65, "naïve"])
async def test_references_must_be_short_printable_ascii(reference: str) -> None:
    adapter = ScriptedAdapter([order("u")], [None], Sleeps())
    with pytest.raises(ValueError):
        await adapter.place_order(reference, LINE)
    with pytest.raises(ValueError):
        await adapter.place_order("ok", [])
    assert adapter.sent == 0
