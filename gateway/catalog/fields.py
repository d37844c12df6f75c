"""Filterable, facetable product attributes: category, brand, supplier, country, currency.

Each attribute numbers its distinct values, keeps the value of every document in an
``array`` (4 bytes a document) and the documents of every value as a set in
:class:`~gateway.catalog.bitmaps.Postings`, so that a filter is one bitmap and a facet is
one popcount per value.

Categories and brands merge labels that differ only by case or spacing ("Gift Cards",
"gift  cards", "GiftCards") under one key and show the spelling most products use (ties:
the alphabetically first), so counts, filters and the labels shown agree. Supplier,
country and currency are exact. A document may hold several values (a canonical
product sold by several suppliers): it is then in each value's set and counted once
under each.
"""

from __future__ import annotations

from array import array
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence

from gateway.catalog.bitmaps import Bitmap, Postings, contains, membership
from gateway.catalog.text import merge_key


def exact_key(label: str | None) -> str | None:
    return label or None


def _tidy(label: str) -> str:
    return " ".join(label.split())


def _as_is(label: str) -> str:
    return label


class Field:
    """One attribute's values, per-document value ids and per-value document sets."""

    __slots__ = ("_keyfunc", "counts", "extra", "labels", "lookup", "name", "of_doc", "postings")

    def __init__(
        self,
        name: str,
        raw_values: Sequence[str | None],
        *,
        merge: bool,
        dense_min: int,
        more: Mapping[int, Sequence[str]] | None = None,
    ) -> None:
        """``raw_values[d]`` is document ``d``'s label as given (after taxonomy);
        ``more[d]``, when given, is every value of a document with several (a canonical
        product's suppliers, ``raw_values[d]`` first): the document is in the set of
        each, counted under each, and shown with the first."""
        self.name = name
        self._keyfunc: Callable[[str | None], str | None] = merge_key if merge else exact_key
        display: Callable[[str], str] = _tidy if merge else _as_is
        keyfunc = self._keyfunc
        spellings: dict[str, Counter[str]] = {}
        value_counts = Counter(raw_values)
        for values in (more or {}).values():
            value_counts.update(values[1:])
        for raw, n in value_counts.items():
            key = keyfunc(raw)
            if key is not None:
                assert raw is not None
                spellings.setdefault(key, Counter())[display(raw)] += n
        shown = {
            key: min(counter.items(), key=lambda kv: (-kv[1], kv[0]))[0]
            for key, counter in spellings.items()
        }
        ordered = sorted(shown, key=lambda k: (shown[k].casefold(), shown[k], k))
        self.labels: list[str] = [shown[k] for k in ordered]
        self.lookup: dict[str, int] = {k: vid for vid, k in enumerate(ordered)}
        lookup = self.lookup
        vid_of_raw: dict[str | None, int] = {}
        for raw in value_counts:
            key = keyfunc(raw)
            vid_of_raw[raw] = -1 if key is None else lookup[key]
        self.of_doc = array("i", map(vid_of_raw.__getitem__, raw_values))
        members: list[list[int]] = [[] for _ in ordered]
        for doc, vid in enumerate(self.of_doc):
            if vid >= 0:
                members[vid].append(doc)
        #: document -> its values beyond the first (value ids), for per-document counts.
        self.extra: dict[int, tuple[int, ...]] = {}
        touched: set[int] = set()
        for doc, values in (more or {}).items():
            first = self.of_doc[doc]
            vids = tuple(dict.fromkeys(v for v in map(vid_of_raw.__getitem__, values) if v >= 0))
            vids = tuple(v for v in vids if v != first)
            if vids:
                self.extra[doc] = vids
                for vid in vids:
                    members[vid].append(doc)
                    touched.add(vid)
        for vid in touched:
            members[vid].sort()
        self.counts = [len(m) for m in members]
        self.postings = Postings(members, dense_min)

    def value_id(self, value: str) -> int | None:
        """The value a filter names (case/spacing-insensitive for merged fields)."""
        key = self._keyfunc(value)
        return None if key is None else self.lookup.get(key)

    def label_of(self, doc: int) -> str | None:
        vid = self.of_doc[doc]
        return self.labels[vid] if vid >= 0 else None

    def bits(self, vid: int) -> Bitmap:
        return self.postings.bits(vid)

    def listing(self) -> list[tuple[str, int]]:
        """Every value with its product count, in label order."""
        return [(label, n) for label, n in zip(self.labels, self.counts, strict=True) if n]

    def scan_cost(self, n_docs: int) -> int:
        """What counting this facet value by value costs, in units of one interpreted
        loop step: a popcount per dense value (about ``n_docs / 1000`` steps) plus a
        membership test per member of each sparse value."""
        dense_cost = n_docs // 1000 + 4
        postings = self.postings
        return sum(
            dense_cost if postings.is_dense(vid) else postings.size(vid)
            for vid in range(len(postings))
        )

    def facet_all(self) -> dict[str, int]:
        return _ranked(self.labels, enumerate(self.counts))

    def facet_from_ids(self, ids: Sequence[int]) -> dict[str, int]:
        """Counts over the documents ``ids`` (cheap when they are few)."""
        counted = Counter(map(self.of_doc.__getitem__, ids))
        if self.extra:
            for doc in self.extra.keys() & ids:
                counted.update(self.extra[doc])
        counted.pop(-1, None)
        return _ranked(self.labels, counted.items())

    def facet_from_bits(self, matched: Bitmap) -> dict[str, int]:
        """Counts over the documents in ``matched``, value by value (cheap when the
        matched set is large and the values few)."""
        postings = self.postings
        raw: bytes | None = None
        counted: list[tuple[int, int]] = []
        for vid in range(len(postings)):
            dense = postings.dense.get(vid)
            if dense is not None:
                n = (matched & dense).bit_count()
            else:
                if raw is None:
                    raw = membership(matched)
                n = sum(1 for d in postings.members(vid) if contains(raw, d))
            counted.append((vid, n))
        return _ranked(self.labels, counted)


def _ranked(labels: list[str], counts: Iterable[tuple[int, int]]) -> dict[str, int]:
    """``{label: count}`` without zeros, largest count first, then by label."""
    pairs = [(labels[vid], n) for vid, n in counts if n]
    pairs.sort(key=lambda kv: (-kv[1], kv[0]))
    return dict(pairs)
