"""``account.low_balance``: signed, once per crossing below the threshold (not per
order), re-armed when the account is topped up above it."""

from __future__ import annotations

import json
import uuid
from typing import Any

from orders_harness import Picks, Sandboxes, WebhookReceiver, make_settings, wait_until
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from adapters.sandbox_server import BackgroundServer
from gateway.accounts.models import EntryKind
from gateway.orders.webhooks import verify_signature
from gateway.settings import AccountSettings


def notice_receiver(fail_first: int) -> WebhookReceiver:
    """A reseller's endpoint answering 503 to its first ``fail_first`` low-balance
    attempts (order events always 200), recording everything."""
    received: list[tuple[dict[str, str], bytes]] = []
    failures = [fail_first]

    async def hook(request: Request) -> Response:
        body = await request.body()
        received.append((dict(request.headers), body))
        if json.loads(body)["type"] == "account.low_balance" and failures[0] > 0:
            failures[0] -= 1
            return Response(status_code=503)
        return Response(status_code=200)

    app = Starlette(routes=[Route("/hooks/orders", hook, methods=["POST"])])
    return WebhookReceiver(BackgroundServer(app).start(), received, [])


async def test_one_notice_per_crossing(
    make_instance: Any, picks: Picks, redis_url: str, key_prefix: str, sandboxes: Sandboxes
) -> None:
    receiver = notice_receiver(fail_first=1)  # the first notice fails: retried, same event
    try:
        settings = make_settings(redis_url, key_prefix, sandboxes, accounts=AccountSettings())
        inst = await make_instance(settings)
        caller = await inst.caller(webhook_url=receiver.url)
        store = inst.gateway.services.accounts.store
        rid = caller.reseller.id
        one = {"items": [{"variant_id": picks.voucher_fixed, "quantity": 1}]}

        async def order() -> Any:
            headers = {**caller.headers, "Idempotency-Key": str(uuid.uuid4()), "Prefer": "wait=10"}
            return await inst.client.post("/v1/orders", json=one, headers=headers)

        quote = (await order()).json()["error"]["details"]
        price, currency = quote["required"], quote["currency"]
        await store.post(rid, currency, EntryKind.TOPUP, 10 * price, "t1")
        await store.set_limits(rid, currency, low_threshold=8 * price)

        def notices() -> list[dict[str, Any]]:
            return [
                json.loads(body)
                for headers, body in receiver.received
                if json.loads(body)["type"] == "account.low_balance"
            ]

        for _ in range(2):  # available 9, then 8 prices: at the threshold, not below
            assert (await order()).status_code == 201
        assert notices() == []
        for _ in range(3):  # 7, 6, 5: one crossing
            assert (await order()).status_code == 201

        async def delivered() -> bool:
            return len({n["id"] for n in notices()}) == 1 and len(notices()) == 2

        assert await wait_until(delivered, 10), receiver.received
        first = notices()[0]
        assert first == notices()[1]  # the retry sends the same event
        assert first["data"]["account"]["available"] == {"amount": 7 * price, "currency": currency}
        assert first["data"]["account"]["threshold"]["amount"] == 8 * price
        headers, raw = receiver.received[-1]
        assert headers["x-webhook-id"] == first["id"]
        assert verify_signature(
            caller.webhook_secret,
            body=raw,
            timestamp=headers["x-webhook-timestamp"],
            signature=headers["x-webhook-signature"],
        )

        await store.post(rid, currency, EntryKind.TOPUP, 5 * price, "t2")  # 10: re-armed
        account = await store.get(rid, currency)
        assert account is not None and not account.low
        for _ in range(3):  # 9, 8, 7: a second crossing
            assert (await order()).status_code == 201

        async def second() -> bool:
            return len({n["id"] for n in notices()}) == 2

        assert await wait_until(second, 10)
        assert notices()[-1]["data"]["account"]["available"]["amount"] == 7 * price
        events = await inst.gateway.redis.hgetall(inst.gateway.keys.account_events(rid, currency))
        assert events == {}  # delivered events are not kept
    finally:
        receiver.server.stop()
