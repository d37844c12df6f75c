"""Renders the configuration reference (README) from the settings models themselves, so
the table cannot drift from the code: ``gateway config-doc`` prints it and a test checks
that the README lists every environment variable."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from pydantic import BaseModel
from pydantic_core import PydanticUndefined

from gateway.settings import Settings


def _default(value: Any) -> str:
    if value is PydanticUndefined:
        return "required"
    if isinstance(value, BaseModel):
        return "(section)"
    if value is None:
        return "unset"
    if isinstance(value, str):
        return f"`{value}`" if value else '`""`'
    return f"`{json.dumps(value, default=str)}`"


def rows(
    model: type[BaseModel] = Settings, prefix: str = "GATEWAY_"
) -> Iterator[tuple[str, str, str]]:
    """(environment variable, default, description) for every leaf setting."""
    for name, field in model.model_fields.items():
        annotation = field.annotation
        env = f"{prefix}{name.upper()}"
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            yield from rows(annotation, env + "__")
            continue
        default = field.default_factory() if field.default_factory else field.default  # type: ignore[call-arg]
        yield env, _default(default), (field.description or "").replace("|", "\\|")


def supplier_rows() -> Iterator[tuple[str, str, str]]:
    """The same for every installed adapter's own settings model."""
    from adapters.registry import discover

    for name, cls in discover().items():
        yield from rows(cls.settings_model, f"GATEWAY_SUPPLIERS__{name.upper()}__")


def markdown() -> str:
    header = ["| variable | default | meaning |", "| --- | --- | --- |"]
    gateway = [f"| `{env}` | {default} | {text} |" for env, default, text in rows()]
    suppliers = [f"| `{env}` | {default} | {text} |" for env, default, text in supplier_rows()]
    return "\n".join(
        [
            *header,
            *gateway,
            "",
            "Per supplier (one block per installed adapter):",
            "",
            *header,
            *suppliers,
        ]
    )
