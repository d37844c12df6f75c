"""Helpers shared by tests in more than one folder, imported as ``tests.support.<module>``.

``pyproject.toml`` puts the repository root on pytest's ``pythonpath``, so these import the
same way under ``pytest`` and ``python -m pytest``. Helpers used by one folder's tests stay
in that folder (``orders_harness``, ``catalog_support``, ``tests/ops/support.py``).
"""
