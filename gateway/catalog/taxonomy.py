"""Mapping each supplier's categories onto one unified taxonomy.

Suppliers name the same shelf differently (Gaming Goods' "Game Keys", the voucher
supplier's "Gaming"). An optional TOML file (``catalog.taxonomy_file``) says what each
supplier's category is called in the unified catalog; a ``["*"]`` table applies to every
supplier (after the supplier's own table)::

    [gaming_goods]
    "Game Keys" = "Games"

    [vouchers]
    "Gaming" = "Games"

    ["*"]
    "Gift Card" = "Gift Cards"

Names are matched ignoring case and whitespace (as the index merges labels).
Unmapped categories pass through with their spacing tidied; names that differ only by
case or spacing merge in the index anyway. The mapping is applied when an instance
builds its index, not when a snapshot is written: snapshots keep what the supplier said,
so changing the file needs a restart, not a re-sync.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from pathlib import Path

from gateway.catalog.text import merge_key

ANY_SUPPLIER = "*"


class TaxonomyError(ValueError):
    """The mapping file is missing or malformed (raised at start-up, with the reason)."""


def category_key(name: str) -> str:
    """The identity of a category name, as the index merges them (case and whitespace
    ignored: "Game Keys", "game  keys" and "GameKeys" are one)."""
    return merge_key(name) or ""


def tidy(name: str) -> str:
    return " ".join(name.split())


class Taxonomy:
    """``taxonomy(supplier, category) -> unified category``: the callable the index takes."""

    def __init__(self, mapping: Mapping[str, Mapping[str, str]] | None = None) -> None:
        self._maps: dict[str, dict[str, str]] = {}
        for supplier, table in (mapping or {}).items():
            self._maps[supplier] = {category_key(k): tidy(v) for k, v in table.items()}

    @classmethod
    def from_file(cls, path: Path | None) -> Taxonomy:
        if path is None:
            return cls()
        try:
            raw = tomllib.loads(Path(path).read_text(encoding="utf-8"))
        except FileNotFoundError as exc:
            raise TaxonomyError(f"taxonomy file {path} does not exist") from exc
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            raise TaxonomyError(f"taxonomy file {path} cannot be read: {exc}") from exc
        return cls(cls._validate(raw, str(path)))

    @staticmethod
    def _validate(raw: dict[str, object], where: str) -> dict[str, dict[str, str]]:
        mapping: dict[str, dict[str, str]] = {}
        for supplier, table in raw.items():
            if not isinstance(table, dict):
                raise TaxonomyError(
                    f"{where}: [{supplier}] must be a table of "
                    '"supplier category" = "unified category"'
                )
            for category, unified in table.items():
                if not isinstance(unified, str) or not unified.strip():
                    raise TaxonomyError(
                        f"{where}: [{supplier}] {category!r} must map to a non-empty string"
                    )
            mapping[supplier] = dict(table)
        return mapping

    def __call__(self, supplier: str, category: str | None) -> str | None:
        if category is None:
            return None
        key = category_key(category)
        if not key:
            return None
        for table in (self._maps.get(supplier), self._maps.get(ANY_SUPPLIER)):
            if table and key in table:
                return table[key]
        return tidy(category)
