"""The accounts API's models: they parse ``/v1/account`` queries and generate the OpenAPI
document; a test checks rendered accounts and entries against them."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from adapters.models import Money
from gateway.accounts.models import EntryKind

_TIME = r"^\d{4}-\d{2}-\d{2}([T ][0-9:.]+(Z|[+-]\d{2}:?\d{2})?)?$"


class StatementQuery(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    start: str | None = Field(
        default=None,
        alias="from",
        max_length=40,
        pattern=_TIME,
        description="From (inclusive): a date (`2026-01-31`, midnight UTC) or an ISO 8601 "
        "time; default: the first entry.",
    )
    end: str | None = Field(
        default=None,
        alias="to",
        max_length=40,
        pattern=_TIME,
        description="To (exclusive), like `from`; default: now.",
    )
    currency: str | None = Field(
        default=None, pattern=r"^[A-Z]{3}$", description="Only this currency's entries."
    )
    page: int = Field(default=1, ge=1, le=1000)
    page_size: int = Field(default=100, ge=1, le=500)


class _Out(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AccountOut(_Out):
    currency: str
    balance: Money = Field(description="Posted: top-ups and adjustments less captures.")
    held: Money = Field(description="Reserved by orders not yet settled.")
    available: Money = Field(description="balance - held + credit_limit: what orders may use.")
    credit_limit: Money
    mode: str = Field(description="`prepaid` (no credit limit) or `credit`.")
    order_limit: Money | None = Field(description="Largest order value accepted, if capped.")
    daily_limit: Money | None = Field(description="Order value per UTC day, if capped.")
    spent_today: Money = Field(description="Order value held today (UTC), less releases.")
    low_balance_threshold: Money | None = Field(
        description="`account.low_balance` is sent when available falls below this."
    )


class AccountsOut(_Out):
    enforced: bool = Field(
        description="Whether orders in a currency without an account are refused (402)."
    )
    accounts: list[AccountOut]


class AccountsEnvelope(_Out):
    data: AccountsOut


class EntryOut(_Out):
    id: str = Field(description="Unique among your entries.")
    time: str
    kind: EntryKind
    currency: str
    amount: int = Field(description="Size of the movement, minor units (positive).")
    balance_change: int = Field(description="Effect on the balance (the balance is their sum).")
    hold_change: int = Field(description="Effect on the holds (the holds are their sum).")
    balance_after: int
    held_after: int
    available_after: int
    order_id: str | None
    part: int | None
    reference: str | None = Field(description="The operator's reference of a top-up.")
    note: str | None


class StatementOut(_Out):
    entries: list[EntryOut]
    page: int
    page_size: int
    has_more: bool


class StatementEnvelope(_Out):
    data: StatementOut
