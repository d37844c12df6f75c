"""The Starlette application: composes each feature's routes over one ``Gateway``."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from starlette.applications import Starlette

from gateway.api import health
from gateway.bootstrap import Gateway, bootstrap
from gateway.settings import Settings


def create_app(settings: Settings | None = None, *, gateway: Gateway | None = None) -> Starlette:
    """Build the app. With ``gateway`` given (tests), the app uses it and does not close it;
    otherwise it bootstraps from ``settings`` (or the environment) at start-up."""

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        owned = gateway is None
        gw = gateway or await bootstrap(settings or Settings())
        app.state.gateway = gw
        try:
            yield
        finally:
            if owned:
                await gw.aclose()

    return Starlette(routes=[*health.routes], lifespan=lifespan)
