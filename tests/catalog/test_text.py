"""Normalisation and tokenising: what "case- and accent-insensitive" and "one typo" mean."""

from __future__ import annotations

from catalog_oracle import osa_distance
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.catalog.text import deletes, fold, merge_key, tokens, within_one_edit


def test_fold_ignores_case_and_accents() -> None:
    assert fold("Pokémon") == "pokemon"
    assert fold("POKÉMON") == fold("pokemon")
    assert fold("Straße") == "strasse"
    assert fold("ﬁnal ﬀ") == "final ff"  # compatibility ligatures decompose
    assert fold("İstanbul") == "istanbul"
    assert fold("Ёлка") == "елка"
    assert fold("Ørsted") == "ørsted"  # no decomposition: Ø is a letter of its own
    assert fold("Mañana Über Café") == "manana uber cafe"


def test_tokens_split_on_anything_but_letters_and_digits() -> None:
    assert tokens("Spider-Man: Miles Morales") == ["spider", "man", "miles", "morales"]
    assert tokens("Assassin's Creed® IV_Black-Flag") == [
        "assassin",
        "s",
        "creed",
        "iv",
        "black",
        "flag",
    ]
    assert tokens("Xbox Series X|S 12 Months") == ["xbox", "series", "x", "s", "12", "months"]
    assert tokens("Подарочная карта Steam") == ["подарочная", "карта", "steam"]
    assert tokens("repeat repeat") == ["repeat", "repeat"]
    assert tokens("  !!! ") == []
    assert tokens("") == []
    assert tokens(None) == []


def test_merge_key_ignores_case_and_spacing_but_not_accents() -> None:
    assert merge_key("Game Keys") == merge_key(" game  keys ") == merge_key("GameKeys")
    assert merge_key("Pokémon") != merge_key("Pokemon")
    assert merge_key("") is None
    assert merge_key("   ") is None
    assert merge_key(None) is None


def test_within_one_edit_examples() -> None:
    assert within_one_edit("witcher", "witchr")  # deletion
    assert within_one_edit("witcher", "witcherr")  # insertion
    assert within_one_edit("steam", "stean")  # substitution
    assert within_one_edit("cyberpunk", "cyberpnuk")  # adjacent transposition
    assert not within_one_edit("steam", "steam")  # no edit is not a typo
    assert not within_one_edit("abc", "bca")  # a moved letter is two edits
    assert not within_one_edit("steam", "stream!!")


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=30))
def test_fold_is_idempotent_and_tokens_are_folded(text: str) -> None:
    assert fold(fold(text)) == fold(text)
    assert tokens(fold(text)) == tokens(text)
    for token in tokens(text):
        assert fold(token) == token


_short = st.text(alphabet="abcdeé", max_size=7)


@settings(max_examples=500, deadline=None)
@given(_short, _short)
def test_within_one_edit_is_osa_distance_one(a: str, b: str) -> None:
    assert within_one_edit(a, b) == (osa_distance(a, b) == 1)


@settings(max_examples=500, deadline=None)
@given(_short, _short)
def test_one_edit_neighbours_share_a_deletion_key(a: str, b: str) -> None:
    """The index finds typo candidates through shared deletion keys: none may be missed."""
    if within_one_edit(a, b):
        assert set(deletes(a)) & set(deletes(b))
