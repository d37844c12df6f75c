"""Catalog test fixtures; the helpers live in ``catalog_support`` (a unique module name:
several test folders have a ``conftest``, so importing from ``conftest`` is ambiguous)."""

from catalog_support import *  # noqa: F403 - re-exports the fixtures for pytest
