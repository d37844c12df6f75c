"""Account routes: what a reseller may spend, and its ledger.

``GET /v1/account``: balance, holds, available funds and limits per currency.
``GET /v1/account/statement``: ledger entries in a period, oldest first, paged; CSV with
``Accept: text/csv`` (amounts in major units, for spreadsheets and reconciliation).
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from gateway.accounts.schemas import AccountsEnvelope, StatementEnvelope, StatementQuery
from gateway.accounts.service import AccountsService
from gateway.accounts.views import entries_csv, entry_json, parse_time, to_ms
from gateway.api.errors import ApiError
from gateway.api.guard import caller
from gateway.api.spec import operation, parse_query
from gateway.bootstrap import Gateway


def _service(request: Request) -> AccountsService:
    gateway: Gateway = request.app.state.gateway
    return gateway.services.accounts


@operation(
    summary="Your account",
    operation_id="getAccount",
    tag="account",
    scope="account:read",
    response=AccountsEnvelope,
    description="Per currency: balance, held (open orders), available (balance - held + "
    "credit limit), limits and the low-balance threshold. An order whose value in a "
    "currency exceeds what is available there is refused with 402 `insufficient_funds`.",
)
async def get_account(request: Request) -> Response:
    overview = await _service(request).overview(caller(request).id)
    return JSONResponse({"data": overview})


@operation(
    summary="Your account statement",
    operation_id="getAccountStatement",
    tag="account",
    scope="account:read",
    query=StatementQuery,
    response=StatementEnvelope,
    media_types=("text/csv",),
    request_headers={"Accept": "`text/csv` for CSV (amounts in major units); JSON otherwise."},
    description="Ledger entries (top-ups, holds, captures, releases, adjustments) from "
    "`from` to `to`, oldest first. Each says its effect on the balance and on the holds, "
    "and the balance after it: the balance is the sum of `balance_change`.",
)
async def get_statement(request: Request) -> Response:
    query = parse_query(request, StatementQuery)
    try:
        start = to_ms(parse_time(query.start)) if query.start else None
        end = to_ms(parse_time(query.end)) if query.end else None
    except ValueError as exc:
        raise ApiError(400, "invalid_parameter", str(exc)) from exc
    if start is not None and end is not None and start >= end:
        raise ApiError(400, "invalid_parameter", "`from` must be before `to`")
    entries, more = await _service(request).statement(
        caller(request).id, query.currency, start, end, query.page, query.page_size
    )
    if "text/csv" in request.headers.get("accept", ""):
        return Response(entries_csv(entries), media_type="text/csv; charset=utf-8")
    return JSONResponse(
        {
            "data": {
                "entries": [entry_json(entry) for entry in entries],
                "page": query.page,
                "page_size": query.page_size,
                "has_more": more,
            }
        }
    )


routes = [
    Route("/v1/account", get_account, methods=["GET"]),
    Route("/v1/account/statement", get_statement, methods=["GET"]),
]
