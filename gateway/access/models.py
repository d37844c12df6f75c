"""Who may call the gateway: resellers and the API keys issued to them.

A ``Reseller`` is the business (its markup, its webhook); an ``ApiKey`` is one credential
of a reseller (what it may do, from where, how fast). Neither model holds a secret a
handler could leak: the key itself is never stored (only its SHA-256, kept by the store
next to the record), and the webhook signing secret is a ``SecretStr`` that prints as
``**********`` and is read only where webhooks are signed.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import (
    AnyHttpUrl,
    BaseModel,
    ConfigDict,
    Field,
    IPvAnyNetwork,
    SecretStr,
    field_validator,
)

from gateway.pricing import MarkupRule

Scope = Literal["catalog:read", "orders:read", "orders:write", "account:read"]
ALL_SCOPES: tuple[Scope, ...] = ("catalog:read", "orders:read", "orders:write", "account:read")
#: The full scope set before ``account:read`` existed: a key holding all of it is a
#: full-scope key and reads its account too (granted when the record is read, so keys
#: issued before accounts need no migration).
_FULL_BEFORE_ACCOUNTS: frozenset[str] = frozenset({"catalog:read", "orders:read", "orders:write"})
WRITE_SCOPES: frozenset[str] = frozenset({"orders:write"})
"""Scopes whose requests the limiter treats as writes (``fail_open_writes``)."""


class Reseller(BaseModel):
    """A reseller account. ``status="disabled"`` stops every one of its keys."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str
    name: str = Field(min_length=1, max_length=200)
    status: Literal["active", "disabled"] = "active"
    markup: MarkupRule | None = Field(
        default=None, description="The reseller's own markup; None uses the global rules."
    )
    webhook_url: str | None = Field(
        default=None, description="Where order events are POSTed (http or https)."
    )
    webhook_secret: SecretStr | None = Field(
        default=None,
        repr=False,
        description="HMAC-SHA256 signing secret of the webhooks; shown once at creation.",
    )
    created_at: datetime

    @field_validator("webhook_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        AnyHttpUrl(value)  # raises a ValueError naming the problem
        return value

    @property
    def active(self) -> bool:
        return self.status == "active"


class ApiKey(BaseModel):
    """One API key's record: everything about the key except the key itself."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(description="Public key id, also embedded in the key (safe to log).")
    reseller_id: str
    name: str = Field(default="", max_length=200)
    scopes: frozenset[Scope]
    allowed_ips: tuple[IPvAnyNetwork, ...] = Field(
        default=(), description="CIDRs the key may be used from; empty allows any address."
    )
    rate_limit: int | None = Field(
        default=None, ge=1, description="Requests per minute; None uses the configured default."
    )
    status: Literal["active", "revoked"] = "active"
    created_at: datetime
    expires_at: datetime | None = Field(
        default=None, description="Set when the key is rotated with a grace period."
    )

    @field_validator("scopes")
    @classmethod
    def _full_scope_reads_account(cls, value: frozenset[Scope]) -> frozenset[Scope]:
        if value >= _FULL_BEFORE_ACCOUNTS:
            return value | {"account:read"}
        return value

    def usable_at(self, now: float) -> bool:
        """Whether the key may be used at Unix time ``now``: not revoked, not expired (the
        one rule; ``gateway.access.authenticate`` applies it to every key that matched)."""
        return self.status == "active" and (
            self.expires_at is None or now < self.expires_at.timestamp()
        )


class IssuedKey(BaseModel):
    """A key as created: the only time the full key exists outside the reseller's hands."""

    model_config = ConfigDict(frozen=True)

    key: ApiKey
    token: SecretStr = Field(repr=False)


class CreatedReseller(BaseModel):
    """A reseller as created, with its webhook secret (shown once)."""

    model_config = ConfigDict(frozen=True)

    reseller: Reseller
    webhook_secret: SecretStr = Field(repr=False)
