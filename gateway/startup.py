"""Start-up checks: a configuration that cannot work is refused in one line.

``gateway serve`` reads the settings and builds the gateway once (``bootstrap``: the
Redis connection and its PING, the suppliers' settings, the price list, the taxonomy,
the brand table and match overrides, the order encryption keys) before it starts the
server, and closes it again. What fails there is a configuration error, said in one
line with what to do about it, and the command exits non-zero; without this check the
same errors surfaced as a JSON traceback from the app's lifespan inside uvicorn.

The check builds with the same code as the server (one way of doing each thing); it
only opens and closes connections, and starts no background work.
"""

from __future__ import annotations

import asyncio

from pydantic import ValidationError

from gateway.catalog.matching import MatchingError
from gateway.catalog.taxonomy import TaxonomyError
from gateway.observability.logging import redact
from gateway.orders.crypto import EncryptionKeyError
from gateway.settings import Settings
from gateway.store import StoreUnavailable, display_url
from gateway.suppliers import SupplierConfigError


class StartupError(RuntimeError):
    """A configuration the gateway cannot start with; the message says why and how to
    fix it, on one line."""


def load_settings() -> Settings:
    """``Settings()``, or ``StartupError`` naming each invalid setting by its variable."""
    try:
        return Settings()
    except ValidationError as exc:
        raise StartupError(f"invalid settings: {settings_errors(exc)}") from None


def settings_errors(exc: ValidationError, within: str = "") -> str:
    """Every error of ``exc`` as ``GATEWAY_HTTP__PORT: <what is wrong>``, joined with
    ``; `` (``within``: the section's variable prefix, ``SUPPLIERS__VOUCHERS__``).
    Values are not repeated: one may be a secret."""
    parts = []
    for error in exc.errors():
        path = "__".join(str(p) for p in error["loc"] if not isinstance(p, int)).upper()
        parts.append(f"GATEWAY_{within}{path}: {error['msg']}")
    return "; ".join(parts)


async def _build_and_close(settings: Settings) -> None:
    from gateway.bootstrap import bootstrap

    gateway = await bootstrap(settings)
    await gateway.aclose()


def check(settings: Settings) -> None:
    """Build the gateway from ``settings`` and close it; ``StartupError`` if it cannot
    be built."""
    try:
        asyncio.run(_build_and_close(settings))
    except StoreUnavailable as exc:
        where = display_url(settings.redis_url or "")
        message = (
            f"Redis at {where} is not reachable ({exc.__cause__ or exc}): start it, or "
            "point GATEWAY_REDIS_URL at a running Redis (unset it for the in-memory demo)"
        )
    except SupplierConfigError as exc:
        cause = exc.__cause__
        if isinstance(cause, ValidationError) and exc.supplier is not None:
            within = f"SUPPLIERS__{exc.supplier.upper()}__"
            message = f"invalid supplier settings: {settings_errors(cause, within)}"
        else:
            message = str(exc)
    except (EncryptionKeyError, TaxonomyError, MatchingError) as exc:
        message = str(exc)
    except ValueError as exc:  # a setting the model accepts but a part refuses
        message = f"invalid settings: {exc}"
    else:
        return
    raise StartupError(redact(" ".join(message.split())))
