"""Adapter discovery through the ``gateway.adapters`` entry-point group.

The built-in adapters register exactly as a third-party package would, in
``pyproject.toml``::

    [project.entry-points."gateway.adapters"]
    my_supplier = "my_package:MySupplierAdapter"

The entry-point name must equal the adapter's ``name``.
"""

from __future__ import annotations

from importlib.metadata import entry_points

from adapters.base import SupplierAdapter

GROUP = "gateway.adapters"


class AdapterRegistryError(RuntimeError):
    pass


def discover() -> dict[str, type[SupplierAdapter]]:
    """Every installed adapter class by supplier name, in name order."""
    found: dict[str, type[SupplierAdapter]] = {}
    for ep in sorted(entry_points(group=GROUP), key=lambda e: e.name):
        cls = ep.load()
        if not (isinstance(cls, type) and issubclass(cls, SupplierAdapter)):
            raise AdapterRegistryError(f"entry point {ep.name!r} is not a SupplierAdapter")
        if cls.name != ep.name:
            raise AdapterRegistryError(
                f"entry point {ep.name!r} loads adapter named {cls.name!r}: they must match"
            )
        found[ep.name] = cls
    return found
