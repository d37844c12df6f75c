"""A gateway instance for subprocess tests: the real app (``gateway.app.create_app``,
settings from the environment) whose orders validate against the sandboxes' products.

    uvicorn instance_app:create --factory
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from orders_harness import load_products, static_catalog
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from gateway.app import create_app
from gateway.settings import Settings


async def ready(request: Request) -> Response:
    loaded = getattr(request.app.state, "catalog_loaded", False)
    return JSONResponse({"ready": loaded}, 200 if loaded else 503)


def create() -> Starlette:
    app = create_app(Settings(), extra_routes=[Route("/_test/ready", ready)])
    inner = app.router.lifespan_context

    @contextlib.asynccontextmanager
    async def lifespan(a: Starlette) -> AsyncIterator[None]:
        async with inner(a):
            gateway = a.state.gateway
            products = await load_products(gateway.adapters)
            gateway.services.orders.catalog = static_catalog(products)
            a.state.catalog_loaded = True
            yield

    app.router.lifespan_context = lifespan
    return app
