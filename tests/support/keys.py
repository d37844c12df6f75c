"""API keys for tests that hold a Redis client and a key prefix but run no gateway."""

from __future__ import annotations

from typing import Any

import httpx

from gateway.access.testing import TestCaller, issue_key
from gateway.bootstrap import bootstrap
from tests.support.settings import gateway_settings


async def issue_key_in(redis: Any, key_prefix: str, **kwargs: Any) -> TestCaller:
    """``gateway.access.testing.issue_key`` (same keyword arguments) for a test with no
    gateway of its own: the reseller and key are written through a gateway built over
    ``redis`` and ``key_prefix`` (built, not started: nothing runs in the background), so
    a gateway or server the test starts on that prefix later admits the key."""
    async with httpx.AsyncClient() as http:
        gateway = await bootstrap(
            gateway_settings(None, key_prefix), redis=redis, http=http, adapters={}
        )
        return await issue_key(gateway, **kwargs)
