"""The standard contract every supplier adapter passes against its own sandbox.

One line runs it for an adapter::

    from adapters.testing import AdapterContract
    from my_package import MySupplierAdapter

    class TestMySupplierContract(AdapterContract):
        adapter_class = MySupplierAdapter

The suite starts the adapter's sandbox (``create_sandbox``) on a real loopback port, talks
to it over real HTTP, and uses a real Redis (``REDIS_URL``, default
``redis://127.0.0.1:6379/0``) under a key prefix of each test's own, deleted afterwards. It
brings its own fixtures, so it works in any project with pytest and pytest-asyncio.

What it relies on from the adapter: the class attributes and the five abstract methods of
``adapters.base.SupplierAdapter``, ``create_sandbox`` accepting the standard sandbox options
(``catalog_size``, ``seed``, ``rate_limits`` keyed by the adapter's ``rate_limits`` buckets,
``fulfil_delay``), ``sandbox_settings``, credentials declared as ``SecretStr`` fields, and the
sandbox's ``/_sandbox`` control endpoints (``adapters.sandbox_kit``).

Optional class attributes tune it: ``sandbox_options`` (extra ``create_sandbox`` options),
``settings_overrides`` (merged into the adapter settings), ``bad_credentials`` (settings
values that must be refused, when the ``SecretStr`` fields alone do not say),
``order_path`` (the order-creation path, when discovering it by placing an order cannot),
``registered`` (``False`` for an adapter that is deliberately not an entry point).
"""

from __future__ import annotations

import asyncio
import itertools
import os
import re
import uuid
from collections.abc import AsyncIterator, Iterator
from importlib.metadata import entry_points
from typing import Any, ClassVar, get_args

import pytest
import pytest_asyncio
import redis.asyncio as aioredis

from adapters.base import SupplierAdapter, retry_after_seconds
from adapters.breaker import BreakerState
from adapters.config import SupplierSettings
from adapters.errors import (
    AmbiguousOutcomeError,
    AuthenticationError,
    CircuitOpenError,
    FatalError,
    NotFoundError,
    RetriableError,
    SupplierTimeout,
)
from adapters.models import (
    Capability,
    CatalogPage,
    ProductDetail,
    UpstreamOrder,
    UpstreamOrderState,
)
from adapters.ratelimit import RateLimit
from adapters.registry import GROUP
from adapters.sandbox_server import BackgroundServer
from adapters.testing.harness import (
    ContractHarness,
    RecordingSleep,
    RequestLog,
    SandboxClient,
    check_money,
    check_product,
    collect_catalog,
    first_product,
    merge,
    new_reference,
    orderable_line,
    secret_fields,
    unknown_id_like,
    wait_until_final,
)

DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


# ---------------------------------------------------------------------- suite


class AdapterContract:
    """Subclass with ``adapter_class = MyAdapter`` (and a name starting with ``Test``)."""

    adapter_class: ClassVar[type[SupplierAdapter]]
    #: Extra ``create_sandbox`` options, merged over the suite's.
    sandbox_options: ClassVar[dict[str, Any]] = {}
    #: Extra adapter settings, merged over the suite's (nested dicts merge).
    settings_overrides: ClassVar[dict[str, Any]] = {}
    #: Settings values the sandbox must refuse; default: every SecretStr field falsified.
    bad_credentials: ClassVar[dict[str, Any] | None] = None
    #: The order-creation path; default: discovered by placing an order.
    order_path: ClassVar[str | None] = None
    #: Whether the adapter must be registered under the ``gateway.adapters`` entry points.
    registered: ClassVar[bool] = True

    #: Small windows on both sides: a rate-limit test then spans several windows.
    rate_limit: ClassVar[tuple[int, float]] = (10, 1.0)
    catalog_size: ClassVar[int] = 200
    fulfil_delay: ClassVar[float] = 0.1
    order_timeout: ClassVar[float] = 10.0

    pytestmark = pytest.mark.asyncio

    @classmethod
    def contract_sandbox_options(cls) -> dict[str, Any]:
        limit, window = cls.rate_limit
        options = {
            "catalog_size": cls.catalog_size,
            "seed": 42,
            "fulfil_delay": cls.fulfil_delay,
            "rate_limits": {bucket: (limit, window) for bucket in cls.adapter_class.rate_limits},
        }
        return merge(options, cls.sandbox_options)

    @classmethod
    def contract_settings(cls) -> dict[str, Any]:
        """Short timeouts, fast backoff, quick reconciliation, and the same per-bucket
        limits as the sandbox (burst 1; ``rate_limit_safety`` left at its default)."""
        limit, window = cls.rate_limit
        return {
            "timeouts": {"connect": 1.0, "read": 1.0, "total": 2.0},
            "retries": {
                "max_attempts": 3,
                "max_total_seconds": 10.0,
                "backoff_base": 0.05,
                "backoff_max": 0.2,
            },
            "breaker": {"failure_threshold": 5, "reset_timeout": 30.0},
            "rate_limits": {
                bucket: {"limit": limit, "period_seconds": window, "burst": 1}
                for bucket in cls.adapter_class.rate_limits
            },
            "reconcile_attempts": 3,
            "reconcile_delay": 0.05,
        }

    # ------------------------------------------------------------- fixtures

    @pytest.fixture(scope="class")
    def contract_sandbox(self) -> Iterator[SandboxClient]:
        """The adapter's sandbox on a loopback port, one per test class (a thread with its
        own event loop, so it outlives each test's loop)."""
        app = type(self).adapter_class.create_sandbox(**type(self).contract_sandbox_options())
        with BackgroundServer(app) as server:
            client = SandboxClient(server.url)
            try:
                yield client
            finally:
                client.close()

    @pytest_asyncio.fixture
    async def contract(self, contract_sandbox: SandboxClient) -> AsyncIterator[ContractHarness]:
        redis = aioredis.Redis.from_url(os.environ.get("REDIS_URL", DEFAULT_REDIS_URL))
        try:
            await redis.ping()
        except Exception as exc:  # pragma: no cover - environment problem, not a test result
            await redis.aclose()
            pytest.fail(f"the adapter contract needs a real Redis at REDIS_URL ({exc})")
        contract_sandbox.reset()
        harness = ContractHarness(
            type(self), contract_sandbox, redis, f"contract-{uuid.uuid4().hex[:12]}"
        )
        try:
            yield harness
        finally:
            contract_sandbox.reset()
            await harness.aclose()
            await redis.aclose()

    # ------------------------------------------------------------ declaration

    async def test_adapter_declares_what_it_is(self, contract: ContractHarness) -> None:
        cls = self.adapter_class
        assert _NAME.match(cls.name), f"name {cls.name!r}: lower-case letters, digits, '_'"
        assert cls.display_name.strip(), "display_name is empty"
        assert issubclass(cls.settings_model, SupplierSettings)
        assert cls.capabilities <= set(get_args(Capability)), cls.capabilities
        assert cls.rate_limits, "declare the documented upstream limits per bucket"
        assert all(isinstance(r, RateLimit) for r in cls.rate_limits.values())
        assert cls.max_lines_per_order is None or cls.max_lines_per_order >= 1
        settings = cls.settings_model.model_validate(cls.sandbox_settings(contract.sandbox.url))
        assert settings.base_url.startswith(contract.sandbox.url)
        assert secret_fields(cls.settings_model), "credentials must be SecretStr fields"

    async def test_adapter_is_registered_under_its_name(self) -> None:
        cls = self.adapter_class
        names = []
        for ep in entry_points(group=GROUP):
            try:
                loaded = ep.load()
            except Exception:  # another package's broken entry point is not ours to judge
                continue
            if loaded is cls:
                names.append(ep.name)
        if not self.registered:
            assert not names, f"{cls.__name__} is registered but declared registered = False"
            return
        assert names, f"{cls.__name__} is not registered in the {GROUP!r} entry-point group"
        assert names == [cls.name], f"entry point {names} must be named {cls.name!r}"

    # ------------------------------------------------------------------ catalog

    async def test_full_catalog_iteration_yields_every_product_once(
        self, contract: ContractHarness
    ) -> None:
        adapter = contract.adapter()
        expected = contract.sandbox.stats()["products"]
        pages = await collect_catalog(adapter)
        assert [p.page for p in pages] == list(range(1, len(pages) + 1)), "pages numbered 1.."
        seen: set[str] = set()
        variant_ids: set[str] = set()
        for page in pages:
            CatalogPage.model_validate(page.model_dump())
            if page.total is not None:
                assert page.total == expected, f"page {page.page} reports total {page.total}"
            for product in page.products:
                check_product(product, adapter.name)
                assert product.id not in seen, f"{product.id} yielded twice"
                seen.add(product.id)
                for variant in product.variants:
                    assert variant.id not in variant_ids, f"variant {variant.id} twice"
                    variant_ids.add(variant.id)
        assert len(seen) == expected, f"iterated {len(seen)} products, the sandbox has {expected}"

    async def test_catalog_ids_are_stable_across_runs(self, contract: ContractHarness) -> None:
        adapter = contract.adapter()

        async def ids() -> dict[str, tuple[str, ...]]:
            return {
                product.id: tuple(sorted(v.id for v in product.variants))
                for page in await collect_catalog(adapter)
                for product in page.products
            }

        first, second = await ids(), await ids()
        assert first == second

    async def test_product_detail_matches_the_list_entry(self, contract: ContractHarness) -> None:
        adapter = contract.adapter()
        listed = await first_product(adapter)
        detail = await adapter.get_product(listed.upstream_id)
        assert isinstance(detail, ProductDetail)
        ProductDetail.model_validate(detail.model_dump())
        check_product(detail, adapter.name)
        assert detail.id == listed.id
        assert detail.upstream_id == listed.upstream_id
        assert {v.id for v in detail.variants} == {v.id for v in listed.variants}

    async def test_unknown_product_raises_not_found(self, contract: ContractHarness) -> None:
        adapter = contract.adapter()
        pages = await collect_catalog(adapter)
        known = {p.upstream_id for page in pages for p in page.products}
        unknown = unknown_id_like(pages[0].products[0].upstream_id, known)
        with pytest.raises(NotFoundError):
            await adapter.get_product(unknown)

    # ------------------------------------------------------------------- orders

    async def test_order_is_placed_and_delivers_codes(self, contract: ContractHarness) -> None:
        adapter = contract.adapter()
        _, line = await orderable_line(adapter, contract.sandbox)
        before = contract.sandbox.order_count()
        reference = new_reference()
        placed = await adapter.place_order(reference, [line])
        UpstreamOrder.model_validate(placed.model_dump())
        assert placed.supplier == adapter.name
        assert placed.upstream_id
        final = await wait_until_final(adapter, placed.upstream_id, within=self.order_timeout)
        assert final.upstream_id == placed.upstream_id
        assert final.state is UpstreamOrderState.DELIVERED, final.message
        assert len(final.codes) >= line.quantity
        assert all(c.code or c.pin or c.url for c in final.codes), "an empty code"
        if final.total is not None:
            check_money(final.total, "order total")
        found = await adapter.find_order(reference)
        assert found is not None and found.upstream_id == placed.upstream_id
        assert contract.sandbox.order_count() - before == 1

    async def test_find_order_returns_none_for_an_unknown_reference(
        self, contract: ContractHarness
    ) -> None:
        adapter = contract.adapter()
        await first_product(adapter)
        assert await adapter.find_order(new_reference()) is None

    async def test_placing_again_with_the_same_reference_does_not_buy_twice(
        self, contract: ContractHarness
    ) -> None:
        adapter = contract.adapter()
        _, line = await orderable_line(adapter, contract.sandbox)
        before = contract.sandbox.order_count()
        reference = new_reference()
        first = await adapter.place_order(reference, [line])
        again = await adapter.place_order(reference, [line])
        assert again.upstream_id == first.upstream_id
        assert contract.sandbox.order_count() - before == 1

    async def test_a_refused_order_is_a_fatal_error_and_buys_nothing(
        self, contract: ContractHarness
    ) -> None:
        """The sandbox's ``refuse_rate`` answers an order the way the upstream documents a
        definitive refusal (out of stock, product unavailable). The adapter must raise a
        ``FatalError``: the order layer then buys the item from another supplier, so the
        class must mean "nothing was bought under this reference"."""
        adapter = contract.adapter()
        _, line = await orderable_line(adapter, contract.sandbox)
        contract.sandbox.set_faults(refuse_rate=1.0)
        before = contract.sandbox.order_count()
        reference = new_reference()
        with pytest.raises(FatalError):
            await adapter.place_order(reference, [line])
        assert contract.sandbox.order_count() == before, "a refused order was created"
        contract.sandbox.reset()
        assert await adapter.find_order(reference) is None

    # ------------------------------------------------------- failure handling

    async def test_rate_limited_answers_are_retried_after_retry_after(
        self, contract: ContractHarness
    ) -> None:
        sleep, log = RecordingSleep(), RequestLog()
        adapter = contract.adapter(sleep=sleep, log=log)
        product = await first_product(adapter)  # authenticates, if the upstream needs it
        contract.sandbox.set_faults(rate_limit_burst=2)
        adapter.stats.update(requests=0, rate_limited=0, retries=0)
        log.clear()
        sleep.calls.clear()
        detail = await adapter.get_product(product.upstream_id)
        assert detail.id == product.id
        assert adapter.stats["rate_limited"] == 2
        assert contract.sandbox.stats()["rate_limited"] == 2
        hints = [retry_after_seconds(r) for r in log.responses(429)]
        assert len(hints) == 2 and all(h is not None for h in hints), "429s carry a hint"
        assert len(sleep.calls) >= 2
        for hint, slept in zip(hints, sleep.calls, strict=False):
            assert hint is not None and slept >= hint, f"slept {slept} s, asked {hint} s"

    async def test_server_errors_on_reads_are_retried_up_to_max_attempts(
        self, contract: ContractHarness
    ) -> None:
        adapter = contract.adapter()
        product = await first_product(adapter)
        contract.sandbox.reset()
        contract.sandbox.set_faults(error_rate=1.0)
        with pytest.raises(RetriableError) as raised:
            await adapter.get_product(product.upstream_id)
        assert not isinstance(raised.value, CircuitOpenError)
        attempts = adapter.settings.retries.max_attempts
        assert contract.sandbox.stats()["requests"] == attempts

    async def test_server_error_on_order_creation_is_never_blindly_resent(
        self, contract: ContractHarness
    ) -> None:
        log = RequestLog()
        adapter = contract.adapter(log=log)
        _, line = await orderable_line(adapter, contract.sandbox)
        order_path = self.order_path
        if order_path is None:  # place one order to see where orders are created
            log.clear()
            await adapter.place_order(new_reference(), [line])
            posts = log.requests("POST")
            assert posts, "placing an order sent no POST; set order_path"
            order_path = posts[-1]
        contract.sandbox.reset()
        contract.sandbox.set_faults(error_rate=1.0, paths=[order_path])
        before = contract.sandbox.order_count()
        log.clear()
        with pytest.raises(AmbiguousOutcomeError):
            await adapter.place_order(new_reference(), [line])
        assert contract.sandbox.order_count() == before, "an order answered 500 was created"
        order_posts = [
            i
            for i, (kind, m, p, _) in enumerate(log.events)
            if kind == "request" and m == "POST" and p == order_path
        ]

        def refused(at: int) -> bool:
            """The POST sent at ``at`` was answered 429: refused before anything was
            created (the upstream's rate window, shared by every test of the session), so
            resending it is no blind resend of an ambiguous placement."""
            for kind, m, p, r in log.events[at + 1 :]:
                if kind == "response" and m == "POST" and p == order_path:
                    return r is not None and r.status_code == 429
            return False

        sends = [i for i in order_posts if not refused(i)]
        assert 1 <= len(sends) <= adapter.settings.reconcile_attempts, [
            (kind, m, p, r.status_code if r is not None else None) for kind, m, p, r in log.events
        ]
        for previous, resend in itertools.pairwise(sends):
            answered = [
                r
                for kind, _, p, r in log.events[previous:resend]
                if kind == "response" and r is not None and r.status_code < 300
            ]
            assert answered, "the order was sent again without a look-up proving it absent"

    async def test_timeouts_are_retriable_supplier_timeouts(
        self, contract: ContractHarness
    ) -> None:
        read, hang = 0.4, 0.8
        product = await first_product(contract.adapter())
        settings = contract.settings(timeouts={"read": read, "total": 2.0})
        adapter = contract.adapter(settings)
        await adapter.get_product(product.upstream_id)  # authenticates, if it must
        contract.sandbox.reset()
        contract.sandbox.set_faults(timeout_rate=1.0, hang_seconds=hang)
        with pytest.raises(SupplierTimeout) as raised:
            await adapter.get_product(product.upstream_id)
        assert isinstance(raised.value, RetriableError)
        assert contract.sandbox.stats()["requests"] == settings.retries.max_attempts
        await asyncio.sleep(hang - read + 0.1)  # let the hung handlers finish in this test

    async def test_wrong_credentials_raise_authentication_error(
        self, contract: ContractHarness
    ) -> None:
        known = await first_product(contract.adapter())
        # Own key prefix: credentials cached in Redis by the good adapter must not leak in.
        adapter = contract.adapter(
            contract.settings(**contract.bad_credentials()),
            key_prefix=f"{contract.key_prefix}-bad",
        )
        contract.sandbox.reset()
        with pytest.raises(AuthenticationError):
            await first_product(adapter)
        with pytest.raises(AuthenticationError):
            await adapter.get_product(known.upstream_id)
        assert contract.sandbox.stats()["requests"] <= 6, "credentials refused: do not retry"

    async def test_connection_dropped_after_commit_is_reconciled_without_a_second_purchase(
        self, contract: ContractHarness
    ) -> None:
        stats = await self._ambiguous_commit_is_reconciled(contract, commit_then_drop_rate=1.0)
        assert stats["drops"] >= 1, "the sandbox never dropped the connection"

    async def test_server_error_after_commit_is_reconciled_without_a_second_purchase(
        self, contract: ContractHarness
    ) -> None:
        stats = await self._ambiguous_commit_is_reconciled(contract, error_after_commit_rate=1.0)
        assert stats["errors"] >= 1, "the sandbox never answered 500 after committing"

    async def test_answer_arriving_after_the_timeout_is_reconciled_without_a_second_purchase(
        self, contract: ContractHarness
    ) -> None:
        read = 0.4
        settings = contract.settings(timeouts={"read": read, "total": 2.0})
        stats = await self._ambiguous_commit_is_reconciled(
            contract, settings, commit_then_hang_rate=1.0, hang_seconds=read * 3
        )
        assert stats["late_answers"] >= 1, "the sandbox never answered late"

    async def _ambiguous_commit_is_reconciled(
        self,
        contract: ContractHarness,
        settings: SupplierSettings | None = None,
        **faults: float,
    ) -> dict[str, Any]:
        """Place an order under a post-commit fault; return the sandbox stats of it."""
        adapter = contract.adapter(settings)
        _, line = await orderable_line(adapter, contract.sandbox)
        contract.sandbox.set_faults(**faults)
        before = contract.sandbox.order_count()
        reference = new_reference()
        placed = await adapter.place_order(reference, [line])
        assert contract.sandbox.order_count() - before == 1, "bought more than once"
        stats = contract.sandbox.stats()
        contract.sandbox.reset()
        found = await adapter.find_order(reference)
        assert found is not None and found.upstream_id == placed.upstream_id
        return stats

    # ------------------------------------------------------ limiter, breaker

    async def test_full_sync_never_meets_the_upstream_rate_limit(
        self, contract: ContractHarness
    ) -> None:
        adapter = contract.adapter()
        expected = contract.sandbox.stats()["products"]
        await self._sync_until(adapter, 2 * self.rate_limit[0], expected)
        stats = contract.sandbox.stats()
        assert stats["rate_limited"] == 0, f"{stats['rate_limited']} answers were 429"

    async def test_two_instances_share_one_rate_limit_budget(
        self, contract: ContractHarness
    ) -> None:
        expected = contract.sandbox.stats()["products"]
        one, two = contract.adapter(), contract.adapter()  # same Redis and key prefix
        minimum = self.rate_limit[0]  # each: together twice the limit, several windows
        await asyncio.gather(
            self._sync_until(one, minimum, expected), self._sync_until(two, minimum, expected)
        )
        stats = contract.sandbox.stats()
        assert stats["rate_limited"] == 0, f"{stats['rate_limited']} answers were 429"

    @staticmethod
    async def _sync_until(adapter: SupplierAdapter, min_requests: int, expected: int) -> None:
        """Full syncs, back to back, until the adapter has sent ``min_requests``: the
        traffic then spans several rate windows whatever the catalog's page count."""
        for _ in range(200):
            ids = {p.id for page in await collect_catalog(adapter) for p in page.products}
            assert len(ids) == expected
            if adapter.stats["requests"] >= min_requests:
                return
        pytest.fail("200 syncs sent fewer requests than needed")  # pragma: no cover

    async def test_circuit_opens_after_consecutive_failures_and_a_probe_closes_it(
        self, contract: ContractHarness
    ) -> None:
        threshold, reset_timeout = 3, 0.5
        adapter = contract.adapter(
            contract.settings(
                retries={"max_attempts": 1},
                breaker={"failure_threshold": threshold, "reset_timeout": reset_timeout},
            )
        )
        product = await first_product(adapter)
        contract.sandbox.reset()
        contract.sandbox.set_faults(error_rate=1.0)
        for _ in range(threshold):
            with pytest.raises(RetriableError) as raised:
                await adapter.get_product(product.upstream_id)
            assert not isinstance(raised.value, CircuitOpenError)
        assert adapter.breaker.state is BreakerState.OPEN
        sent = contract.sandbox.stats()["requests"]
        assert sent == threshold
        with pytest.raises(CircuitOpenError):
            await adapter.get_product(product.upstream_id)
        assert contract.sandbox.stats()["requests"] == sent, "an open circuit sent a request"
        contract.sandbox.reset()
        await asyncio.sleep(reset_timeout + 0.1)
        detail = await adapter.get_product(product.upstream_id)
        assert detail.id == product.id
        breaker = adapter.breaker  # a new expression: mypy would keep the OPEN of above
        assert breaker.state is BreakerState.CLOSED
