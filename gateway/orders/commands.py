"""``gateway worker`` and ``gateway orders ...``: running order work and operating it.

Both need a real Redis (``GATEWAY_REDIS_URL``) and the gateway's configuration (the same
suppliers and encryption keys as the gateway instances): they build the same ``Gateway``.
"""

from __future__ import annotations

import asyncio
import json
import signal
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

import click

from gateway.operator_settings import settings_with_redis
from gateway.settings import Settings

T = TypeVar("T")


def _settings() -> Settings:
    return settings_with_redis("orders")


def _with_orders(settings: Settings, action: Callable[[Any], Awaitable[T]]) -> T:
    async def run() -> T:
        from gateway.bootstrap import bootstrap

        gateway = await bootstrap(settings)
        try:
            return await action(gateway.services.orders)
        finally:
            await gateway.aclose()

    return asyncio.run(run())


@click.command()
@click.option(
    "--concurrency", type=int, default=None, help="Jobs at a time (default from settings)."
)
def worker(concurrency: int | None) -> None:
    """Run order workers (placement, fulfilment polling, webhooks) without the HTTP API.

    Any number may run, on any hosts, next to gateway instances (set
    GATEWAY_ORDERS__INLINE_WORKERS=false on those to keep order work off them). SIGTERM
    stops gracefully: running jobs finish for orders.shutdown_grace_seconds, the rest are
    left in the stream for another worker."""
    from gateway.observability import logging as obs_logging
    from gateway.observability import metrics as obs_metrics

    settings = _settings()
    if concurrency is not None:
        if concurrency < 1:
            raise click.BadParameter("must be at least 1", param_hint="--concurrency")
        settings.orders.worker_concurrency = concurrency
    obs_logging.configure_from(settings)
    if settings.http.metrics_port is not None:
        obs_metrics.serve_metrics(settings.http.metrics_port)
    asyncio.run(_run_worker(settings))


async def _run_worker(settings: Settings) -> None:
    from gateway.bootstrap import bootstrap

    gateway = await bootstrap(settings)
    orders = gateway.services.orders
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await orders.start(workers=True, notifications=False)
        assert orders.worker is not None  # workers=True starts one
        click.echo(f"order worker {orders.worker.name} running; Ctrl-C to stop", err=True)
        await stop.wait()
    finally:
        await orders.stop()
        await gateway.aclose()


@click.group()
def orders() -> None:
    """Operate orders: one order's record, the review list, resolving held orders,
    encryption keys."""


def _when(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%SZ")


@orders.command()
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
def review(as_json: bool) -> None:
    """List upstream orders held for review (outcome unknown; never re-sent blindly)."""
    from gateway.orders.operations import held_parts

    rows = _with_orders(_settings(), held_parts)
    if as_json:
        for row in rows:
            click.echo(json.dumps(row.as_dict()))
        return
    if not rows:
        click.echo("nothing is held for review")
        return
    for row in rows:
        click.echo(
            f"{row.order_id} part {row.part}  {row.supplier}  ref {row.reference}  "
            f"held since {_when(row.held_since)}  reason {row.reason}"
        )
        click.echo(
            f"    reseller {row.reseller_id}  upstream id {row.upstream_id or '-'}  "
            f"attempts {row.attempts}  last error {row.last_error or '-'}"
        )
        for attempt in row.tries:
            click.echo("      " + _attempt_line(attempt))
    click.echo(f"{len(rows)} held. Resolve with: gateway orders resolve ORDER_ID PART --action ...")


def _attempt_line(attempt: dict[str, Any]) -> str:
    """One attempt of a part, for operators (no codes or secrets are ever in it)."""
    ended = f" -> {_when(attempt['ended_at'])}" if attempt.get("ended_at") else ""
    code = f"  code {attempt['code']}" if attempt.get("code") else ""
    error = f"  error {attempt['error']}" if attempt.get("error") else ""
    return (
        f"attempt {attempt['n']}: {attempt['supplier']} {attempt['variant_id']}  "
        f"ref {attempt['reference']}  {attempt['outcome']}  at {_when(attempt['at'])}"
        f"{ended}{code}{error}"
    )


@orders.command()
@click.argument("order_id")
@click.option("--json", "as_json", is_flag=True, help="The order as one JSON object.")
def show(order_id: str, as_json: bool) -> None:
    """Show one order as operators need it: items (never their codes), each upstream part
    and every supplier attempt (supplier, reference, outcome, time, error)."""
    from gateway.orders.operations import show as load

    async def run(service: Any) -> Any:
        return await load(service, order_id)

    detail = _with_orders(_settings(), run)
    if detail is None:
        raise click.ClickException(f"no order {order_id}")
    if as_json:
        click.echo(json.dumps(detail))
        return
    click.echo(
        f"{detail['id']}  {detail['status']}  reseller {detail['reseller_id']}  "
        f"created {_when(detail['created_at'])}"
    )
    for n, item in enumerate(detail["items"]):
        price = item["unit_price"]
        ordered = item["canonical_variant_id"] or item["variant_id"]
        click.echo(
            f"  item {n}: {ordered} x{item['quantity']} at {price['amount']} "
            f"{price['currency']}  {item['status']} ({item['delivered_quantity']} delivered)"
            f"  via {item['supplier']} {item['variant_id']}"
        )
        if item["failure"]:
            click.echo(f"    failure {item['failure']['code']}: {item['failure']['message']}")
    for part in detail["parts"]:
        kind = "routed" if part["routed"] else "pinned"
        click.echo(
            f"  part {part['part']} ({kind}): {part['state']}  {part['supplier']}  "
            f"ref {part['reference']}  upstream id {part['upstream_id'] or '-'}"
            + (f"  held: {part['review_reason']}" if part["review_reason"] else "")
        )
        for attempt in part["tries"]:
            click.echo("    " + _attempt_line(attempt))


@orders.command()
@click.argument("order_id")
@click.argument("part", type=int)
@click.option(
    "--action",
    type=click.Choice(["reconcile", "retry", "fail"]),
    required=True,
    help="reconcile: look it up by reference again; retry: send again under the same "
    "reference; fail: give up (its items fail).",
)
def resolve(order_id: str, part: int, action: str) -> None:
    """Resolve one upstream order held for review."""
    from gateway.orders.operations import Resolution, ResolveError
    from gateway.orders.operations import resolve as do_resolve

    async def run(service: Any) -> Any:
        return await do_resolve(service, order_id, part, Resolution(action))

    try:
        order = _with_orders(_settings(), run)
    except ResolveError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"{order.id}: {action} requested; order is {order.status.value}")


@orders.command("generate-key")
def generate_key() -> None:
    """Print a new encryption key for orders.encryption_keys (to standard output only)."""
    from gateway.orders.crypto import CodeCipher

    click.echo(CodeCipher.generate_key())


@orders.command("rotate-keys")
def rotate_keys() -> None:
    """Re-encrypt every stored code under the first (newest) configured key.

    Rotation: prepend a new key to GATEWAY_ORDERS__ENCRYPTION_KEYS on every instance and
    worker, restart them, run this, then remove the old key."""
    from gateway.orders.operations import rotate_keys as do_rotate

    orders_done, answers = _with_orders(_settings(), do_rotate)
    click.echo(f"re-encrypted the codes of {orders_done} orders and {answers} stored answers")
