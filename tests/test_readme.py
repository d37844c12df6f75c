"""The README stays true: every setting the code reads is documented there."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from gateway.cli import main
from gateway.settings_doc import markdown, rows, supplier_rows

README = (Path(__file__).parents[1] / "README.md").read_text()


def test_every_setting_is_in_the_readme_configuration_table() -> None:
    missing = [env for env, _, _ in [*rows(), *supplier_rows()] if f"`{env}`" not in README]
    assert missing == [], f"README lacks: {missing} (paste `gateway config-doc`)"


def test_the_readme_table_matches_the_code_row_for_row() -> None:
    """Defaults and meanings too, not only the names: a changed default or description
    must reach the README."""
    stale = [
        line for line in markdown().splitlines() if line.startswith("| `") and line not in README
    ]
    assert stale == [], f"README rows differ from the code: {stale} (paste `gateway config-doc`)"


def test_every_setting_has_a_description() -> None:
    undocumented = [env for env, _, text in [*rows(), *supplier_rows()] if not text.strip()]
    assert undocumented == []


def test_config_doc_prints_the_table() -> None:
    result = CliRunner().invoke(main, ["config-doc"])
    assert result.exit_code == 0
    assert "| `GATEWAY_REDIS_URL` |" in result.output
