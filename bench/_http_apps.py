"""The lab servers ``bench.http_search`` compares the gateway with, as uvicorn app
factories (each runs in its own process, configured by environment variables the
benchmark sets). The gateway itself runs as ``gateway serve`` (``bench._serve``).

* ``catalog_only_app``: the same catalog routes and index with no middleware and no
  access guard: what the search itself costs over HTTP (``BENCH_PAGE_CACHE=0``: with
  the page caches off, so every request searches, renders and serialises).
* ``bare_app``: a bare Starlette endpoint answering every request with the bytes in
  ``BENCH_BODY_FILE`` (a real search page, pre-serialised): the ceiling.
"""

from __future__ import annotations

import contextlib
import dataclasses
import gc
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from bench import synthetic
from gateway.catalog.index import CatalogIndex
from gateway.catalog.matching import BrandTable, Matcher
from gateway.catalog.pages import PageCache
from gateway.catalog.service import CatalogState


def _settings() -> Any:
    from gateway.settings import Settings

    return Settings(
        redis_url=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"),
        key_prefix=os.environ["BENCH_PREFIX"],
        sandbox="off",
        suppliers={},
        log_level="WARNING",
        log_json=False,
        orders={"encryption_keys": [Fernet.generate_key().decode()], "inline_workers": False},
    )


def _index() -> CatalogIndex:
    return CatalogIndex.build(
        synthetic.products(int(os.environ["BENCH_PRODUCTS"])),
        synthetic.price_list(),
        matcher=Matcher(BrandTable.load()),
    )


def _install(gateway: Any, index: CatalogIndex) -> None:
    service = gateway.services.catalog
    service.prices = synthetic.price_list()
    state = CatalogState.of(index)
    if os.environ.get("BENCH_PAGE_CACHE") == "0":  # every request searches and renders
        state = dataclasses.replace(state, pages=PageCache(index, summary_entries=0, page_bytes=0))
    service.state = state
    gc.freeze()  # as CatalogService.refresh does after a swap


def catalog_only_app() -> Starlette:
    from gateway.api import catalog
    from gateway.bootstrap import bootstrap

    index = _index()

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        gateway = await bootstrap(_settings())
        _install(gateway, index)
        app.state.gateway = gateway
        try:
            yield
        finally:
            await gateway.aclose()

    return Starlette(routes=catalog.routes, lifespan=lifespan)


def bare_app() -> Starlette:
    body = Path(os.environ["BENCH_BODY_FILE"]).read_bytes()

    async def page(request: Request) -> Response:
        return Response(body, media_type="application/json")

    return Starlette(routes=[Route("/v1/search", page, methods=["GET"])])
