"""``GET /v1/account`` and ``/v1/account/statement`` (JSON, paging, CSV), the
``account:read`` scope, and the demo reseller's funded accounts."""

from __future__ import annotations

import csv
import io
import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from orders_harness import Picks, Sandboxes, make_settings
from pydantic import SecretStr

from gateway.access.models import ApiKey
from gateway.accounts.models import EntryKind
from gateway.accounts.schemas import AccountsEnvelope, StatementEnvelope
from gateway.settings import AccountSettings


async def test_statement_pages_filters_and_csv(
    make_instance: Any, picks: Picks, redis_url: str, key_prefix: str, sandboxes: Sandboxes
) -> None:
    settings = make_settings(redis_url, key_prefix, sandboxes, accounts=AccountSettings())
    inst = await make_instance(settings)
    caller = await inst.caller()
    store = inst.gateway.services.accounts.store
    rid = caller.reseller.id
    body = {"items": [{"variant_id": picks.voucher_fixed, "quantity": 1}]}
    headers = {**caller.headers, "Idempotency-Key": str(uuid.uuid4()), "Prefer": "wait=10"}
    refused = await inst.client.post("/v1/orders", json=body, headers=headers)
    await store.post(rid, "JPY", EntryKind.TOPUP, 5000, "jpy-1")
    for n in range(3):
        await store.post(rid, "EUR", EntryKind.TOPUP, 1000 + n, f"eur-{n}")
    await store.post(rid, "EUR", EntryKind.ADJUSTMENT, -250, "fix-1", "fee")
    currency = refused.json()["error"]["details"]["currency"]
    await store.post(
        rid, currency, EntryKind.TOPUP, refused.json()["error"]["details"]["required"], "for-order"
    )
    order = await inst.client.post("/v1/orders", json=body, headers=headers)
    assert order.status_code == 201, order.text

    account = await inst.client.get("/v1/account", headers=caller.headers)
    AccountsEnvelope.model_validate(account.json())
    assert account.json()["data"]["enforced"] is True

    pages: list[dict[str, Any]] = []
    page = 1
    while True:
        got = await inst.client.get(
            "/v1/account/statement", params={"page": page, "page_size": 2}, headers=caller.headers
        )
        assert got.status_code == 200, got.text
        StatementEnvelope.model_validate(got.json())
        pages.extend(got.json()["data"]["entries"])
        if not got.json()["data"]["has_more"]:
            break
        page += 1
    assert len({e["id"] for e in pages}) == len(pages)
    assert [e["time"] for e in pages] == sorted(e["time"] for e in pages)
    by_currency: dict[str, list[dict[str, Any]]] = {}
    for entry in pages:
        by_currency.setdefault(entry["currency"], []).append(entry)
    for code, entries in by_currency.items():
        stored = await store.get(rid, code)
        assert sum(e["balance_change"] for e in entries) == stored.balance
        assert entries[-1]["balance_after"] == stored.balance
    assert [e["amount"] for e in by_currency["JPY"]] == [5000]
    assert [e["kind"] for e in by_currency[currency]][-2:] == ["hold", "capture"]
    assert by_currency[currency][-1]["order_id"] == order.json()["data"]["id"]

    only = await inst.client.get(
        "/v1/account/statement", params={"currency": "JPY"}, headers=caller.headers
    )
    assert [e["currency"] for e in only.json()["data"]["entries"]] == ["JPY"]
    future = (datetime.now(UTC) + timedelta(days=1)).date().isoformat()
    empty = await inst.client.get(
        "/v1/account/statement", params={"from": future}, headers=caller.headers
    )
    assert empty.json()["data"]["entries"] == []

    exported = await inst.client.get(
        "/v1/account/statement",
        params={"currency": "EUR", "page_size": 500},
        headers={**caller.headers, "Accept": "text/csv"},
    )
    assert exported.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(exported.text)))
    assert [r["amount"] for r in rows[:4]] == ["10.00", "10.01", "10.02", "2.50"]
    assert rows[3]["balance_change"] == "-2.50" and rows[3]["note"] == "fee"

    for params in ({"from": "yesterday"}, {"from": "2026-02-01", "to": "2026-01-01"},
                   {"page_size": "0"}, {"currency": "euro"}, {"from": "2026-13-01"}):  # fmt: skip
        bad = await inst.client.get("/v1/account/statement", params=params, headers=caller.headers)
        assert bad.status_code == 400, (params, bad.text)
        assert bad.json()["error"]["code"] == "invalid_parameter"


async def test_account_read_scope(make_instance: Any) -> None:
    inst = await make_instance()
    narrow = await inst.caller(scopes=["orders:read"])
    refused = await inst.client.get("/v1/account", headers=narrow.headers)
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "insufficient_scope"
    reader = await inst.caller(scopes=["account:read"])
    assert (await inst.client.get("/v1/account", headers=reader.headers)).status_code == 200
    # a key stored before accounts existed, with every scope of then, reads its account
    legacy = json.loads(narrow.key.model_dump_json())
    legacy["scopes"] = ["catalog:read", "orders:read", "orders:write"]
    assert "account:read" in ApiKey.model_validate(legacy).scopes


async def test_demo_reseller_is_funded_once(
    make_instance: Any, redis_url: str, key_prefix: str, sandboxes: Sandboxes
) -> None:
    settings = make_settings(redis_url, key_prefix, sandboxes, accounts=AccountSettings())
    settings.access.demo_key = None
    inst = await make_instance(settings)
    accounts = inst.gateway.services.accounts
    for _ in range(2):  # every worker of one `gateway serve` funds it: booked once
        await accounts.fund_demo()
    jpy = await accounts.store.get("rs_demo", "JPY")
    eur = await accounts.store.get("rs_demo", "EUR")
    assert jpy.balance == 100_000 and eur.balance == 10_000_000
    assert len(await accounts.store.entries("rs_demo", "EUR")) == 1


async def test_the_demo_reseller_can_order_in_the_embedded_store(
    make_instance: Any, picks: Picks, redis_url: str, key_prefix: str, sandboxes: Sandboxes
) -> None:
    """``make run``: the embedded store, the demo key, enforcement on (the default)."""
    from gateway.access.tokens import new_token

    token = new_token()[1]
    settings = make_settings(redis_url, key_prefix, sandboxes, accounts=AccountSettings())
    settings.redis_url = None
    settings.access.demo_key = SecretStr(token)
    inst = await make_instance(settings)
    headers = {"Authorization": f"Bearer {token}"}
    body = {"items": [{"variant_id": picks.voucher_fixed, "quantity": 2}]}
    created = await inst.client.post(
        "/v1/orders",
        json=body,
        headers={**headers, "Idempotency-Key": str(uuid.uuid4()), "Prefer": "wait=10"},
    )
    assert created.status_code == 201, created.text
    total = created.json()["data"]["totals"][0]
    account = await inst.client.get("/v1/account", headers=headers)
    shown = {a["currency"]: a for a in account.json()["data"]["accounts"]}[total["currency"]]
    funded = 100_000 * 10 ** (0 if total["currency"] == "JPY" else 2)
    assert shown["balance"]["amount"] == funded - total["amount"]
    statement = await inst.client.get(
        "/v1/account/statement", params={"currency": total["currency"]}, headers=headers
    )
    kinds = [e["kind"] for e in statement.json()["data"]["entries"]]
    assert kinds == ["topup", "hold", "capture"]
