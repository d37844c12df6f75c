"""The pure parts of orders: ids, Prefer, code assignment, status rules, signatures,
encryption, job encoding."""

from __future__ import annotations

import json

import pytest
from cryptography.fernet import Fernet

from adapters.models import Code, Money, UpstreamOrder, UpstreamOrderState
from gateway.api.errors import status_of
from gateway.errors import InvalidRequest
from gateway.orders.crypto import CodeCipher, EncryptionKeyError, cipher_from_settings
from gateway.orders.idempotency import fingerprint, parse_key
from gateway.orders.ids import event_id, is_order_id, new_order_id, part_reference
from gateway.orders.models import (
    ItemStatus,
    OrderStatus,
    PartState,
    StoredItem,
    StoredOrder,
)
from gateway.orders.prefer import parse_prefer
from gateway.orders.queue import Job, JobKind
from gateway.orders.routing import plan_parts
from gateway.orders.schemas import CreateOrderRequest
from gateway.orders.transitions import apply_upstream, assign_codes, fail_part, hold_part, recompute
from gateway.orders.views import decrypt_codes
from gateway.orders.webhooks import sign, verify_signature

EUR = "EUR"


def item(variant: str, quantity: int, supplier: str = "vouchers") -> StoredItem:
    return StoredItem(
        variant_id=variant,
        product_id=variant.rpartition(":")[0],
        product_name="P",
        variant_name="V",
        supplier=supplier,
        quantity=quantity,
        unit_price=Money(amount=100, currency=EUR),
    )


def order_of(items: list[StoredItem], max_lines: int | None = None) -> StoredOrder:
    order_id = new_order_id()
    return StoredOrder(
        id=order_id,
        reseller_id="rs_1",
        created_at=1.0,
        updated_at=1.0,
        items=items,
        parts=plan_parts(order_id, items, lambda supplier: max_lines),
    )


def upstream(state: UpstreamOrderState, codes: list[Code]) -> UpstreamOrder:
    return UpstreamOrder(supplier="vouchers", upstream_id="u1", state=state, codes=tuple(codes))


CIPHER = CodeCipher([Fernet.generate_key()])


def test_order_ids_sort_by_time_and_references_fit_every_supplier() -> None:
    first, second = new_order_id(1_000), new_order_id(2_000)
    assert first < second
    assert is_order_id(first) and not is_order_id("ord_short") and not is_order_id("x" * 30)
    reference = part_reference(new_order_id(), 12)
    assert len(reference) <= 64 and all(0x21 <= ord(c) <= 0x7E for c in reference)
    assert event_id(first).startswith("evt_") and event_id(first) == event_id(first)


@pytest.mark.parametrize(
    ("headers", "seconds", "applied"),
    [
        ([], 0.0, None),
        (["wait=5"], 5.0, "wait=5"),
        (["wait=500"], 30.0, "wait=30"),
        (["handling=lenient, wait=3"], 3.0, "wait=3"),
        (['wait="4"; foo=bar'], 4.0, "wait=4"),
        (["wait=abc"], 0.0, None),
        (["wait=-1"], 0.0, None),
        (["respond-async, wait=10"], 0.0, "respond-async"),
        (["wait=2", "wait=9"], 2.0, "wait=2"),
    ],
)
def test_prefer_wait_is_parsed_bounded_and_reported(
    headers: list[str], seconds: float, applied: str | None
) -> None:
    preference = parse_prefer(headers, max_wait=30.0)
    assert (preference.seconds, preference.applied) == (seconds, applied)


def test_idempotency_key_rules() -> None:
    assert parse_key("abc") == "abc"
    assert parse_key('"quoted-key"') == "quoted-key"
    assert parse_key("k" * 255) == "k" * 255
    cases = [
        (None, "idempotency_key_missing"),
        ("", "idempotency_key_invalid"),
        ("k" * 256, "idempotency_key_invalid"),
        ("tab\there", "idempotency_key_invalid"),
    ]
    for bad, code in cases:
        with pytest.raises(InvalidRequest) as raised:
            parse_key(bad)
        assert status_of(raised.value) == 400 and raised.value.code == code


def test_fingerprint_ignores_formatting_but_not_content() -> None:
    a = CreateOrderRequest.model_validate_json('{"items":[{"variant_id":"v:1:a","quantity":1}]}')
    b = CreateOrderRequest.model_validate_json(
        '{ "items" : [ { "quantity" : 1, "variant_id" : "v:1:a" } ] }'
    )
    c = CreateOrderRequest.model_validate_json('{"items":[{"variant_id":"v:1:a","quantity":2}]}')
    assert fingerprint(a) == fingerprint(b) != fingerprint(c)


def test_parts_group_by_supplier_and_respect_max_lines() -> None:
    items = [item("vouchers:1:a", 1), item("gaming_goods:2:std", 1, "gaming_goods"),
             item("vouchers:3:b", 2), item("gaming_goods:4:std", 1, "gaming_goods")]  # fmt: skip
    order_id = new_order_id()
    parts = plan_parts(order_id, items, lambda s: 1 if s == "vouchers" else None)
    assert [(p.n, p.supplier, p.items) for p in parts] == [
        (1, "vouchers", [0]),
        (2, "vouchers", [2]),
        (3, "gaming_goods", [1, 3]),
    ]
    assert [p.reference for p in parts] == [f"{order_id}-{n}" for n in (1, 2, 3)]


def test_codes_go_to_their_variant_first_then_fill_in_line_order() -> None:
    items = [item("s:1:a", 2), item("s:2:b", 1)]
    codes = [Code(code="B1", variant_id="s:2:b"), Code(code="X1"), Code(code="X2"), Code(code="X3")]
    buckets, extra = assign_codes(items, codes)
    assert [[c.code for c in b] for b in buckets] == [["X1", "X2"], ["B1"]]
    assert extra == 1


def test_delivery_partial_delivery_and_failure_set_item_and_order_status() -> None:
    order = order_of([item("s:1:a", 2), item("s:2:b", 1)])
    part = order.parts[0]
    recompute(order, 2.0)
    assert order.status is OrderStatus.PENDING
    apply_upstream(order, part, upstream(UpstreamOrderState.PENDING, []), CIPHER, 2.0)
    recompute(order, 2.0)
    assert part.state is PartState.PLACED and order.status is OrderStatus.PROCESSING
    assert {i.status for i in order.items} == {ItemStatus.PROCESSING}

    codes = [Code(code="CODE-AAAA-1"), Code(code="CODE-BBBB-2")]
    apply_upstream(
        order, part, upstream(UpstreamOrderState.PARTIALLY_DELIVERED, codes), CIPHER, 3.0
    )
    recompute(order, 3.0)
    assert part.state is PartState.PARTIALLY_DELIVERED
    assert [i.status for i in order.items] == [ItemStatus.DELIVERED, ItemStatus.FAILED]
    assert order.items[1].failure is not None
    assert order.status is OrderStatus.PARTIALLY_COMPLETED and order.final_at == 3.0
    assert [c["code"] for c in decrypt_codes(order.items[0], CIPHER)] == [
        "CODE-AAAA-1",
        "CODE-BBBB-2",
    ]
    assert "CODE-AAAA" not in order.model_dump_json()  # encrypted at rest


def test_upstream_failure_fails_items_and_review_keeps_order_processing() -> None:
    order = order_of([item("s:1:a", 1), item("t:1:a", 1, "t")])
    first, second = order.parts
    apply_upstream(order, first, upstream(UpstreamOrderState.FAILED, []), CIPHER, 2.0)
    hold_part(second, "outcome_unknown", 2.0)
    recompute(order, 2.0)
    assert order.items[0].failure is not None and order.items[0].failure.code == "supplier_failed"
    assert order.status is OrderStatus.PROCESSING and not order.status.is_final
    second.state = PartState.PENDING
    fail_part(order, second, order.items[0].failure, 3.0)
    recompute(order, 3.0)
    assert order.status is OrderStatus.FAILED


def test_completed_when_every_unit_is_delivered() -> None:
    order = order_of([item("s:1:a", 1)])
    apply_upstream(
        order, order.parts[0], upstream(UpstreamOrderState.DELIVERED, [Code(code="Z")]), CIPHER, 2
    )
    recompute(order, 2.0)
    assert order.status is OrderStatus.COMPLETED
    assert order.items[0].status is ItemStatus.DELIVERED and order.items[0].failure is None


def test_signatures_verify_and_reject_tampering_and_old_timestamps() -> None:
    body = json.dumps({"id": "evt_1"}).encode()
    signature = sign("s3cret", 1_700_000_000, body)
    assert signature.startswith("v1=")
    ok = {"body": body, "timestamp": "1700000000", "signature": signature, "now": 1_700_000_100}
    assert verify_signature("s3cret", **ok)
    assert verify_signature("s3cret", **{**ok, "signature": f"v1=deadbeef, {signature}"})
    assert not verify_signature("other", **ok)
    assert not verify_signature("s3cret", **{**ok, "body": body + b" "})
    assert not verify_signature("s3cret", **{**ok, "now": 1_700_001_000})
    assert not verify_signature("s3cret", **{**ok, "timestamp": "nope"})


def test_key_rotation_old_tokens_still_decrypt_and_rotate_to_the_new_key() -> None:
    old, new = Fernet.generate_key(), Fernet.generate_key()
    token = CodeCipher([old]).encrypt(b"codes")
    rotated_cipher = CodeCipher([new, old])
    assert rotated_cipher.decrypt(token) == b"codes"
    rotated = rotated_cipher.rotate(token)
    assert CodeCipher([new]).decrypt(rotated) == b"codes"
    with pytest.raises(EncryptionKeyError):
        CodeCipher([new]).decrypt(token)


def test_missing_key_is_refused_with_a_real_store_and_ephemeral_in_the_demo(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with pytest.raises(EncryptionKeyError, match="generate-key"):
        cipher_from_settings([], embedded_store=False)
    with pytest.raises(EncryptionKeyError, match=r"encryption_keys\[0\]"):
        cipher_from_settings(["not-a-key"], embedded_store=False)
    cipher = cipher_from_settings([], embedded_store=True)
    assert cipher.decrypt(cipher.encrypt(b"x")) == b"x"
    assert "ephemeral" in caplog.text


def test_jobs_round_trip_and_garbage_is_rejected() -> None:
    job = Job.new(JobKind.POLL, new_order_id(), 3)
    assert Job.decode(job.encode()) == job
    assert Job.decode(job.encode().encode()) == job
    for garbage in (None, "", "x|y", "nope|ord|1|n", "place|ord|x|n"):
        assert Job.decode(garbage) is None


def test_rendered_orders_fit_the_documented_schema() -> None:
    from gateway.orders.models import WebhookDelivery
    from gateway.orders.schemas import OrderEnvelope
    from gateway.orders.views import render_order

    order = order_of([item("s:1:a", 2), item("s:2:b", 1)])
    order.webhook = WebhookDelivery(event_id=event_id(order.id), attempts=2, last_status=500)
    codes = [Code(code="CODE-1", pin="1234")]
    apply_upstream(
        order, order.parts[0], upstream(UpstreamOrderState.PARTIALLY_DELIVERED, codes), CIPHER, 2
    )
    recompute(order, 2.0)
    for with_codes in (True, False):
        rendered = render_order(order, CIPHER, codes=with_codes)
        OrderEnvelope.model_validate({"data": rendered})
    rendered = render_order(order, CIPHER, codes=True)
    assert rendered["items"][0]["codes"] == [{"code": "CODE-1", "pin": "1234"}]
    assert rendered["items"][1]["failure"]["code"] == "supplier_short_delivery"
    assert rendered["status"] == "partially_completed"
    assert rendered["delivered_totals"] == [{"amount": 100, "currency": "EUR"}]
    assert rendered["webhook"]["attempts"] == 2
