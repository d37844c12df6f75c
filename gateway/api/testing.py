"""Running the app in-process for tests of any ``/v1`` feature.

    gw = await bootstrap(settings, redis=redis, adapters={})
    app = create_app(gateway=gw)
    async with serve_in_process(app) as client:
        caller = await issue_key(gw, scopes=["catalog:read"])  # gateway.access.testing
        response = await client.get("/v1/products", headers=caller.headers)

``serve_in_process`` runs the app's lifespan (so ``gateway.services`` start) and talks
to it through ``httpx.ASGITransport`` from a chosen client address (for allowlist and
proxy tests).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import httpx
from starlette.applications import Starlette


@contextlib.asynccontextmanager
async def serve_in_process(
    app: Starlette, *, client_ip: str = "127.0.0.1", base_url: str = "http://gateway.test"
) -> AsyncIterator[httpx.AsyncClient]:
    """An ``httpx.AsyncClient`` talking to ``app`` in-process, lifespan included."""
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, client=(client_ip, 40000))
        async with httpx.AsyncClient(transport=transport, base_url=base_url) as client:
            yield client
