"""Product and variant ids: built and taken apart here, nowhere else.

A product id is ``<supplier>:<upstream product id>``; a variant id is
``<product id>:<variant key>`` (see ``adapters.models``). The upstream id may itself
contain ``:`` (it is the upstream's, not ours), so a variant id is split at the *first*
colon (the supplier name has none) and the *last* (the key has none). Adapters, the
order layer and the catalog all read ids through ``parse_variant_id``: three hand-written
splits would sooner or later disagree about an id with a colon in its upstream part.
"""

from __future__ import annotations

from typing import NamedTuple


class VariantRef(NamedTuple):
    """The three parts of a variant id."""

    supplier: str
    upstream_id: str
    key: str

    @property
    def product_id(self) -> str:
        return product_id(self.supplier, self.upstream_id)


def product_id(supplier: str, upstream_id: str | int) -> str:
    return f"{supplier}:{upstream_id}"


def variant_id(supplier: str, upstream_id: str | int, key: str) -> str:
    return f"{supplier}:{upstream_id}:{key}"


def parse_variant_id(value: str) -> VariantRef | None:
    """``<supplier>:<upstream id>:<key>`` → its parts; ``None`` when ``value`` is not
    shaped like a variant id (a part missing or empty)."""
    supplier, _, rest = value.partition(":")
    upstream_id, _, key = rest.rpartition(":")
    if not supplier or not upstream_id or not key:
        return None
    return VariantRef(supplier, upstream_id, key)


def product_id_of(value: str) -> str | None:
    """The product id of a variant id; ``None`` when ``value`` is not a variant id."""
    ref = parse_variant_id(value)
    return None if ref is None else ref.product_id
