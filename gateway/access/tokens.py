"""The API key format: ``gw_live_<key id>_<secret>``, and how a key is hashed.

* ``<key id>`` is 12 lowercase hex characters (48 random bits): public, printed in lists
  and logs, and the look-up key of the record, so authentication costs one ``GET`` (or
  none, when cached) instead of a search;
* ``<secret>`` is ``secrets.token_urlsafe(32)``: 32 random bytes, 43 characters.

The parts sit at fixed offsets, so the ``_`` and ``-`` that URL-safe base64 may contain
never confuse the parser. The prefix lets secret scanners recognise a leaked key.

Why a plain SHA-256 and not bcrypt/scrypt/argon2: slow, salted hashes exist to protect
*low-entropy* secrets (passwords) from offline guessing. A key with 256 random bits
cannot be guessed whatever the hash speed, so a fast hash loses nothing, and it keeps
authentication cheap enough to run on every request. The stored digest is compared with
``hmac.compare_digest`` so the comparison time does not reveal how many bytes matched.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets

PREFIX = "gw_live_"
KEY_ID_LENGTH = 12
_SECRET_LENGTH = 43  # len(secrets.token_urlsafe(32))
_KEY_ID = re.compile(r"^[0-9a-f]{12}$")
_TOKEN = re.compile(r"^gw_live_([0-9a-f]{12})_([A-Za-z0-9_-]{43})$")


def new_key_id() -> str:
    return secrets.token_hex(KEY_ID_LENGTH // 2)


def new_token(key_id: str | None = None) -> tuple[str, str]:
    """A fresh key; returns ``(key_id, token)``."""
    key_id = key_id or new_key_id()
    if not _KEY_ID.match(key_id):
        raise ValueError("a key id is 12 lowercase hex characters")
    return key_id, f"{PREFIX}{key_id}_{secrets.token_urlsafe(32)}"


def key_id_of(token: str) -> str | None:
    """The key id inside a well-formed token, else ``None`` (never raises)."""
    match = _TOKEN.match(token)
    return match.group(1) if match else None


def digest(token: str) -> str:
    """What the store keeps: the hex SHA-256 of the whole key."""
    return hashlib.sha256(token.encode()).hexdigest()


def matches(token: str, stored_digest: str) -> bool:
    """Constant-time comparison of a presented key with a stored digest."""
    return hmac.compare_digest(digest(token).encode(), stored_digest.encode())


def new_webhook_secret() -> str:
    """A reseller's webhook signing secret (256 random bits)."""
    return "whsec_" + secrets.token_urlsafe(32)
