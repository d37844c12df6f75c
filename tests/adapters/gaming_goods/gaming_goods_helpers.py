"""Helpers shared by the Gaming Goods tests (a uniquely named module: importable from
every test module here without clashing with other suppliers' helpers)."""

from __future__ import annotations

from typing import Any

from starlette.applications import Starlette

from adapters.gaming_goods import GamingGoodsAdapter, GamingGoodsSettings
from adapters.gaming_goods.sandbox import SANDBOX_API_KEY, create_sandbox

AUTH = {"X-API-Key": SANDBOX_API_KEY}
#: Enough for any test; the rate-limit tests build their own sandbox.
GENEROUS = {"default": (100_000, 60.0)}


def small_sandbox(**options: Any) -> Starlette:
    values: dict[str, Any] = {
        "catalog_size": 60,
        "fulfil_delay": 0.1,
        "rate_limits": GENEROUS,
        "inactive_share": 0.1,  # a few delisted products even in a small catalog
    }
    values.update(options)
    return create_sandbox(**values)


def adapter_settings(base_url: str, **overrides: Any) -> GamingGoodsSettings:
    values: dict[str, Any] = {
        **GamingGoodsAdapter.sandbox_settings(base_url),
        "page_size": 25,
        # The documented 100/min would space requests 0.6 s apart: tests lift it.
        "rate_limits": {"default": {"limit": 100_000, "period_seconds": 60}},
        "retries": {"max_attempts": 3, "backoff_base": 0.01, "backoff_max": 0.05},
        "timeouts": {"connect": 2.0, "read": 5.0, "total": 5.0},
        "reconcile_delay": 0.0,
    }
    values.update(overrides)
    return GamingGoodsSettings.model_validate(values)
