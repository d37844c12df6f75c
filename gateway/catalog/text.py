"""Text normalisation and tokenising, shared by the index, its tests and anything that
must agree with how the index reads words.

Folding is case- and accent-insensitive: NFKD after ``casefold`` (so "İ", "ß", "ﬁ"
decompose fully), combining marks dropped, then ``casefold`` again for the few letters
whose fold only appears after decomposition. A token is a maximal run of letters or
digits (``_`` separates, like any punctuation), so "Spider-Man" is "spider" "man" and a
query is tokenised exactly like the text it searches.
"""

from __future__ import annotations

import re
import unicodedata

_TOKEN = re.compile(r"[^\W_]+")

# Query words of this many characters or more also match indexed words one edit away
# (shorter words have too many neighbours: "card" is one edit from "cart", "care"...).
TYPO_MIN_LENGTH = 5
# ...up to this many: finding a word's neighbours costs a lookup per character, and no
# product word is that long, so a pasted 10k-character "word" costs nothing.
TYPO_MAX_LENGTH = 32


def fold(text: str) -> str:
    """Case- and accent-insensitive form of ``text``: what matching and sorting compare."""
    if text.isascii():
        return text.lower()  # the fast path: lower() == casefold() on ASCII
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    stripped = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return stripped.casefold()


def tokens(text: str | None) -> list[str]:
    """The folded words of ``text`` in order, repeats kept (a query's word order matters)."""
    if not text:
        return []
    return _TOKEN.findall(fold(text))


def merge_key(label: str | None) -> str | None:
    """Key under which categories/brands that differ only by case or spacing merge.

    All whitespace is removed, not just collapsed, so "Game Keys", "game  keys" and
    "GameKeys" are one category. Accents are kept: "Pokémon" and "Pokemon" are different
    spellings, not different spacing. Blank labels have no key (treated as missing).
    """
    if label is None:
        return None
    key = "".join(label.casefold().split())
    return key or None


def deletes(word: str) -> list[str]:
    """``word`` and every string one deletion away: its one-typo neighbourhood keys.

    Two words are at most one edit apart (substitution, insertion, deletion or adjacent
    transposition) only if their neighbourhoods share a key. The converse does not hold
    ("abc"/"bca" share "bc"), so candidates found this way are confirmed with
    :func:`within_one_edit`.
    """
    return [word, *(word[:i] + word[i + 1 :] for i in range(len(word)))]


def within_one_edit(a: str, b: str) -> bool:
    """True when ``a`` and ``b`` differ by exactly one substitution, insertion, deletion or
    transposition of two adjacent characters (optimal string alignment distance 1)."""
    if a == b:
        return False
    la, lb = len(a), len(b)
    if abs(la - lb) > 1:
        return False
    if la > lb:
        a, b, la, lb = b, a, lb, la
    i = 0
    while i < la and a[i] == b[i]:
        i += 1
    if la < lb:  # one insertion into a at i
        return a[i:] == b[i + 1 :]
    # same length: one substitution at i, or a transposition of i and i + 1
    if a[i + 1 :] == b[i + 1 :]:
        return True
    return i + 1 < la and a[i] == b[i + 1] and a[i + 1] == b[i] and a[i + 2 :] == b[i + 2 :]
