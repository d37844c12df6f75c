"""Sets of small ints (document numbers) as Python ints used as bitsets.

Why ints: CPython's ``&``, ``|`` and ``^`` on big ints run in C over 30-bit digits, so the
intersection of two 100k-document sets costs under a microsecond, where the same on
``set`` objects or sorted arrays costs milliseconds in an interpreted loop. Bit ``d`` of a
bitmap is set when document ``d`` is in the set. Two rules keep them fast:

* never ``a & ~b``: negating a big int copies it through two's complement and is ten
  times slower than ``a ^ (a & b)``, which computes the same difference;
* ``bit_count`` and ``to_bytes`` walk the whole int: call them once per result, not per
  candidate.

Sets too small to deserve ``N/8`` bytes each are kept as sorted runs in one shared array
(:class:`Postings`) and scattered into a bitmap when a query needs them.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterable, Sequence

from gateway.catalog.pacing import checkpoint

Bitmap = int

_FLAGS = bytes([0] + [1] * 255)  # translation table: zero byte -> 0, any other -> 1
# _BITS[b]: positions of the set bits of byte value b, ascending.
_BITS: tuple[tuple[int, ...], ...] = tuple(
    tuple(i for i in range(8) if b >> i & 1) for b in range(256)
)
_LOW_WINDOW = 4096
_LOW_MASK = (1 << _LOW_WINDOW) - 1
_BLOCK = 512  # bytes counted at a time when skipping a long prefix


def from_ids(ids: Iterable[int]) -> Bitmap:
    """The bitmap of ``ids`` (any order, repeats allowed)."""
    if not isinstance(ids, list | array | memoryview):
        ids = list(ids)
    if not ids:
        return 0
    buf = bytearray((max(ids) >> 3) + 1)
    for d in ids:
        buf[d >> 3] |= 1 << (d & 7)
    return int.from_bytes(buf, "little")


def _scan(raw: bytes, pos: int, skip: int, take: int) -> list[int]:
    """Set bits of ``raw`` from byte ``pos``: skip ``skip`` of them, return ``take``.

    Nonzero bytes are found with ``bytes.find`` on a 0/1 translation of ``raw`` (C
    speed); a regular expression would test every zero byte in the interpreter's regex
    engine, several times slower on the long zero runs of a sparse set.
    """
    out: list[int] = []
    append = out.append
    flags = raw.translate(_FLAGS)
    find = flags.find
    i = find(1, pos)
    while i >= 0:
        base = i << 3
        for b in _BITS[raw[i]]:
            if skip:
                skip -= 1
                continue
            append(base + b)
            if len(out) == take:
                return out
        i = find(1, i + 1)
    return out


def positions(bits: Bitmap) -> list[int]:
    """All members of ``bits``, ascending."""
    if not bits:
        return []
    raw = bits.to_bytes((bits.bit_length() + 7) >> 3, "little")
    out: list[int] = []
    extend = out.extend
    flags = raw.translate(_FLAGS)
    find = flags.find
    i = find(1)
    while i >= 0:
        base = i << 3
        extend([base + b for b in _BITS[raw[i]]])
        i = find(1, i + 1)
    return out


def select(bits: Bitmap, skip: int, take: int) -> list[int]:
    """Members number ``skip`` to ``skip + take - 1`` of ``bits`` in ascending order: one
    page of a set ordered by document number.

    The first page of a dense set is found in its lowest 4096 bits without touching the
    rest of the int; deeper pages skip whole 512-byte blocks by their popcount.
    """
    if take <= 0 or not bits:
        return []
    need = skip + take
    low = bits & _LOW_MASK
    if low:
        raw = low.to_bytes((low.bit_length() + 7) >> 3, "little")
        found = _scan(raw, 0, 0, need)
        if len(found) == need or low == bits:
            return found[skip:]
    raw = bits.to_bytes((bits.bit_length() + 7) >> 3, "little")
    pos, size, remaining = 0, len(raw), skip
    while remaining and pos < size:
        c = int.from_bytes(raw[pos : pos + _BLOCK], "little").bit_count()
        if c > remaining:
            break
        remaining -= c
        pos += _BLOCK
    return _scan(raw, pos, remaining, take)


def membership(bits: Bitmap) -> bytes:
    """``bits`` as little-endian bytes, for O(1) tests with :func:`contains`."""
    return bits.to_bytes((bits.bit_length() + 7) >> 3, "little")


def contains(raw: bytes, d: int) -> bool:
    i = d >> 3
    return i < len(raw) and bool(raw[i] >> (d & 7) & 1)


class Postings:
    """A numbered family of document sets (one per token, per facet value...).

    A set with at least ``dense_min`` members is a bitmap (``N/8`` bytes however full); a
    smaller one is a sorted run in ``data`` between ``offsets[k]`` and ``offsets[k+1]``
    (4 bytes a member). Choosing ``dense_min`` trades memory for the cost of scattering
    a run into a bitmap at query time (about 0.1 µs a member).
    """

    __slots__ = ("data", "dense", "offsets", "sizes")

    def __init__(self, sets: Iterable[Sequence[int] | Bitmap], dense_min: int) -> None:
        self.dense: dict[int, Bitmap] = {}
        self.offsets = array("q", [0])
        self.data = array("i")
        self.sizes = array("i")
        for key, members in enumerate(sets):
            if not key & 255:
                checkpoint()
            if isinstance(members, int):
                size = members.bit_count()
                if size >= dense_min and size:
                    self.dense[key] = members
                else:
                    self.data.extend(positions(members))
            else:
                size = len(members)
                if size >= dense_min and size:
                    self.dense[key] = from_ids(members)
                else:
                    self.data.extend(members)
            self.sizes.append(size)
            self.offsets.append(len(self.data))

    def __len__(self) -> int:
        return len(self.sizes)

    def size(self, key: int) -> int:
        return self.sizes[key]

    def is_dense(self, key: int) -> bool:
        return key in self.dense

    def bits(self, key: int) -> Bitmap:
        found = self.dense.get(key)
        if found is not None:
            return found
        return from_ids(self.data[self.offsets[key] : self.offsets[key + 1]])

    def members(self, key: int) -> Sequence[int]:
        """The members of a sparse set (a zero-copy view); for a dense one, its positions."""
        found = self.dense.get(key)
        if found is not None:
            return positions(found)
        return memoryview(self.data)[self.offsets[key] : self.offsets[key + 1]]

    def nbytes(self) -> int:
        """Approximate memory held, for the memory benchmark."""
        dense = sum(b.bit_length() // 8 + 32 for b in self.dense.values())
        return dense + self.data.itemsize * len(self.data) + 8 * len(self.offsets)


def union(parts: Iterable[tuple[Postings, int]]) -> Bitmap:
    """The union of several sets: bitmaps OR-ed in C, sparse runs scattered into one
    shared buffer so that converting them costs one ``int.from_bytes`` in all."""
    acc = 0
    buf: bytearray | None = None
    for postings, key in parts:
        dense = postings.dense.get(key)
        if dense is not None:
            acc |= dense
            continue
        start, end = postings.offsets[key], postings.offsets[key + 1]
        if start == end:
            continue
        data = postings.data
        need = (data[end - 1] >> 3) + 1
        if buf is None:
            buf = bytearray(need)
        elif len(buf) < need:
            buf.extend(bytes(need - len(buf)))
        for d in data[start:end]:
            buf[d >> 3] |= 1 << (d & 7)
    if buf is not None:
        acc |= int.from_bytes(buf, "little")
    return acc


class RankSlices:
    """Bit-sliced ranks: which documents have a rank below ``r`` in a fixed order, as a
    bitmap, in ``O(log n)`` big-int operations and ``log n`` bitmaps of memory.

    Used for price ranges: documents sorted by price get ranks ``0..n-1``; the documents
    priced in ``[lo, hi]`` are those ranked in ``[bisect_left(lo), bisect_right(hi))``.
    """

    __slots__ = ("all", "count", "slices")

    def __init__(self, ordered_docs: Sequence[int]) -> None:
        self.count = len(ordered_docs)
        n = len(ordered_docs)
        levels = max(1, (n - 1).bit_length())
        self.slices = [from_ids(_ranks_with_bit(ordered_docs, level)) for level in range(levels)]
        self.all = from_ids(ordered_docs)

    def below(self, rank: int) -> Bitmap:
        if rank <= 0:
            return 0
        if rank >= self.count:
            return self.all
        result, equal = 0, self.all
        for level in range(len(self.slices) - 1, -1, -1):
            if rank >> level & 1:
                inter = equal & self.slices[level]
                result |= equal ^ inter
                equal = inter
            else:
                equal ^= equal & self.slices[level]
            if not equal:
                break
        return result

    def between(self, lo: int, hi: int) -> Bitmap:
        """Documents ranked in ``[lo, hi)``."""
        if hi <= lo:
            return 0
        return self.below(hi) ^ self.below(lo)


def _ranks_with_bit(ordered: Sequence[int], level: int) -> list[int]:
    """The items of ``ordered`` whose position has bit ``level`` set, gathered with
    slices (C speed): strided slices for low levels, blocks for high ones."""
    n, step = len(ordered), 1 << level
    out: list[int] = []
    if step <= n // (2 * step):  # few residues: ordered[r::2·step] for r in [step, 2·step)
        for r in range(step, 2 * step):
            out.extend(ordered[r :: 2 * step])
    else:  # few blocks: ordered[k·2·step + step : (k+1)·2·step]
        for start in range(step, n, 2 * step):
            out.extend(ordered[start : start + step])
    return out
