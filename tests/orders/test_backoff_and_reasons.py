"""The order layer's delays (one backoff helper, same distributions as the formulas it
replaced) and its plain values (hold reasons and outcomes as enums that store, label and
log as the same strings as before)."""

from __future__ import annotations

import json
import math
import random

import pytest

from gateway.orders import backoff
from gateway.orders.models import HoldReason, Part, PartState, StoredOrder
from gateway.orders.processing import OrderProcessor, OutcomeKind
from gateway.orders.transitions import hold_part
from gateway.orders.webhook_delivery import WebhookJobs
from gateway.settings import OrderSettings


def test_exponential_doubles_then_caps() -> None:
    assert [backoff.exponential(1.0, n, maximum=10.0) for n in range(6)] == [
        1.0,
        2.0,
        4.0,
        8.0,
        10.0,
        10.0,
    ]
    assert backoff.exponential(0.5, 3) == 4.0  # uncapped by default
    # The exponent is bounded: a part retried for years neither overflows nor grows.
    assert backoff.exponential(1.0, 10**6) == 2.0**30
    assert backoff.exponential(2.0, 50, max_exponent=20) == 2.0 * 2**20
    assert math.isfinite(backoff.exponential(1e300, 10**6, maximum=5.0))


def test_jitters_stay_in_their_bands_and_cover_them() -> None:
    rng = random.Random(7)
    equal = [backoff.equal_jitter(10.0, rng) for _ in range(2000)]
    assert all(5.0 <= d <= 10.0 for d in equal)
    assert min(equal) < 5.1 and max(equal) > 9.9
    spread = [backoff.spread(10.0, rng) for _ in range(2000)]
    assert all(8.0 <= d <= 12.0 for d in spread)
    assert min(spread) < 8.1 and max(spread) > 11.9


def _former_retry(s: OrderSettings, rng: random.Random, attempts: int) -> float:
    ceiling = min(s.retry_max_seconds, s.retry_initial_seconds * 2 ** min(attempts, 30))
    return ceiling / 2 + rng.uniform(0, ceiling / 2)


def _former_poll(s: OrderSettings, rng: random.Random, polls: int) -> float:
    base = min(s.poll_max_seconds, s.poll_initial_seconds * 2 ** min(polls, 30))
    return base * rng.uniform(0.8, 1.2)


def _former_webhook(s: OrderSettings, rng: random.Random, attempts: int) -> float:
    ceiling = min(
        s.webhook_backoff_max_seconds,
        s.webhook_backoff_seconds * 2 ** min(attempts - 1, 30),
    )
    return ceiling / 2 + rng.uniform(0, ceiling / 2)


def _processor(settings: OrderSettings, seed: int) -> OrderProcessor:
    return OrderProcessor(
        store=None,  # type: ignore[arg-type]
        queue=None,  # type: ignore[arg-type]
        adapters={},
        cipher=None,  # type: ignore[arg-type]
        settings=settings,
        notifier=None,  # type: ignore[arg-type]
        resellers=None,  # type: ignore[arg-type]
        webhooks=None,  # type: ignore[arg-type]
        rng=random.Random(seed),
    )


@pytest.mark.parametrize("step", [0, 1, 2, 5, 9, 40, 10**4])
def test_delays_are_the_same_draws_as_before(step: int) -> None:
    """Seeded alike, the helper gives exactly the numbers the hand-written formulas gave."""
    s = OrderSettings()
    old, new = random.Random(step), _processor(s, step)
    assert new._retry_delay(step) == _former_retry(s, old, step)
    assert new._poll_delay(step) == _former_poll(s, old, step)
    assert isinstance(new.webhook_jobs, WebhookJobs) and new.webhook_jobs.rng is new.rng
    attempts = step + 1
    assert new.webhook_jobs.retry_delay(attempts) == _former_webhook(s, old, attempts)


def _order(reason: str | None) -> str:
    part = {
        "n": 0,
        "supplier": "vouchers",
        "reference": "r-0",
        "items": [0],
        "state": "review",
        "review_reason": reason,
    }
    item = {
        "variant_id": "vouchers:1:fv500",
        "product_id": "vouchers:1",
        "product_name": "P",
        "variant_name": "V",
        "supplier": "vouchers",
        "quantity": 1,
        "unit_price": {"amount": 500, "currency": "EUR"},
    }
    doc = {
        "id": "ord_1",
        "reseller_id": "rs_1",
        "status": "processing",
        "created_at": 1.0,
        "updated_at": 1.0,
        "items": [item],
        "parts": [part],
    }
    return json.dumps(doc)


@pytest.mark.parametrize("reason", [r.value for r in HoldReason])
def test_orders_stored_with_string_reasons_load_and_store_the_same_strings(reason: str) -> None:
    order = StoredOrder.model_validate_json(_order(reason))
    held = order.parts[0].review_reason
    assert held is HoldReason(reason) and held == reason
    stored = json.loads(order.model_dump_json())
    assert stored["parts"][0]["review_reason"] == reason
    # Metric labels and log fields render the same text as the bare string did.
    assert str(held) == f"{held}" == reason and json.dumps(held) == json.dumps(reason)


def test_an_unknown_stored_reason_is_refused_loudly() -> None:
    with pytest.raises(ValueError):
        StoredOrder.model_validate_json(_order("no_such_reason"))
    assert StoredOrder.model_validate_json(_order(None)).parts[0].review_reason is None


def test_hold_part_takes_only_known_reasons() -> None:
    part = Part(n=0, supplier="s", reference="r", items=[0])
    hold_part(part, HoldReason.OUTCOME_UNKNOWN, 5.0)
    assert part.state is PartState.REVIEW and part.review_reason is HoldReason.OUTCOME_UNKNOWN
    with pytest.raises(ValueError):
        hold_part(part, "outcome_unknwon", 6.0)  # type: ignore[arg-type]


def test_only_unknown_outcomes_are_looked_up_again_by_themselves() -> None:
    again = {r for r in HoldReason if r.settled_by_lookup}
    assert again == {
        HoldReason.OUTCOME_UNKNOWN,
        HoldReason.PLACEMENT_TIMED_OUT,
        HoldReason.PLACEMENT_UNSETTLED,
        HoldReason.UNEXPECTED_ERROR,
        HoldReason.RECONCILE_FAILED,
        HoldReason.REFUSED_AFTER_UNKNOWN,
    }
    assert [k.value for k in OutcomeKind] == ["upstream", "retry", "fail", "hold"]
