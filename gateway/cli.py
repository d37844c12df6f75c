"""The ``gateway`` command: ``serve``, ``sandbox`` and the operator tools.

Built on click (well-kept, composable subcommands, progress bars) rather than argparse.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from pathlib import Path

import click

from gateway.access.commands import keys, resellers
from gateway.accounts.commands import accounts
from gateway.catalog.commands import catalog
from gateway.orders.commands import orders, worker
from gateway.settings import Settings


@click.group()
def main() -> None:
    """Digital-goods reseller gateway."""


@main.command()
@click.option("--host", default=None, help="Interface to listen on (default from settings).")
@click.option("--port", type=int, default=None, help="Port to listen on (default from settings).")
@click.option("--workers", type=int, default=None, help="uvicorn worker processes.")
@click.option(
    "--demo-key",
    is_flag=True,
    help="With the sandbox suppliers and a real GATEWAY_REDIS_URL: write a demo key there "
    "too (loopback only, expiring; access.demo_in_redis).",
)
def serve(host: str | None, port: int | None, workers: int | None, demo_key: bool) -> None:
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
    # Demo mode prints a key with every scope. The embedded store forgets it on exit; a
    # real Redis would keep it as a standing credential, so it gets one only when asked,
    # and then one that works from loopback only and expires (Access.start).
    in_redis = settings.redis_url is not None
    asked = demo_key or settings.access.demo_in_redis
    demo = not in_redis or (sandbox_wanted(settings) and asked)
    if demo and in_redis:
        os.environ["GATEWAY_ACCESS__DEMO_IN_REDIS"] = "true"
    printed: str | None = None
    if demo and settings.access.demo_key is None:
        # The app registers this key at start-up (Access.start), inside the server
        # process where the embedded store lives; printed below, never logged.
        from gateway.access.tokens import new_token

        os.environ["GATEWAY_ACCESS__DEMO_KEY"] = printed = new_token()[1]
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
    if printed is not None:
        base = f"http://{host}:{port}"
        scope = "every scope"
        if in_redis:
            ttl = settings.access.demo_key_ttl_seconds
            scope += f", from this machine only, for {ttl:.0f} s"
        click.echo(f"demo API key       {printed}  (reseller rs_demo, {scope})")
        click.echo(f'  curl -s -H "Authorization: Bearer {printed}" "{base}/v1/search?q=steam"')
        click.echo(f'  curl -s -H "X-API-Key: {printed}" "{base}/v1/products?page_size=5"')
        click.echo(f"  open {base}/docs (Authorize with the key to try the API)")
    elif in_redis and sandbox_wanted(settings) and not demo:
        click.echo(
            "demo API key       none: GATEWAY_REDIS_URL is a real Redis, where it would "
            "outlive this run (gateway serve --demo-key for one that expires, or "
            "gateway resellers create / gateway keys create)"
        )
    from gateway.api.server import uvicorn_options
    from gateway.observability import logging as obs_logging
    from gateway.observability import metrics as obs_metrics

    obs_logging.configure_from(settings)
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
    # Handlers first: a stop asked for while the servers start (they answer before the
    # banner is out) must still stop them cleanly and let the banner reach a pipe.
    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    servers = start_sandboxes(host=host, ports=fixed, **options)
    adapters = discover()
    for name, server in servers.items():
        click.echo(f"{name}: {server.url}")
        for field, value in adapters[name].sandbox_settings(server.url).items():
            if field != "base_url":
                click.echo(f"  {field} = {value}")
        click.echo(f"  control: {server.url}/_sandbox/faults, /_sandbox/orders, /_sandbox/stats")
    click.echo("Ctrl-C to stop.")
    sys.stdout.flush()
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
main.add_command(accounts)
main.add_command(catalog)


@main.command("config-doc")
def config_doc() -> None:
    """Print the configuration reference (every setting) as a Markdown table."""
    from gateway.settings_doc import markdown

    click.echo(markdown())


@main.command("new-adapter")
@click.argument("name")
@click.option(
    "--dest",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("adapters"),
    show_default=True,
    help="Directory the package is written into (as <dest>/<NAME>/).",
)
@click.option(
    "--tests",
    "tests_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("tests/adapters"),
    show_default=True,
    help="Directory of the contract test (test_contract_<NAME>.py).",
)
@click.option(
    "--package",
    default=None,
    help="Dotted import name of the package (default: from --dest, e.g. adapters.<NAME>).",
)
def new_adapter(name: str, dest: Path, tests_dir: Path, package: str | None) -> None:
    """Write a new supplier package (adapter, sandbox, contract test) from the reference
    adapter; it passes the contract suite as written. See docs/adding-a-supplier.md."""
    from gateway.adapter_template import (
        TemplateError,
        check_name,
        class_prefix,
        default_package,
        write,
    )

    try:
        check_name(name)
        package = package or default_package(dest, name, Path.cwd())
        written = write(name, dest=dest, tests=tests_dir, package=package)
    except TemplateError as exc:
        raise click.UsageError(str(exc)) from exc
    for path in written:
        click.echo(f"wrote {path}")
    contract = written[-1]
    click.echo(
        "next:\n"
        f"  REDIS_URL=redis://127.0.0.1:6379/0 python -m pytest {contract} -q"
        "   # the contract suite needs Redis\n"
        f'  register it: [project.entry-points."gateway.adapters"] '
        f'{name} = "{package}:{class_prefix(name)}Adapter", then pip install -e .\n'
        "  paste `gateway config-doc` into the README's configuration table\n"
        "  name its settings in deploy/ (docker-compose.yml, k8s/configmap.yaml, "
        "k8s/*deployment.yaml)"
    )
