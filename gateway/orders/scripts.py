"""The orders' Lua scripts, shipped as package data and registered once per client.

``register_script`` sends ``EVALSHA`` and falls back to ``EVAL`` when the server does not
know the script yet (after a restart or a failover), so nothing needs loading at start.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from typing import Any

from gateway.accounts.scripts import with_library

#: Scripts that also move account money: they start with the accounts' Lua library.
_WITH_LEDGER = frozenset({"order_create", "order_update"})


def _source(name: str) -> str:
    text = resources.files("gateway.orders").joinpath(f"lua/{name}.lua").read_text()
    return with_library(text) if name in _WITH_LEDGER else text


@dataclass(frozen=True)
class OrderScripts:
    idem_begin: Any
    idem_finish: Any
    idem_release: Any
    order_create: Any
    order_update: Any
    jobs_promote: Any
    jobs_ack: Any

    @classmethod
    def register(cls, redis: Any) -> OrderScripts:
        return cls(
            **{name: redis.register_script(_source(name)) for name in cls.__dataclass_fields__}
        )
