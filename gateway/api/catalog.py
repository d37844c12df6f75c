"""Catalog routes: browse, search, detail, categories, brands, supplier status.

Every read is answered from the instance's in-memory index (``CatalogService.state``):
no Redis round trip per request. Detail is the exception by nature (it comes from the
supplier, through two cache layers). Prices are the calling reseller's: its own markup
rule when it has one, else the configured rules.

Mixed currencies: prices are never converted. ``min_price``/``max_price`` are minor units
of ``currency`` and require it; a price sort orders by currency first, then amount.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from gateway.api.errors import ApiError
from gateway.api.spec import operation, parse_query
from gateway.bootstrap import Gateway
from gateway.catalog import schema
from gateway.catalog.detail import DetailNotFound, DetailUnavailable
from gateway.catalog.index import CatalogIndex, QueryError, SearchQuery
from gateway.catalog.pages import price_basis
from gateway.catalog.render import render_canonical, render_detail
from gateway.catalog.service import CatalogService, CatalogState
from gateway.pricing import MarkupRule

MAX_PAGE = 10_000
LOADING_RETRY_AFTER = "5"


class ProductQuery(BaseModel):
    """Filters, sort and pagination shared by ``/v1/products`` and ``/v1/search``."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    q: str | None = Field(
        default=None,
        max_length=200,
        description="Full text over name, brand, category and description: prefix "
        "matching, one typo tolerated in words of 5+ letters, case/accent-insensitive.",
    )
    category: str | None = Field(default=None, max_length=100, description="Unified category.")
    brand: str | None = Field(default=None, max_length=100)
    supplier: str | None = Field(
        default=None,
        max_length=64,
        description="Products with an offer from this supplier (refused with 400 when the "
        "gateway hides suppliers: catalog.show_offer_suppliers).",
    )
    country: str | None = Field(
        default=None, pattern=r"^[A-Za-z]{3}$", description="ISO 3166-1 alpha-3."
    )
    currency: str | None = Field(default=None, pattern=r"^[A-Za-z]{3}$", description="ISO 4217.")
    min_price: int | None = Field(
        default=None, ge=0, le=10**12, description="Minor units of `currency` (required)."
    )
    max_price: int | None = Field(
        default=None, ge=0, le=10**12, description="Minor units of `currency` (required)."
    )
    in_stock: bool | None = Field(default=None, description="Only products in stock (true).")
    sort: Literal["relevance", "price_asc", "price_desc", "name"] | None = Field(
        default=None,
        description="Default: relevance with q, else name. Price sorts order by currency, "
        "then amount (currencies are never converted).",
    )
    page: int = Field(default=1, ge=1, le=MAX_PAGE)
    page_size: int = Field(default=20, ge=1, le=100)
    facets: bool = Field(
        default=False, description="Add counts per category, brand, supplier and country."
    )

    @field_validator("q", "category", "brand", "supplier", mode="after")
    @classmethod
    def _blank_is_absent(cls, value: str | None) -> str | None:
        return value or None

    @field_validator("country", "currency", mode="after")
    @classmethod
    def _upper(cls, value: str | None) -> str | None:
        return value.upper() if value else None

    @model_validator(mode="after")
    def _price_bounds(self) -> ProductQuery:
        if (self.min_price is not None or self.max_price is not None) and not self.currency:
            raise ValueError("min_price and max_price need currency (prices are not converted)")
        if (
            self.min_price is not None
            and self.max_price is not None
            and self.min_price > self.max_price
        ):
            raise ValueError("min_price is greater than max_price")
        return self


class SearchParams(ProductQuery):
    q: str = Field(
        min_length=1,
        max_length=200,
        description="Search text (required): prefix matching, one typo tolerated in words "
        "of 5+ letters, case/accent-insensitive.",
    )


def _service(request: Request) -> CatalogService:
    gateway: Gateway = request.app.state.gateway
    return gateway.services.catalog


def _reseller_rule(request: Request) -> MarkupRule | None:
    # The access guard leaves the reseller in the request's state (``request.state``
    # reads the same dict, through a wrapper object built per request).
    reseller = request.scope.get("state", {}).get("reseller")
    return getattr(reseller, "markup", None)


_JSON_TYPE = (b"content-type", b"application/json")


class _JsonBody(Response):
    """A JSON answer already serialised (the page caches hold bytes): its two headers
    are built directly, without ``Response``'s rendering and media-type checks, which
    cost more than the cached look-up itself (0.3 µs here, 1 µs through
    ``Response.__init__``).

    Skipping ``Response.__init__`` means setting every attribute it sets, so a Starlette
    that sets one more would break this. Kept for the speed, and guarded:
    pyproject.toml pins Starlette below the first version not tested, and
    ``tests/test_library_contracts.py`` checks that ``Response.__init__`` sets exactly
    these attributes and that both answer with the same ASGI messages."""

    media_type = "application/json"

    def __init__(self, body: bytes) -> None:
        self.status_code = 200
        self.background = None
        self.body = body
        self.raw_headers = [(b"content-length", b"%d" % len(body)), _JSON_TYPE]


def _loading() -> ApiError:
    return ApiError(
        503,
        "catalog_loading",
        "the catalog is still loading; try again shortly",
        headers={"Retry-After": LOADING_RETRY_AFTER},
    )


def _loaded_index(service: CatalogService) -> CatalogIndex:
    index = service.index
    if index is None:
        raise _loading()
    return index


def _page(request: Request, model: type[ProductQuery]) -> Response:
    state = _service(request).state
    if state is None:
        raise _loading()
    rule = _reseller_rule(request)
    basis = price_basis(rule)
    route = request.scope["path"]
    raw_query: bytes = request.scope.get("query_string", b"")
    body = state.pages.answered(route, raw_query, basis)
    if body is None:
        body = _render(state, parse_query(request, model), rule)
        state.pages.remember(route, raw_query, basis, body)
    return _JsonBody(body)


def _render(state: CatalogState, params: ProductQuery, rule: MarkupRule | None) -> bytes:
    if params.supplier is not None and not state.pages.show_suppliers:
        raise ApiError(
            400,
            "invalid_parameter",
            "supplier: this gateway does not show which supplier sells a product",
        )
    sort = params.sort
    if sort == "relevance" and not params.q:
        sort = None  # nothing to rank by: the default (name) order
    query = SearchQuery(
        text=params.q,
        category=params.category,
        brand=params.brand,
        supplier=params.supplier,
        country=params.country,
        currency=params.currency,
        min_price=params.min_price,
        max_price=params.max_price,
        in_stock=params.in_stock,
        sort=sort,
        offset=(params.page - 1) * params.page_size,
        limit=params.page_size,
        facets=params.facets,
    )
    try:
        return state.pages.page(query, params.page, params.page_size, rule)
    except QueryError as exc:  # the query model should have caught it; say so anyway
        raise ApiError(400, "invalid_parameter", str(exc)) from exc


@operation(
    summary="Browse the merged catalog",
    operation_id="listProducts",
    tag="catalog",
    scope="catalog:read",
    query=ProductQuery,
    response=schema.ProductPageResponse,
    errors=(400, 503),
    description="One row per canonical product (the same card or key sold by several "
    "suppliers is one row, with its best price and offer_count), and supplier products "
    "not matched to one; filtered, sorted and paginated, with your prices.",
)
async def list_products(request: Request) -> Response:
    return _page(request, ProductQuery)


@operation(
    summary="Search the merged catalog",
    operation_id="searchProducts",
    tag="catalog",
    scope="catalog:read",
    query=SearchParams,
    response=schema.ProductPageResponse,
    errors=(400, 503),
    description="Relevance-ranked full-text search across every supplier, with the same "
    "filters and pagination as listProducts.",
)
async def search_products(request: Request) -> Response:
    return _page(request, SearchParams)


@operation(
    summary="One product's full detail",
    operation_id="getProduct",
    tag="catalog",
    scope="catalog:read",
    response=schema.ProductDetailResponse,
    errors=(404, 503),
    description="A canonical product id: each variant with its offers (supplier, price, "
    "stock, delivery time), from the served catalog. A supplier product id: description, "
    "terms, how to use, activation details, specifications and variants with your prices, "
    "fetched from the supplier and cached; while the supplier is unreachable, or its "
    "request budget is kept for orders, an older cached copy is served with stale=true, "
    "or 503 supplier_busy with Retry-After when there is none.",
)
async def get_product(request: Request) -> Response:
    service = _service(request)
    index = _loaded_index(service)
    product_id: str = request.path_params["product_id"]
    row = index.canonical_row(product_id) if len(product_id) <= 300 else None
    if row is not None:
        rule = _reseller_rule(request)
        body = render_canonical(
            *row,
            offers=service.offers,
            unit_rule=lambda product: service.offer_rule(product, rule),
            reseller_rule=rule,
            show_suppliers=service.settings.show_offer_suppliers,
        )
        return JSONResponse({"data": body})
    product = service.find(product_id) if len(product_id) <= 300 else None
    if product is None:
        raise ApiError(404, "not_found", f"no product {product_id[:300]!r} in the catalog")
    try:
        reseller = request.scope.get("state", {}).get("reseller")
        result = await service.details.get(product, caller=getattr(reseller, "id", None))
    except DetailNotFound as exc:
        raise ApiError(404, "not_found", f"product {product_id!r} is no longer available") from exc
    except DetailUnavailable as exc:
        retry = exc.retry_after
        raise ApiError(
            503,
            "supplier_unavailable",
            f"the supplier of {product_id!r} cannot be reached; try again later",
            headers={"Retry-After": str(max(1, int(retry or 0) + 1))},
        ) from exc
    body = render_detail(
        result.detail, product, service.prices, _reseller_rule(request), stale=result.stale
    )
    if not service.settings.show_offer_suppliers:
        body["supplier"], body["suppliers"] = None, []
    return JSONResponse({"data": body})


@operation(
    summary="Categories across suppliers",
    operation_id="listCategories",
    tag="catalog",
    scope="catalog:read",
    response=schema.NamedCountsResponse,
    errors=(503,),
    description="Unified categories with product counts; names differing only by case or "
    "spacing are one category.",
)
async def list_categories(request: Request) -> Response:
    index = _loaded_index(_service(request))
    return JSONResponse({"data": [{"name": n, "product_count": c} for n, c in index.categories()]})


@operation(
    summary="Brands across suppliers",
    operation_id="listBrands",
    tag="catalog",
    scope="catalog:read",
    response=schema.NamedCountsResponse,
    errors=(503,),
)
async def list_brands(request: Request) -> Response:
    index = _loaded_index(_service(request))
    return JSONResponse({"data": [{"name": n, "product_count": c} for n, c in index.brands()]})


def _iso(ts: float | None) -> str | None:
    return datetime.fromtimestamp(ts, UTC).isoformat() if ts is not None else None


@operation(
    summary="Suppliers and their catalog sync status",
    operation_id="listSuppliers",
    tag="catalog",
    scope="catalog:read",
    response=schema.SupplierStatusResponse,
)
async def list_suppliers(request: Request) -> Response:
    service = _service(request)
    statuses = await service.statuses()
    state = service.state
    settings = service.settings
    now = datetime.now(UTC).timestamp()
    data = []
    for name, adapter in service.adapters.items():
        status = statuses[name]
        data.append(
            {
                "name": name,
                "display_name": getattr(adapter, "display_name", name),
                "products": status.products,
                "version": status.version,
                "served_version": state.versions.get(name) if state is not None else None,
                "stale": status.is_stale(
                    now, settings.sync_interval_seconds, settings.sync_lock_seconds
                ),
                "syncing": status.syncing,
                "last_success_at": _iso(status.last_success_at),
                "last_attempt_at": _iso(status.last_attempt_at),
                "last_error": status.last_error,
                "last_error_at": _iso(status.last_error_at),
                "duration_seconds": status.duration_seconds,
                "pages": status.pages,
                "circuit": adapter.breaker.state.value,
            }
        )
    return JSONResponse({"data": data})


routes = [
    Route("/v1/products", list_products, methods=["GET"]),
    Route("/v1/search", search_products, methods=["GET"]),
    Route("/v1/products/{product_id}", get_product, methods=["GET"]),
    Route("/v1/categories", list_categories, methods=["GET"]),
    Route("/v1/brands", list_brands, methods=["GET"]),
    Route("/v1/suppliers", list_suppliers, methods=["GET"]),
]
