"""Building the configured supplier adapters, and the built-in sandboxes for the demo."""

from __future__ import annotations

from typing import Any

import httpx

from adapters.base import SupplierAdapter
from adapters.registry import discover
from adapters.sandbox_server import BackgroundServer
from gateway.settings import Settings


class SupplierConfigError(RuntimeError):
    def __init__(self, message: str, *, supplier: str | None = None) -> None:
        super().__init__(message)
        self.supplier = supplier


def sandbox_wanted(settings: Settings) -> bool:
    if settings.sandbox != "auto":
        return settings.sandbox == "on"
    return not any(settings.supplier_values(name).get("base_url") for name in discover())


def start_sandboxes(
    *, host: str = "127.0.0.1", ports: dict[str, int] | None = None, **options: Any
) -> dict[str, BackgroundServer]:
    """Start every installed adapter's sandbox on ``host``: on its port from ``ports``,
    else on a free one. ``options``: sandbox options by supplier name."""
    servers: dict[str, BackgroundServer] = {}
    for name, cls in discover().items():
        try:
            app = cls.create_sandbox(**options.get(name, {}))
        except NotImplementedError:
            continue
        port = (ports or {}).get(name, 0)
        servers[name] = BackgroundServer(app, host=host, port=port).start()
    return servers


def sandbox_environment(servers: dict[str, BackgroundServer]) -> dict[str, str]:
    """Environment variables pointing each supplier at its running sandbox."""
    adapters = discover()
    env: dict[str, str] = {}
    for name, server in servers.items():
        env_name = name.replace("-", "_").upper()
        for field, value in adapters[name].sandbox_settings(server.url).items():
            env[f"GATEWAY_SUPPLIERS__{env_name}__{field.upper()}"] = str(value)
    return env


def build_adapters(
    settings: Settings, *, http: httpx.AsyncClient, redis: Any
) -> dict[str, SupplierAdapter]:
    """One adapter per installed supplier that has settings and is enabled."""
    adapters: dict[str, SupplierAdapter] = {}
    for name, cls in discover().items():
        values = settings.supplier_values(name)
        if not values:
            continue
        try:
            supplier_settings = cls.settings_model.model_validate(values)
        except ValueError as exc:
            raise SupplierConfigError(
                f"settings of supplier {name!r} are invalid: {exc}", supplier=name
            ) from exc
        if not supplier_settings.enabled:
            continue
        adapters[name] = cls(
            supplier_settings, http=http, redis=redis, key_prefix=settings.key_prefix
        )
    return adapters
