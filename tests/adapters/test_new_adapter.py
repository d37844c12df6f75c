"""``gateway new-adapter NAME`` writes a supplier package that passes the contract suite
as written: generated under a fresh name into a temporary directory, imported, and run
through the standard contract suite (a separate pytest process, as a new project would)."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from click.testing import CliRunner

from adapters.base import SupplierAdapter
from gateway.adapter_template import default_package
from gateway.cli import main

ROOT = Path(__file__).resolve().parents[2]


def _generate(tmp_path: Path, name: str) -> tuple[Path, Path]:
    pkgs, tests = tmp_path / "pkgs", tmp_path / "contract_tests"
    result = CliRunner().invoke(
        main, ["new-adapter", name, "--dest", str(pkgs), "--tests", str(tests)]
    )
    assert result.exit_code == 0, result.output
    assert f"wrote {pkgs / name / 'client.py'}" in result.output
    assert "needs Redis" in result.output and "config-doc" in result.output
    return pkgs, tests


def test_a_generated_adapter_passes_the_contract_suite(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, redis_url: str
) -> None:
    name = f"gen_{uuid.uuid4().hex[:8]}"
    pkgs, tests = _generate(tmp_path, name)
    assert sorted(p.name for p in (pkgs / name).iterdir()) == [
        "__init__.py",
        "client.py",
        "sandbox.py",
    ]

    monkeypatch.syspath_prepend(str(pkgs))
    package = __import__(name)
    cls_name = "Gen" + name.removeprefix("gen_").capitalize() + "Adapter"
    adapter_class = getattr(package, cls_name)
    assert issubclass(adapter_class, SupplierAdapter) and adapter_class.name == name
    assert adapter_class.sandbox_settings("http://127.0.0.1:1")["api_key"] == (
        f"{name}-sandbox-key"
    )

    env = {**os.environ, "PYTHONPATH": str(pkgs), "REDIS_URL": redis_url}
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tests)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    summary = run.stdout.strip().splitlines()[-1] if run.stdout.strip() else run.stderr
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    assert "passed" in summary and "failed" not in summary and "error" not in summary
    assert int(summary.split()[0]) >= 19, summary  # the whole suite ran

    # Lint-clean under the project's rules, as it is when written into adapters/ here
    # (both the adapters package and the new one are first-party there).
    lint = subprocess.run(
        [sys.executable, "-m", "ruff", "check", "--config", str(ROOT / "pyproject.toml"),
         "--config", f"lint.isort.known-first-party=['adapters', '{name}']",
         str(pkgs), str(tests)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert lint.returncode == 0, lint.stdout
    formatted = subprocess.run(
        [sys.executable, "-m", "ruff", "format", "--check", "--config",
         str(ROOT / "pyproject.toml"), str(pkgs), str(tests)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert formatted.returncode == 0, formatted.stdout


@pytest.mark.parametrize("bad", ["Acme", "1acme", "acme-cards", "acme__cards", "acme_", "class"])
def test_bad_names_are_refused_and_nothing_is_written(tmp_path: Path, bad: str) -> None:
    result = CliRunner().invoke(
        main, ["new-adapter", bad, "--dest", str(tmp_path / "p"), "--tests", str(tmp_path / "t")]
    )
    assert result.exit_code == 2
    assert "supplier name" in result.output or "'__'" in result.output
    assert not (tmp_path / "p").exists() and not (tmp_path / "t").exists()


def test_an_existing_package_is_never_overwritten(tmp_path: Path) -> None:
    _generate(tmp_path, "acme")
    client = tmp_path / "pkgs" / "acme" / "client.py"
    client.write_text("# mine\n")
    result = CliRunner().invoke(
        main,
        ["new-adapter", "acme", "--dest", str(tmp_path / "pkgs"),
         "--tests", str(tmp_path / "contract_tests")],
    )  # fmt: skip
    assert result.exit_code == 2 and "exists already" in result.output
    assert client.read_text() == "# mine\n"


def test_the_package_name_follows_the_destination(tmp_path: Path) -> None:
    assert default_package(Path("adapters"), "acme", ROOT) == "adapters.acme"
    assert default_package(ROOT / "adapters", "acme", ROOT) == "adapters.acme"
    assert default_package(tmp_path, "acme", ROOT) == "acme"
