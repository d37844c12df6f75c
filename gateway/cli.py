"""The ``gateway`` command: ``serve``, ``sandbox`` and the operator tools.

Built on click (well-kept, composable subcommands, progress bars) rather than argparse.
"""

from __future__ import annotations

import os
import signal
import threading

import click

from gateway.access.commands import keys, resellers
from gateway.orders.commands import orders, worker
from gateway.settings import Settings


@click.group()
def main() -> None:
    """Digital-goods reseller gateway."""


@main.command()
@click.option("--host", default=None, help="Interface to listen on (default from settings).")
@click.option("--port", type=int, default=None, help="Port to listen on (default from settings).")
@click.option("--workers", type=int, default=None, help="uvicorn worker processes.")
def serve(host: str | None, port: int | None, workers: int | None) -> None:
    """Run the gateway (with the built-in sandbox suppliers when none is configured).

    A configuration that cannot work (bad settings, Redis unreachable, no encryption
    key with a real Redis, ...) is refused before the server starts, in one line, with
    exit status 1 (``gateway.startup``)."""
    import uvicorn

    from gateway import startup
    from gateway.suppliers import sandbox_environment, sandbox_wanted, start_sandboxes

    try:
        settings = startup.load_settings()
    except startup.StartupError as exc:
        raise click.ClickException(str(exc)) from None
    host = host or settings.http.host
    port = port if port is not None else settings.http.port
    workers = workers or settings.http.workers
    if settings.redis_url is None and workers > 1:
        raise click.UsageError(
            "the embedded store lives in one process: set GATEWAY_REDIS_URL to run several workers"
        )
    demo = settings.redis_url is None or sandbox_wanted(settings)
    if demo and settings.access.demo_key is None:
        # The app registers this key at start-up (Access.start), inside the server
        # process where the embedded store lives; printed below, never logged.
        from gateway.access.tokens import new_token

        os.environ["GATEWAY_ACCESS__DEMO_KEY"] = demo_key = new_token()[1]
    else:
        demo_key = None
    if sandbox_wanted(settings):
        servers = start_sandboxes()
        os.environ.update(sandbox_environment(servers))
        for name, server in servers.items():
            click.echo(f"sandbox {name:<14} {server.url}")
    _check_startup()
    store = settings.redis_url or "embedded in-process store (demo only, not durable)"
    click.echo(f"store              {store}")
    click.echo(f"gateway            http://{host}:{port}")
    click.echo(f"  curl -s http://{host}:{port}/healthz")
    click.echo(f"  curl -s http://{host}:{port}/readyz")
    if demo_key is not None:
        base = f"http://{host}:{port}"
        click.echo(f"demo API key       {demo_key}  (reseller rs_demo, every scope)")
        click.echo(f'  curl -s -H "Authorization: Bearer {demo_key}" "{base}/v1/search?q=steam"')
        click.echo(f'  curl -s -H "X-API-Key: {demo_key}" "{base}/v1/products?page_size=5"')
        click.echo(f"  open {base}/docs (Authorize with the key to try the API)")
    from gateway.observability import logging as obs_logging
    from gateway.observability import metrics as obs_metrics
    from gateway.observability.shutdown import uvicorn_options

    obs_logging.configure_logging(
        settings.log_level, json_lines=settings.log_json, secrets_from=[settings]
    )
    metrics_dir = obs_metrics.prepare_multiprocess(workers)  # workers share one /metrics
    try:
        uvicorn.run(
            "gateway.app:create_app",
            factory=True,
            host=host,
            port=port,
            workers=workers,
            **uvicorn_options(settings),
        )
    finally:
        obs_metrics.remove_multiprocess_dir(metrics_dir)


def _check_startup() -> None:
    """Build the gateway once from the environment as the server will see it (sandbox
    URLs and demo key included) and close it; a failure ends the command in one line.
    Its warnings are left to the server, which logs them again as it starts."""
    import logging

    from gateway import startup

    logging.disable(logging.WARNING)
    try:
        startup.check(startup.load_settings())
    except startup.StartupError as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        logging.disable(logging.NOTSET)


def _parse_ports(values: tuple[str, ...]) -> dict[str, int]:
    ports: dict[str, int] = {}
    for value in values:
        name, sep, number = value.partition("=")
        if not sep or not number.isdigit() or not 0 < int(number) < 65536:
            raise click.BadParameter(f"{value!r}: expected NAME=PORT, e.g. vouchers=9002")
        ports[name.replace("-", "_")] = int(number)
    return ports


@main.command()
@click.option("--seed", type=int, default=None, help="Catalog seed for every sandbox.")
@click.option(
    "--host", default="127.0.0.1", show_default=True, help="Interface (0.0.0.0 in a container)."
)
@click.option(
    "--port",
    "ports",
    multiple=True,
    metavar="NAME=PORT",
    help="Fixed port for one supplier's sandbox (repeatable); others get a free port.",
)
def sandbox(seed: int | None, host: str, ports: tuple[str, ...]) -> None:
    """Run every supplier sandbox until interrupted (loopback, free ports by default)."""
    from adapters.registry import discover
    from gateway.suppliers import start_sandboxes

    fixed = _parse_ports(ports)
    unknown = sorted(set(fixed) - set(discover()))
    if unknown:
        raise click.BadParameter(f"no such supplier: {', '.join(unknown)}", param_hint="--port")
    options = {name: {"seed": seed} for name in discover()} if seed is not None else {}
    servers = start_sandboxes(host=host, ports=fixed, **options)
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


@main.command()
@click.option(
    "--supplier",
    "suppliers",
    multiple=True,
    metavar="NAME",
    help="Sync only this supplier (repeatable); default: every configured supplier.",
)
def sync(suppliers: tuple[str, ...]) -> None:
    """Sync supplier catalogs into Redis now, with a progress bar and a summary.

    Takes the same per-supplier lock as the gateway's periodic sync, so it never runs
    alongside one; exits 1 if any supplier failed or was busy."""
    from gateway.catalog.sync_command import run_sync

    raise SystemExit(run_sync(Settings(), suppliers))


main.add_command(resellers)
main.add_command(keys)
main.add_command(worker)
main.add_command(orders)


@main.command("config-doc")
def config_doc() -> None:
    """Print the configuration reference (every setting) as a Markdown table."""
    from gateway.settings_doc import markdown

    click.echo(markdown())
