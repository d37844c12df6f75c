"""The operator's tools, through the real ``gateway`` CLI: the review list, resolving a
held order, key generation and rotation; and the refusal to run without a key."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from cryptography.fernet import Fernet
from orders_harness import (
    Picks,
    Sandboxes,
    cli,
    make_settings,
    order_settings,
    wait_until,
)

from gateway.bootstrap import bootstrap
from gateway.orders.crypto import CodeCipher, EncryptionKeyError
from gateway.orders.models import PartState
from gateway.orders.store import Effects
from gateway.orders.transitions import hold_part


async def completed_order(inst: Any, caller: Any, picks: Picks) -> str:
    response = await inst.client.post(
        "/v1/orders",
        json={"items": [{"variant_id": picks.voucher_fixed, "quantity": 1}]},
        headers={**caller.headers, "Idempotency-Key": str(uuid.uuid4()), "Prefer": "wait=5"},
    )
    assert response.status_code == 201, response.text
    return str(response.json()["data"]["id"])


async def test_review_lists_held_orders_and_resolve_settles_them(
    make_instance: Any, picks: Picks, sandboxes: Sandboxes, redis_url: str, key_prefix: str
) -> None:
    settings = make_settings(redis_url, key_prefix, sandboxes)
    inst = await make_instance(settings)
    caller = await inst.caller()
    order_id = await completed_order(inst, caller, picks)

    def hold(order: Any, now: float) -> Effects:
        order.parts[0].state = PartState.PLACED
        order.final_at = None
        hold_part(order.parts[0], "outcome_unknown", now)
        return Effects()

    await inst.orders.processor.commit(order_id, None, hold)
    listed = await cli(settings, "orders", "review")
    assert listed.exit_code == 0, listed.output
    assert order_id in listed.output and "outcome_unknown" in listed.output
    as_json = await cli(settings, "orders", "review", "--json")
    row = json.loads(as_json.output.splitlines()[0])
    assert (row["order_id"], row["part"], row["supplier"]) == (order_id, 1, "vouchers")
    assert row["reference"] == f"{order_id}-1"

    wrong = await cli(settings, "orders", "resolve", order_id, "2", "--action", "fail")
    assert wrong.exit_code != 0 and "no part 2" in wrong.output
    done = await cli(settings, "orders", "resolve", order_id, "1", "--action", "reconcile")
    assert done.exit_code == 0, done.output

    async def settled() -> bool:
        loaded = await inst.orders.store.load(order_id)
        return loaded is not None and loaded.order.status.value == "completed"

    assert await wait_until(settled, 10)
    empty = await cli(settings, "orders", "review")
    assert "nothing is held" in empty.output


async def test_rotate_keys_re_encrypts_codes_and_stored_answers(
    make_instance: Any, picks: Picks, sandboxes: Sandboxes, redis_url: str, key_prefix: str
) -> None:
    old = Fernet.generate_key().decode()
    settings = make_settings(
        redis_url, key_prefix, sandboxes, orders=order_settings(encryption_keys=[old])
    )
    inst = await make_instance(settings)
    caller = await inst.caller()
    order_id = await completed_order(inst, caller, picks)
    before = await inst.client.get(f"/v1/orders/{order_id}", headers=caller.headers)

    generated = await cli(settings, "orders", "generate-key")
    new = generated.output.strip()
    CodeCipher([new])  # a valid key
    rotated = make_settings(
        redis_url, key_prefix, sandboxes, orders=order_settings(encryption_keys=[new, old])
    )
    result = await cli(rotated, "orders", "rotate-keys")
    assert result.exit_code == 0, result.output
    assert "codes of 1 orders and 1 stored answers" in result.output

    only_new = make_settings(
        redis_url, key_prefix, sandboxes, orders=order_settings(encryption_keys=[new])
    )
    fresh = await make_instance(only_new)
    after = await fresh.client.get(f"/v1/orders/{order_id}", headers=caller.headers)
    assert after.json()["data"]["items"][0]["codes"] == before.json()["data"]["items"][0]["codes"]
    loaded = await fresh.orders.store.load(order_id)
    assert loaded is not None
    with pytest.raises(EncryptionKeyError):
        CodeCipher([old]).decrypt(loaded.order.items[0].codes or "")


async def test_orders_refuse_to_start_without_a_key_on_a_real_redis(
    redis_url: str, key_prefix: str, sandboxes: Sandboxes
) -> None:
    settings = make_settings(
        redis_url, key_prefix, sandboxes, orders=order_settings(encryption_keys=[])
    )
    with pytest.raises(EncryptionKeyError, match="GATEWAY_ORDERS__ENCRYPTION_KEYS"):
        await bootstrap(settings)
    result = await cli(settings, "worker")
    assert result.exit_code != 0
    assert "encryption_keys is not set" in str(result.exception) + result.output


async def test_codes_and_keys_stay_out_of_the_logs(
    make_instance: Any, picks: Picks, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("DEBUG")
    inst = await make_instance()
    caller = await inst.caller()
    order_id = await completed_order(inst, caller, picks)
    got = await inst.client.get(f"/v1/orders/{order_id}", headers=caller.headers)
    code = got.json()["data"]["items"][0]["codes"][0]["code"]
    assert any("order created" in record.getMessage() for record in caplog.records)
    text = "\n".join(f"{record.getMessage()} {record.__dict__}" for record in caplog.records)
    assert code not in text
    assert caller.token not in text
