"""The accounts' Lua scripts, and the shared library every money-moving script starts with.

``lua/lib.lua`` (loading, available, ledger entries, low-balance crossings) is prepended to
the accounts' own scripts and to the order scripts that hold and settle
(``order_create``, ``order_update``): one definition of how money is booked.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any


@cache
def library() -> str:
    return resources.files("gateway.accounts").joinpath("lua/lib.lua").read_text()


def with_library(source: str) -> str:
    """A script that uses the account functions: the library, then the script."""
    return library() + "\n" + source


@dataclass(frozen=True)
class AccountScripts:
    post: Any
    limits: Any
    notice: Any

    @classmethod
    def register(cls, redis: Any) -> AccountScripts:
        def load(name: str) -> Any:
            text = resources.files("gateway.accounts").joinpath(f"lua/{name}.lua").read_text()
            return redis.register_script(with_library(text))

        return cls(**{name: load(name) for name in cls.__dataclass_fields__})
