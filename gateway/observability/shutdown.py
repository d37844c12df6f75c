"""How the gateway stops: gracefully, in a bounded time, losing nothing.

On SIGTERM (Kubernetes, ``docker stop``) or SIGINT, uvicorn

1. stops accepting: the listening sockets close at once, so the load balancer's next
   connection goes to another instance (Kubernetes removes the pod from the Service's
   endpoints at the same moment; the Deployment's ``preStop`` sleep covers the gap until
   every node has heard);
2. finishes in-flight requests: idle keep-alive connections are closed, requests being
   served run to their end, for at most ``http.shutdown_grace_seconds`` (which must exceed
   the longest request, ``orders.max_wait_seconds`` of ``Prefer: wait``), after which the
   stragglers are cancelled;
3. runs the app's shutdown: the gateway closes its clients, and in-process order workers
   stop taking new stream entries. An order job that was read but not acknowledged stays
   *pending* in the Redis Stream's consumer group, and another worker claims it after the
   idle timeout: unfinished order work is never dropped, and never done twice, because
   every upstream call carries the order's deterministic reference.

The uvicorn options that make this so are ``gateway.api.server.uvicorn_options``.

A second signal forces an immediate exit (step 2 is skipped); that too loses no order,
only the answers to the requests still in flight.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Collection
from typing import Any

log = logging.getLogger("gateway.shutdown")


async def cancel_and_wait(
    tasks: Collection[asyncio.Task[Any]], *, within: float, what: str
) -> None:
    """Cancel ``tasks`` and wait for them, at most ``within`` seconds; log and abandon any
    that are still running then.

    Bounded because redis-py can swallow the cancellation of a task that is mid-command
    (see ``docs/operations.md``): a background loop may then outlive ``cancel()``, and an
    unbounded wait would hang the stop. Cancelled once only: a second cancellation would
    interrupt the clean-up a task runs when cancelled (releasing a lock, say). Exceptions
    the tasks ended with are retrieved here: a stop is not the place to raise them."""
    if not tasks:
        return
    for task in tasks:
        task.cancel()
    done, stuck = await asyncio.wait(tasks, timeout=within)
    for task in done:
        if not task.cancelled():
            task.exception()
    if stuck:
        log.warning(
            "%s did not stop within %.1f s; abandoning %d task(s)", what, within, len(stuck)
        )
