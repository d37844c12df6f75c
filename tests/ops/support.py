"""Helpers shared by the operations tests: metric discovery, exposition parsing, traffic."""

from __future__ import annotations

import asyncio
import importlib
import io
import pkgutil
import re
from collections.abc import Awaitable, Iterable
from pathlib import Path
from typing import TypeVar

import pytest
from prometheus_client import REGISTRY, Metric
from prometheus_client.parser import text_string_to_metric_families

T = TypeVar("T")
ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("adapters", "gateway")
METRIC_NAME = re.compile(r"\b(gateway_[a-zA-Z0-9_]+)\b")
SUFFIXES = ("_total", "_created", "_bucket", "_count", "_sum", "_info")


def import_everything() -> dict[str, str]:
    """Import every module of the gateway and adapter packages, so that every metric any
    feature defines is registered. Returns the modules that failed, with the reason."""
    failures: dict[str, str] = {}
    for package_name in PACKAGES:
        package = importlib.import_module(package_name)
        for info in pkgutil.walk_packages(package.__path__, prefix=f"{package_name}."):
            if ".testing" in info.name or info.name.endswith("__main__"):
                continue
            try:
                importlib.import_module(info.name)
            except Exception as exc:  # reported by the caller, with the module's name
                failures[info.name] = f"{type(exc).__name__}: {exc}"
    return failures


def family_sample_names(family: Metric) -> set[str]:
    """Every series name a family may expose (``x_total``, ``x_bucket`` ...)."""
    name = family.name
    kinds = {
        "counter": {f"{name}_total", f"{name}_created"},
        "histogram": {f"{name}_bucket", f"{name}_count", f"{name}_sum", f"{name}_created"},
        "summary": {name, f"{name}_count", f"{name}_sum", f"{name}_created"},
        "info": {f"{name}_info"},
    }
    return {name} | kinds.get(family.type, set())


def registered_families() -> dict[str, Metric]:
    """Every metric family in the default registry, by family name."""
    return {family.name: family for family in REGISTRY.collect()}


def exposed_names(exposition: str) -> set[str]:
    """Series names an exposition offers (from HELP/TYPE lines and samples)."""
    names: set[str] = set()
    for family in text_string_to_metric_families(exposition):
        names |= family_sample_names(family)
        names |= {sample.name for sample in family.samples}
    return names


def referenced_names(texts: Iterable[str]) -> set[str]:
    """``gateway_*`` metric names used in alert rules or dashboard queries."""
    found: set[str] = set()
    for text in texts:
        found |= set(METRIC_NAME.findall(text))
    return found


def samples(exposition: str, name: str) -> list[tuple[dict[str, str], float]]:
    """``(labels, value)`` of every sample called ``name``."""
    out = []
    for family in text_string_to_metric_families(exposition):
        for sample in family.samples:
            if sample.name == name:
                out.append((dict(sample.labels), sample.value))
    return out


def value(exposition: str, name: str, **labels: str) -> float:
    """The sum of the samples of ``name`` whose labels include ``labels`` (0 if none)."""
    return sum(
        v
        for sample_labels, v in samples(exposition, name)
        if labels.items() <= sample_labels.items()
    )


async def bounded(awaitable: Awaitable[object], seconds: float) -> bool:
    """Await ``awaitable`` for at most ``seconds``; whether it finished.

    Runs it as its own task and never cancels it: a stop() that swallows cancellation
    (docs/operations.md; the bounds are tested in test_shutdown.py) cannot hang a test."""
    task = asyncio.ensure_future(awaitable)
    done, _ = await asyncio.wait({task}, timeout=seconds)
    if task in done:
        task.result()
        return True
    return False


async def within(awaitable: Awaitable[T], seconds: float, what: str) -> T:
    """Await ``awaitable``; if it has not finished after ``seconds``, fail the test with
    the stack of every task (a hang becomes a diagnosis instead of a bare timeout)."""
    task = asyncio.ensure_future(awaitable)
    done, _ = await asyncio.wait({task}, timeout=seconds)
    if task in done:
        return task.result()
    stacks = io.StringIO()
    for other in asyncio.all_tasks():
        if other is not asyncio.current_task():
            stacks.write(f"--- {other.get_name()}\n")
            other.print_stack(limit=25, file=stacks)
    task.cancel()
    pytest.fail(f"{what} did not finish in {seconds} s; tasks:\n{stacks.getvalue()}")
