"""``gateway sync [--supplier NAME]``: one sync by hand, with a progress bar and a summary.

It runs the very same ``CatalogSync`` as the gateway's periodic refresh, lock and fencing
included, so it is safe to run next to live instances: if one of them is syncing the
supplier right now, this reports ``busy`` instead of syncing twice. Running instances
pick the new snapshot up on their next poll.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Sequence
from typing import Any

import click

from adapters.models import CatalogPage
from gateway.catalog.service import CatalogService
from gateway.catalog.sync import SyncReport
from gateway.settings import Settings


class _Progress:
    """A click progress bar over the supplier's reported total (products), opened when
    the first page says how many there are; a running count when it never does."""

    def __init__(self, label: str) -> None:
        self.label = label
        self._stack = contextlib.ExitStack()
        self._bar: Any = None
        self._shown = 0

    def __call__(self, page: CatalogPage, products: int) -> None:
        if self._bar is None and page.total:
            self._bar = self._stack.enter_context(
                click.progressbar(length=page.total, label=self.label, show_pos=True)
            )
        if self._bar is not None:
            step = min(products, self._bar.length) - self._shown
            if step > 0:
                self._bar.update(step)
                self._shown += step
        else:
            click.echo(f"\r{self.label}  {products} products, {page.page} pages", nl=False)

    def close(self) -> None:
        if self._bar is None and self._shown == 0:
            click.echo("")
        self._stack.close()


def summary_line(report: SyncReport) -> str:
    if report.outcome == "busy":
        return f"{report.supplier}: busy (another instance holds the sync lock); nothing done"
    if report.outcome == "not_due":
        return f"{report.supplier}: not due"
    head = (
        f"{report.supplier}: published version {report.version}"
        if report.outcome == "published"
        else f"{report.supplier}: FAILED ({report.error}); the previous snapshot keeps serving"
    )
    return (
        f"{head}\n  products {report.products}, pages {report.pages}, "
        f"upstream requests {report.requests}, duration {report.duration_seconds:.1f} s, "
        f"429s seen {report.rate_limited}, retries {report.retries}"
    )


async def sync_suppliers(
    service: CatalogService, suppliers: Sequence[str], *, show_progress: bool = True
) -> list[SyncReport]:
    reports = []
    for name in suppliers:
        progress = _Progress(name) if show_progress else None
        try:
            reports.append(await service.sync(name, force=True, progress=progress))
        finally:
            if progress is not None:
                progress.close()
        click.echo(summary_line(reports[-1]))
    return reports


def run_sync(settings: Settings, suppliers: Sequence[str]) -> int:
    """The command's body; returns the exit status."""
    from gateway.bootstrap import bootstrap
    from gateway.suppliers import sandbox_environment, sandbox_wanted, start_sandboxes

    if settings.redis_url is None:
        raise click.UsageError(
            "gateway sync publishes to Redis: set GATEWAY_REDIS_URL (the embedded demo store "
            "would forget the catalog when this command exits)"
        )
    servers = {}
    if sandbox_wanted(settings):
        servers = start_sandboxes()
        os.environ.update(sandbox_environment(servers))
        settings = Settings()
        click.echo("no supplier configured: syncing from the built-in sandboxes")

    async def main() -> int:
        gateway = await bootstrap(settings)
        try:
            service = gateway.services.catalog
            names = list(suppliers) or list(gateway.adapters)
            unknown = sorted(set(names) - set(gateway.adapters))
            if unknown:
                raise click.BadParameter(
                    f"not a configured supplier: {', '.join(unknown)} "
                    f"(configured: {', '.join(gateway.adapters) or 'none'})",
                    param_hint="--supplier",
                )
            reports = await sync_suppliers(service, names)
            return 0 if all(r.outcome == "published" for r in reports) else 1
        finally:
            await gateway.aclose()

    try:
        return asyncio.run(main())
    finally:
        for server in servers.values():
            server.stop()
