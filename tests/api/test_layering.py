"""The services do not depend on the HTTP layer: ``gateway.orders``, ``gateway.access``
and ``gateway.catalog`` (and what they import, transitively, inside this project) import
neither ``gateway.api`` nor Starlette. They raise the domain errors of ``gateway.errors``;
the API maps them to HTTP in one place.

Imports are read from the source (every ``import``, wherever it is: top level, inside a
function, under ``TYPE_CHECKING``), so a new dependency fails here with the chain that
brought it in, before anyone runs the code path.

The click commands that live next to their service (``gateway orders ...``, ``gateway
worker``, ``gateway sync``) are entry points like ``gateway.app``: they bootstrap the
whole gateway (built-in sandboxes and the metrics endpoint included), so they are not
checked as starting points; a service module importing one would still fail the check.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FIRST_PARTY = ("gateway", "adapters")
SERVICES = ("gateway.orders", "gateway.access", "gateway.catalog", "gateway.accounts")
FORBIDDEN = ("gateway.api", "starlette")
ENTRY_POINTS = frozenset({"gateway.orders.commands", "gateway.catalog.sync_command"})


def _module_file(name: str) -> Path | None:
    """The source file of a first-party module or package (``None``: not ours)."""
    base = ROOT.joinpath(*name.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _package_of(name: str, path: Path) -> str:
    return name if path.name == "__init__.py" else name.rpartition(".")[0]


def imports_of(name: str) -> set[str]:
    """Every module ``name``'s source imports (``from a import b`` counts ``a`` and,
    when ``a.b`` is a module, ``a.b``), relative imports resolved."""
    path = _module_file(name)
    assert path is not None, name
    package = _package_of(name, path)
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                anchor = ".".join(parts[: len(parts) - node.level + 1])
                module = f"{anchor}.{node.module}" if node.module else anchor
            else:
                module = node.module or ""
            found.add(module)
            for alias in node.names:
                if _module_file(f"{module}.{alias.name}") is not None:
                    found.add(f"{module}.{alias.name}")
    # Importing ``a.b.c`` runs ``a/__init__`` and ``a/b/__init__`` too.
    for module in list(found):
        parts = module.split(".")
        found.update(".".join(parts[:i]) for i in range(1, len(parts)))
    return found


def modules_under(package: str) -> list[str]:
    directory = ROOT.joinpath(*package.split("."))
    names = []
    for path in sorted(directory.rglob("*.py")):
        relative = path.relative_to(ROOT).with_suffix("")
        parts = list(relative.parts)
        if parts[-1] == "__init__":
            parts.pop()
        names.append(".".join(parts))
    return names


def forbidden_chain(start: str) -> list[str] | None:
    """The import chain from ``start`` to a forbidden module, if there is one."""
    seen = {start}
    stack: list[list[str]] = [[start]]
    while stack:
        chain = stack.pop()
        for imported in sorted(imports_of(chain[-1])):
            if imported in FORBIDDEN or imported.startswith(tuple(f + "." for f in FORBIDDEN)):
                return [*chain, imported]
            if imported in seen or not imported.startswith(FIRST_PARTY):
                continue
            if _module_file(imported) is None:
                continue
            seen.add(imported)
            stack.append([*chain, imported])
    return None


@pytest.mark.parametrize("package", SERVICES)
def test_services_import_neither_the_api_nor_starlette(package: str) -> None:
    modules = [m for m in modules_under(package) if m not in ENTRY_POINTS]
    assert len(modules) > 3  # the walk found the package
    chains = {m: chain for m in modules if (chain := forbidden_chain(m)) is not None}
    assert not chains, "\n".join(" -> ".join(chain) for chain in chains.values())


def test_the_walk_finds_a_forbidden_import() -> None:
    """The check itself can fail: the API layer does import Starlette and itself."""
    assert forbidden_chain("gateway.api.guard") is not None
    assert forbidden_chain("gateway.app") is not None
    for entry_point in ENTRY_POINTS:  # they exist, and are exempt for a reason
        assert forbidden_chain(entry_point) is not None
    assert "gateway.access.ratelimit" in imports_of("gateway.api.guard")
