"""The ``gateway`` command: ``serve``, ``sandbox`` and the operator tools.

Built on click (well-kept, composable subcommands, progress bars) rather than argparse.
"""

from __future__ import annotations

import os
import signal
import threading

import click

from gateway.settings import Settings


@click.group()
def main() -> None:
    """Digital-goods reseller gateway."""


@main.command()
@click.option("--host", default=None, help="Interface to listen on (default from settings).")
@click.option("--port", type=int, default=None, help="Port to listen on (default from settings).")
@click.option("--workers", type=int, default=None, help="uvicorn worker processes.")
def serve(host: str | None, port: int | None, workers: int | None) -> None:
    """Run the gateway (with the built-in sandbox suppliers when none is configured)."""
    import uvicorn

    from gateway.suppliers import sandbox_environment, sandbox_wanted, start_sandboxes

    settings = Settings()
    host = host or settings.http.host
    port = port if port is not None else settings.http.port
    workers = workers or settings.http.workers
    if settings.redis_url is None and workers > 1:
        raise click.UsageError(
            "the embedded store lives in one process: set GATEWAY_REDIS_URL to run several workers"
        )
    if sandbox_wanted(settings):
        servers = start_sandboxes()
        os.environ.update(sandbox_environment(servers))
        for name, server in servers.items():
            click.echo(f"sandbox {name:<14} {server.url}")
    store = settings.redis_url or "embedded in-process store (demo only, not durable)"
    click.echo(f"store              {store}")
    click.echo(f"gateway            http://{host}:{port}")
    click.echo(f"  curl -s http://{host}:{port}/healthz")
    click.echo(f"  curl -s http://{host}:{port}/readyz")
    uvicorn.run(
        "gateway.app:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level=settings.log_level.lower(),
        access_log=False,
    )


@main.command()
@click.option("--seed", type=int, default=None, help="Catalog seed for every sandbox.")
def sandbox(seed: int | None) -> None:
    """Run every supplier sandbox on loopback ports until interrupted."""
    from adapters.registry import discover
    from gateway.suppliers import start_sandboxes

    options = {name: {"seed": seed} for name in discover()} if seed is not None else {}
    servers = start_sandboxes(**options)
    adapters = discover()
    for name, server in servers.items():
        click.echo(f"{name}: {server.url}")
        for field, value in adapters[name].sandbox_settings(server.url).items():
            if field != "base_url":
                click.echo(f"  {field} = {value}")
        click.echo(f"  control: {server.url}/_sandbox/faults, /_sandbox/orders, /_sandbox/stats")
    click.echo("Ctrl-C to stop.")
    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    stop.wait()
    for server in servers.values():
        server.stop()
