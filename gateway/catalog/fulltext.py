"""The full-text part of the catalog index: which documents a query word matches, and how.

A query word matches an indexed word (a token of a product's name, or of its brand,
category, sub-category or short description: the "other" fields) in one of three ways,
best first: exactly; by prefix ("cyber" → "cyberpunk"; only the query's last word, the
one still being typed); or with one typo (one substitution, insertion, deletion or
adjacent transposition; only query words of 5 to 32 characters: see
:data:`~gateway.catalog.text.TYPO_MIN_LENGTH`). A word's weight for a document is its
best way of matching it, a name match weighing more than the same kind elsewhere:

====================  ====  =====
match                 name  other
====================  ====  =====
exact                   6     5
prefix                  4     3
one typo                2     1
====================  ====  =====

so any exact match beats any prefix match, which beats any typo. A document's relevance
is the sum over the query's words.

Structures, chosen for a 1 ms budget at 100k products in pure Python:

* the vocabulary is a sorted list: a word is found, and a prefix's words are a
  contiguous range, by ``bisect``;
* each word has two document sets (name, other) in :class:`Postings`;
* a prefix whose words would take long to OR together at query time ("s", "st", ...)
  has its union precomputed at build time, child prefixes reused for their parent;
* one-typo candidates come from a deletion neighbourhood: for every word of 4 to 33
  characters (one edit from a query word of 5 to 32), the hashes of the word and of
  each one-deletion variant, sorted in an ``array`` (12 bytes an entry instead of ~100
  in a dict); candidates are confirmed with an exact edit-distance check, which also
  disposes of hash collisions. The hash is CRC-32, the same in every process (Python's
  ``hash`` of a string differs per process, and an index may be built in another one:
  ``gateway.catalog.build_process``).
"""

from __future__ import annotations

from array import array
from bisect import bisect_left
from collections.abc import Iterable
from zlib import crc32

from gateway.catalog.bitmaps import Bitmap, Postings, union
from gateway.catalog.pacing import checkpoint, paced_sorted, sorted_order
from gateway.catalog.text import TYPO_MAX_LENGTH, TYPO_MIN_LENGTH, deletes, within_one_edit

EXACT_NAME, EXACT_OTHER, PREFIX_NAME, PREFIX_OTHER, TYPO_NAME, TYPO_OTHER = 6, 5, 4, 3, 2, 1
BEST_WEIGHT = EXACT_NAME

_AFTER = "\U0010ffff"  # a noncharacter: sorts after every character a token can hold


def _longest_first(prefix: str) -> int:
    return -len(prefix)


class TextIndexBuilder:
    """Collects each document's tokens, in document order (so postings come out sorted)."""

    def __init__(self) -> None:
        self._name: dict[str, list[int]] = {}
        self._other: dict[str, list[int]] = {}

    def add(self, doc: int, name_tokens: Iterable[str], other_tokens: Iterable[str]) -> None:
        for postings, words in ((self._name, name_tokens), (self._other, other_tokens)):
            for token in set(words):
                try:
                    postings[token].append(doc)
                except KeyError:  # a new word: rare once the catalog is under way
                    postings[token] = [doc]

    def finish(self, n_docs: int, dense_min: int, prefix_budget: int) -> TextIndex:
        vocab = paced_sorted(list(self._name.keys() | self._other.keys()))
        empty: list[int] = []
        # Popped as they are stored: each list freed on the way, not ~1M entries at once
        # at the end (a C-level cascade that holds the GIL for milliseconds).
        name = Postings((self._name.pop(t, empty) for t in vocab), dense_min)
        other = Postings((self._other.pop(t, empty) for t in vocab), dense_min)
        return TextIndex(vocab, name, other, n_docs, dense_min, prefix_budget)


class TextIndex:
    __slots__ = (
        "del_hashes",
        "del_tids",
        "name",
        "other",
        "prefix_name",
        "prefix_other",
        "prefixes",
        "vocab",
    )

    def __init__(
        self,
        vocab: list[str],
        name: Postings,
        other: Postings,
        n_docs: int,
        dense_min: int,
        prefix_budget: int,
    ) -> None:
        self.vocab = vocab
        self.name = name
        self.other = other
        self._build_prefixes(n_docs, dense_min, prefix_budget)
        self._build_deletions()

    # -- build -------------------------------------------------------------------------

    def _build_prefixes(self, n_docs: int, dense_min: int, budget: int) -> None:
        """Precompute the unions of the prefixes that would cost more than ``budget`` to
        OR at query time (cost: one step per sparse member, a few per posting, and about
        ``n_docs / 16384`` per bitmap OR)."""
        vocab, name, other = self.vocab, self.name, self.other
        dense_cost = n_docs // 16384 + 1
        cum = [0]
        for tid in range(len(vocab)):
            if not tid & 255:
                checkpoint()
            cost = cum[-1]
            for postings in (name, other):
                size = postings.size(tid)
                if size:
                    cost += 3 + (dense_cost if postings.is_dense(tid) else size)
            cum.append(cost)
        ranges: dict[str, tuple[int, int]] = {}
        previous = ""
        for tid, token in enumerate(vocab):
            if not tid & 255:
                checkpoint()
            shared = 0
            limit = min(len(previous), len(token))
            while shared < limit and previous[shared] == token[shared]:
                shared += 1
            previous = token
            for length in range(shared + 1, len(token) + 1):
                prefix = token[:length]
                hi = bisect_left(vocab, prefix + _AFTER, tid)
                if hi - tid < 2 or cum[hi] - cum[tid] <= budget:
                    break  # longer prefixes starting here cover fewer words still
                ranges[prefix] = (tid, hi)
        # Longest first, so a prefix reuses the unions of its heavy children.
        unions: dict[str, tuple[Bitmap, Bitmap]] = {}
        for prefix in paced_sorted(list(ranges), key=_longest_first):
            checkpoint()
            lo, hi = ranges[prefix]
            child_len = len(prefix) + 1
            name_bits = other_bits = 0
            loose: list[int] = []
            tid = lo
            while tid < hi:
                token = vocab[tid]
                if len(token) >= child_len:
                    child = token[:child_len]
                    found = unions.get(child)
                    if found is not None:
                        name_bits |= found[0]
                        other_bits |= found[1]
                        tid = ranges[child][1]
                        continue
                loose.append(tid)
                tid += 1
            name_bits |= union((name, t) for t in loose)
            other_bits |= union((other, t) for t in loose)
            unions[prefix] = (name_bits, other_bits)
        ordered = sorted(unions)
        self.prefixes = {prefix: pid for pid, prefix in enumerate(ordered)}
        self.prefix_name = Postings((unions[p][0] for p in ordered), dense_min)
        self.prefix_other = Postings((unions[p][1] for p in ordered), dense_min)

    def _build_deletions(self) -> None:
        hashes = array("q")
        tids = array("i")
        for tid, token in enumerate(self.vocab):
            if not tid & 63:
                checkpoint()
            if TYPO_MIN_LENGTH - 1 <= len(token) <= TYPO_MAX_LENGTH + 1:
                for key in set(deletes(token)):
                    hashes.append(crc32(key.encode()))
                    tids.append(tid)
        order = sorted_order(hashes)
        self.del_hashes = array("q", (hashes[i] for i in order))
        self.del_tids = array("i", (tids[i] for i in order))

    # -- query -------------------------------------------------------------------------

    def token_id(self, word: str) -> int | None:
        tid = bisect_left(self.vocab, word)
        return tid if tid < len(self.vocab) and self.vocab[tid] == word else None

    def prefix_range(self, word: str) -> tuple[int, int]:
        vocab = self.vocab
        lo = bisect_left(vocab, word)
        return lo, bisect_left(vocab, word + _AFTER, lo)

    def typo_ids(self, word: str) -> list[int]:
        """Indexed words exactly one edit away from ``word``."""
        hashes, tids, vocab = self.del_hashes, self.del_tids, self.vocab
        found: set[int] = set()
        for key in set(deletes(word)):
            h = crc32(key.encode())
            i = bisect_left(hashes, h)
            while i < len(hashes) and hashes[i] == h:
                found.add(tids[i])
                i += 1
        return sorted(tid for tid in found if within_one_edit(word, vocab[tid]))

    def word_sets(self, word: str, last: bool) -> list[tuple[int, Bitmap]]:
        """The documents ``word`` matches, per weight (heaviest first; sets may overlap:
        a document matching exactly also matches by prefix)."""
        name, other = self.name, self.other
        out: list[tuple[int, Bitmap]] = []
        tid = self.token_id(word)
        if tid is not None:
            out.append((EXACT_NAME, name.bits(tid)))
            out.append((EXACT_OTHER, other.bits(tid)))
        if last:
            pid = self.prefixes.get(word)
            if pid is not None:
                out.append((PREFIX_NAME, self.prefix_name.bits(pid)))
                out.append((PREFIX_OTHER, self.prefix_other.bits(pid)))
            else:
                lo, hi = self.prefix_range(word)
                if tid is not None:
                    lo += 1  # the word itself is the exact match above
                if lo < hi:
                    out.append((PREFIX_NAME, union((name, t) for t in range(lo, hi))))
                    out.append((PREFIX_OTHER, union((other, t) for t in range(lo, hi))))
        if TYPO_MIN_LENGTH <= len(word) <= TYPO_MAX_LENGTH:
            typos = self.typo_ids(word)
            if typos:
                out.append((TYPO_NAME, union((name, t) for t in typos)))
                out.append((TYPO_OTHER, union((other, t) for t in typos)))
        return [(weight, bits) for weight, bits in out if bits]

    def nbytes(self) -> int:
        """Approximate memory held (postings, arrays and vocabulary strings)."""
        strings = sum(49 + len(t) for t in self.vocab) + 8 * len(self.vocab)
        prefixes = sum(49 + len(p) + 100 for p in self.prefixes)
        arrays = 12 * len(self.del_hashes)
        postings = (self.name, self.other, self.prefix_name, self.prefix_other)
        return strings + prefixes + arrays + sum(p.nbytes() for p in postings)
