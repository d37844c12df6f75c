"""Activation codes at rest: authenticated encryption with Fernet, rotatable keys.

Fernet (AES-128-CBC + HMAC-SHA256, from ``cryptography``) gives confidentiality and
integrity: a token altered in Redis fails to decrypt instead of yielding wrong codes.
``MultiFernet`` takes the configured keys newest first: it encrypts with the first and
decrypts with any, so rotation is "prepend a new key, keep the old ones until every
token has been re-encrypted (``gateway orders rotate-keys``), then drop them".

Without a configured key the demo (embedded in-process store, forgotten on exit) uses an
ephemeral key and says so in the log; with a real Redis the orders service refuses to
start, because codes written under a key nobody kept could never be read again.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

log = logging.getLogger("gateway.orders.crypto")


class EncryptionKeyError(RuntimeError):
    """The configured keys are missing or malformed: the orders service cannot start."""


class CodeCipher:
    def __init__(self, keys: Sequence[bytes | str]) -> None:
        if not keys:
            raise EncryptionKeyError("at least one encryption key is required")
        fernets = []
        for position, key in enumerate(keys):
            try:
                fernets.append(Fernet(key))
            except (ValueError, TypeError) as exc:
                raise EncryptionKeyError(
                    f"orders.encryption_keys[{position}] is not a Fernet key (32 url-safe "
                    "base64-encoded bytes; make one with `gateway orders generate-key`)"
                ) from exc
        self._fernet = MultiFernet(fernets)

    def encrypt(self, data: bytes) -> str:
        return self._fernet.encrypt(data).decode("ascii")

    def decrypt(self, token: str | bytes) -> bytes:
        raw = token.encode("ascii") if isinstance(token, str) else token
        try:
            return self._fernet.decrypt(raw)
        except InvalidToken as exc:
            raise EncryptionKeyError(
                "stored codes cannot be decrypted with any configured key (was a key "
                "removed before rotate-keys finished?)"
            ) from exc

    def rotate(self, token: str) -> str:
        """The same plaintext under the newest key (a no-op for tokens already under it,
        apart from a fresh timestamp)."""
        return self._fernet.rotate(token.encode("ascii")).decode("ascii")

    @staticmethod
    def generate_key() -> str:
        return Fernet.generate_key().decode("ascii")


def cipher_from_settings(keys: Sequence[str], *, embedded_store: bool) -> CodeCipher:
    """The cipher for the configured keys, or an ephemeral one for the embedded demo store."""
    if keys:
        return CodeCipher(list(keys))
    if embedded_store:
        log.warning(
            "orders.encryption_keys is not set: using an ephemeral key for the embedded "
            "demo store (codes are unreadable after a restart; set "
            "GATEWAY_ORDERS__ENCRYPTION_KEYS for anything but a demo)"
        )
        return CodeCipher([Fernet.generate_key()])
    raise EncryptionKeyError(
        "orders.encryption_keys is not set: activation codes must be encrypted at rest in "
        "Redis. Generate a key with `gateway orders generate-key` and set "
        "GATEWAY_ORDERS__ENCRYPTION_KEYS='[\"<key>\"]' (newest first when rotating)"
    )
