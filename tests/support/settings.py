"""Settings of a test gateway: the one builder every test folder starts from.

Each folder adds what it is about (suppliers at its sandboxes, catalog timings, order
timings) as overrides; what every test gateway needs is set here once: no sandboxes, the
test's Redis and key prefix, and an encryption key for codes at rest (the orders service
refuses to start without one). One key for the whole run: gateways and worker processes
that share a Redis must share it, or one could not read the codes another stored.
"""

from __future__ import annotations

import os
from typing import Any

from gateway.settings import Settings

#: The Redis the suite runs against (``scripts/test.sh`` sets it; see tests/conftest.py).
REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")

#: A valid Fernet key, fixed so that subprocesses and deploy manifests can be given it.
ENCRYPTION_KEY = "aW5zZWN1cmUtdGVzdC1rZXktMDEyMzQ1Njc4OWFiY2Q="


def gateway_settings(redis_url: str | None, key_prefix: str, **overrides: Any) -> Settings:
    """Settings for a gateway on ``redis_url`` (``None``: the embedded store) under
    ``key_prefix``, with no sandboxes and the run's encryption key; ``overrides`` are
    ``Settings`` fields. ``orders`` given as a dict keeps the encryption key unless it
    names its own; an ``OrderSettings`` is used as it is."""
    orders = overrides.pop("orders", {})
    if isinstance(orders, dict):
        orders = {"encryption_keys": [ENCRYPTION_KEY], **orders}
    values: dict[str, Any] = {"sandbox": "off", **overrides}
    return Settings(redis_url=redis_url, key_prefix=key_prefix, orders=orders, **values)
