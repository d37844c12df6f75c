"""The category mapping file."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.catalog.taxonomy import Taxonomy, TaxonomyError


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "taxonomy.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_supplier_tables_then_the_wildcard_table(tmp_path: Path) -> None:
    taxonomy = Taxonomy.from_file(
        write(
            tmp_path,
            '[gaming_goods]\n"Game Keys" = "Games"\n\n[vouchers]\n"Gaming" = "Games"\n'
            '"Gift Card" = "Vouchers"\n\n["*"]\n"Gift Card" = "Gift Cards"\n',
        )
    )
    assert taxonomy("gaming_goods", "Game Keys") == "Games"
    assert taxonomy("gaming_goods", "game  keys") == "Games"  # case and spacing ignored
    assert taxonomy("gaming_goods", "GameKeys") == "Games"
    assert taxonomy("vouchers", "GAMING") == "Games"
    assert taxonomy("vouchers", "Gift Card") == "Vouchers"  # own table first
    assert taxonomy("gaming_goods", "Gift Card") == "Gift Cards"  # then the wildcard
    assert taxonomy("gaming_goods", "  Steam   Wallet ") == "Steam Wallet"  # tidied
    assert taxonomy("gaming_goods", None) is None
    assert taxonomy("gaming_goods", "   ") is None


def test_no_file_maps_nothing() -> None:
    taxonomy = Taxonomy.from_file(None)
    assert taxonomy("vouchers", "Gaming") == "Gaming"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('gaming_goods = "Games"\n', "must be a table"),
        ('[vouchers]\n"Gaming" = 3\n', "non-empty string"),
        ('[vouchers]\n"Gaming" = "  "\n', "non-empty string"),
        ("[vouchers\n", "cannot be read"),
    ],
)
def test_a_bad_file_is_refused_with_the_reason(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(TaxonomyError, match=message):
        Taxonomy.from_file(write(tmp_path, text))


def test_a_missing_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(TaxonomyError, match="does not exist"):
        Taxonomy.from_file(tmp_path / "nope.toml")
