"""Resellers and API keys in Redis: the records the CLI manages and requests are checked by.

Layout (keys built by ``gateway.redis_keys``): one JSON string per reseller and per key,
plus a set of reseller ids and a set of key ids per reseller for listing. Each record is
written alone; read-modify-write updates (disable, revoke) use ``WATCH``/``MULTI`` on
that one key, so two operators acting at once cannot lose an update.

Only the SHA-256 of a key is stored (see ``tokens``). The webhook signing secret is
stored as is, because signing needs the secret itself; protect Redis accordingly (ACL,
TLS, no public exposure).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import SecretStr, ValidationError
from redis.exceptions import WatchError

from gateway.access import tokens
from gateway.access.models import (
    ALL_SCOPES,
    ApiKey,
    CreatedReseller,
    IssuedKey,
    Reseller,
    Scope,
)
from gateway.pricing import MarkupRule
from gateway.redis_keys import RedisKeys
from gateway.webhook_targets import TargetRefused, check_url


class _Unset:
    """Marks an argument that was not given (``None`` means "clear it")."""


UNSET = _Unset()

#: Longest grace period of a rotated key (30 days): a bound, so that a typo cannot keep a
#: retired key alive for good.
MAX_GRACE_SECONDS = 30 * 24 * 3600


class AccessRecordError(ValueError):
    """An operator asked for something the records do not allow (unknown id, ...)."""


@dataclass(frozen=True, slots=True)
class StoredKey:
    key: ApiKey
    digest: str


def _now() -> datetime:
    return datetime.now(UTC)


def _text(raw: bytes | str) -> str:
    return raw.decode() if isinstance(raw, bytes) else raw


class KeyStore:
    def __init__(
        self, redis: Any, keys: RedisKeys, *, allow_private_webhooks: bool = False
    ) -> None:
        """``allow_private_webhooks``: ``orders.webhook_allow_private_targets``, which
        decides which webhook URLs may be written (``gateway.webhook_targets``)."""
        self._redis = redis
        self._keys = keys
        self._allow_private_webhooks = allow_private_webhooks

    # Resellers --------------------------------------------------------------------
    async def create_reseller(
        self,
        name: str,
        *,
        markup: MarkupRule | None = None,
        webhook_url: str | None = None,
        reseller_id: str | None = None,
    ) -> CreatedReseller:
        self._check_webhook_url(webhook_url)
        secret = tokens.new_webhook_secret()
        try:
            reseller = Reseller(
                id=reseller_id or "rs_" + tokens.new_key_id(),
                name=name,
                markup=markup,
                webhook_url=webhook_url,
                webhook_secret=SecretStr(secret),
                created_at=_now(),
            )
        except ValidationError as exc:
            raise AccessRecordError(_problems(exc)) from exc
        created = await self._redis.set(
            self._keys.reseller(reseller.id), _reseller_json(reseller), nx=True
        )
        if not created:
            raise AccessRecordError(f"reseller {reseller.id} already exists")
        await self._redis.sadd(self._keys.resellers(), reseller.id)
        return CreatedReseller(reseller=reseller, webhook_secret=SecretStr(secret))

    async def get_reseller(self, reseller_id: str) -> Reseller | None:
        raw = await self._redis.get(self._keys.reseller(reseller_id))
        return _reseller_from(raw) if raw is not None else None

    async def require_reseller(self, reseller_id: str) -> Reseller:
        reseller = await self.get_reseller(reseller_id)
        if reseller is None:
            raise AccessRecordError(f"no reseller {reseller_id}")
        return reseller

    async def list_resellers(self) -> list[Reseller]:
        ids = sorted(_text(i) for i in await self._redis.smembers(self._keys.resellers()))
        found = await self._get_many(self._keys.reseller(i) for i in ids)
        return sorted(
            (_reseller_from(raw) for raw in found if raw is not None),
            key=lambda r: (r.created_at, r.id),
        )

    async def set_reseller_status(self, reseller_id: str, status: str) -> Reseller:
        def change(record: dict[str, Any]) -> dict[str, Any]:
            return {**record, "status": status}

        raw = await self._update(
            self._keys.reseller(reseller_id), change, f"reseller {reseller_id}"
        )
        return _reseller_from(raw)

    async def update_reseller(
        self,
        reseller_id: str,
        *,
        markup: MarkupRule | _Unset | None = UNSET,
        webhook_url: str | _Unset | None = UNSET,
        rotate_webhook_secret: bool = False,
    ) -> CreatedReseller:
        """Change the markup and/or webhook URL (``None`` clears them); with
        ``rotate_webhook_secret`` a new signing secret replaces the old one and is
        returned (shown once). Unchanged secrets are returned as they are."""
        if not isinstance(webhook_url, _Unset):
            self._check_webhook_url(webhook_url)
        secret = tokens.new_webhook_secret() if rotate_webhook_secret else None

        def change(record: dict[str, Any]) -> dict[str, Any]:
            updated = dict(record)
            if not isinstance(markup, _Unset):
                updated["markup"] = markup.model_dump(mode="json") if markup else None
            if not isinstance(webhook_url, _Unset):
                updated["webhook_url"] = webhook_url
            if secret is not None:
                updated["webhook_secret"] = secret
            try:
                Reseller.model_validate(updated)
            except ValidationError as exc:
                raise AccessRecordError(_problems(exc)) from exc
            return updated

        raw = await self._update(
            self._keys.reseller(reseller_id), change, f"reseller {reseller_id}"
        )
        reseller = _reseller_from(raw)
        assert reseller.webhook_secret is not None
        return CreatedReseller(reseller=reseller, webhook_secret=reseller.webhook_secret)

    def _check_webhook_url(self, url: str | None) -> None:
        """Refuse a webhook URL the gateway would not send to (checked again, with the
        host resolved, at every delivery)."""
        if url is None:
            return
        try:
            check_url(url, allow_private=self._allow_private_webhooks)
        except TargetRefused as exc:
            raise AccessRecordError(f"webhook_url: {exc}") from exc

    # Keys -------------------------------------------------------------------------
    async def create_key(
        self,
        reseller_id: str,
        *,
        scopes: Iterable[Scope] = ALL_SCOPES,
        allowed_ips: Sequence[str] = (),
        rate_limit: int | None = None,
        name: str = "",
        token: str | None = None,
        expires_at: datetime | None = None,
    ) -> IssuedKey:
        """Issue a key. ``token`` registers a key generated elsewhere (the demo key);
        ``expires_at``: the key stops working then."""
        await self.require_reseller(reseller_id)
        if token is None:
            key_id, token = tokens.new_token()
        else:
            found = tokens.key_id_of(token)
            if found is None:
                raise AccessRecordError("not a well-formed gateway API key")
            key_id = found
        try:
            key = ApiKey.model_validate(
                {
                    "id": key_id,
                    "reseller_id": reseller_id,
                    "name": name,
                    "scopes": frozenset(scopes),
                    "allowed_ips": tuple(allowed_ips),
                    "rate_limit": rate_limit,
                    "created_at": _now(),
                    "expires_at": expires_at,
                }
            )
        except ValidationError as exc:
            raise AccessRecordError(_problems(exc)) from exc
        if not key.scopes:
            raise AccessRecordError("a key needs at least one scope")
        created = await self._redis.set(
            self._keys.api_key(key.id), _key_json(key, tokens.digest(token)), nx=True
        )
        if not created:
            stored = await self.get_key(key.id)
            if stored is None or not tokens.matches(token, stored.digest):
                raise AccessRecordError(f"key id {key.id} is already taken")
            return IssuedKey(key=stored.key, token=SecretStr(token))  # registered before
        await self._redis.sadd(self._keys.reseller_keys(reseller_id), key.id)
        return IssuedKey(key=key, token=SecretStr(token))

    async def get_key(self, key_id: str) -> StoredKey | None:
        raw = await self._redis.get(self._keys.api_key(key_id))
        return _stored_key_from(raw) if raw is not None else None

    async def list_keys(self, reseller_id: str) -> list[ApiKey]:
        ids = sorted(
            _text(i) for i in await self._redis.smembers(self._keys.reseller_keys(reseller_id))
        )
        found = await self._get_many(self._keys.api_key(i) for i in ids)
        keys = [_stored_key_from(raw).key for raw in found if raw is not None]
        return sorted(keys, key=lambda k: (k.created_at, k.id))

    async def revoke_key(self, key_id: str) -> ApiKey:
        def change(record: dict[str, Any]) -> dict[str, Any]:
            return {**record, "status": "revoked"}

        raw = await self._update(self._keys.api_key(key_id), change, f"key {key_id}")
        return _stored_key_from(raw).key

    async def rotate_key(self, key_id: str, *, grace_seconds: float = 0) -> IssuedKey:
        """Issue a new key with the same scopes, allowlist and limit; retire the old one.

        With a grace period the old key keeps working until it expires, so the reseller
        can deploy the new one without an outage; without one it is revoked at once.

        Only a current key rotates: one revoked, expired or already being retired (it has
        an expiry, which only rotation sets) is refused, so rotating again can neither
        revive an expired key nor extend a grace period. The check is repeated inside the
        update that retires the key: of two operators rotating at once, one wins and the
        other's new key is withdrawn before anyone saw it."""
        if not 0 <= grace_seconds <= MAX_GRACE_SECONDS:
            raise AccessRecordError(f"the grace period must be 0 to {MAX_GRACE_SECONDS} seconds")
        stored = await self.get_key(key_id)
        if stored is None:
            raise AccessRecordError(f"no key {key_id}")
        old = stored.key
        _require_current(old, _now())
        issued = await self.create_key(
            old.reseller_id,
            scopes=old.scopes,
            allowed_ips=[str(net) for net in old.allowed_ips],
            rate_limit=old.rate_limit,
            name=old.name,
        )
        retire: dict[str, Any] = (
            {"expires_at": (_now() + timedelta(seconds=grace_seconds)).isoformat()}
            if grace_seconds > 0
            else {"status": "revoked"}
        )

        def change(record: dict[str, Any]) -> dict[str, Any]:
            _require_current(_stored_key_from(json.dumps(record)).key, _now())
            return {**record, **retire}

        try:
            await self._update(self._keys.api_key(key_id), change, f"key {key_id}")
        except AccessRecordError:
            await self._withdraw(issued.key)
            raise
        return issued

    async def _withdraw(self, key: ApiKey) -> None:
        """Remove a key issued a moment ago whose rotation did not happen."""
        await self._redis.delete(self._keys.api_key(key.id))
        await self._redis.srem(self._keys.reseller_keys(key.reseller_id), key.id)

    async def load(self, key_id: str) -> tuple[StoredKey, Reseller | None] | None:
        """A key and its reseller, as authentication needs them (two ``GET``s)."""
        stored = await self.get_key(key_id)
        if stored is None:
            return None
        return stored, await self.get_reseller(stored.key.reseller_id)

    # Helpers ----------------------------------------------------------------------
    async def _get_many(self, names: Iterable[str]) -> list[Any]:
        """GET several keys in one round trip (a pipeline, which Redis Cluster splits by
        slot where a multi-key ``MGET`` would fail)."""
        names = list(names)
        if not names:
            return []
        async with self._redis.pipeline(transaction=False) as pipe:
            for name in names:
                pipe.get(name)
            return list(await pipe.execute())

    async def _update(
        self, name: str, change: Callable[[dict[str, Any]], dict[str, Any]], what: str
    ) -> str:
        """Apply ``change`` to the JSON record at ``name`` with optimistic locking."""
        async with self._redis.pipeline(transaction=True) as pipe:
            while True:
                try:
                    await pipe.watch(name)
                    raw = await pipe.get(name)
                    if raw is None:
                        raise AccessRecordError(f"no {what}")
                    updated = json.dumps(change(json.loads(raw)))
                    pipe.multi()
                    pipe.set(name, updated)
                    await pipe.execute()
                    return updated
                except WatchError:
                    continue


def _require_current(key: ApiKey, now: datetime) -> None:
    """Refuse to rotate a key that is not the reseller's current one."""
    if key.status != "active":
        raise AccessRecordError(f"key {key.id} is revoked; create a new one instead")
    if key.expires_at is not None and now >= key.expires_at:
        raise AccessRecordError(f"key {key.id} has expired; create a new one instead")
    if key.expires_at is not None:
        raise AccessRecordError(
            f"key {key.id} was already rotated and stops working at "
            f"{key.expires_at.isoformat(timespec='seconds')}; rotate its replacement instead"
        )


def _problems(exc: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(p) for p in err['loc']) or 'value'}: {err['msg']}"
        for err in exc.errors(include_url=False, include_input=False)
    )


def _reseller_json(reseller: Reseller) -> str:
    record = reseller.model_dump(mode="json")
    secret = reseller.webhook_secret
    record["webhook_secret"] = secret.get_secret_value() if secret else None
    return json.dumps(record)


def _reseller_from(raw: bytes | str) -> Reseller:
    return Reseller.model_validate_json(raw)


def _key_json(key: ApiKey, digest: str) -> str:
    return json.dumps({**key.model_dump(mode="json"), "digest": digest})


def _stored_key_from(raw: bytes | str) -> StoredKey:
    record = json.loads(raw)
    digest = record.pop("digest")
    return StoredKey(key=ApiKey.model_validate(record), digest=digest)
