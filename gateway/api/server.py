"""How uvicorn serves the gateway: the one set of options every entry point uses
(``gateway serve``, ``--workers``, the deploy manifests through it, the tests).

It lives in the API layer because it names the HTTP protocol class that bounds slow and
huge requests (``gateway.api.connections``); the graceful stop it configures is described
in ``gateway.observability.shutdown``.
"""

from __future__ import annotations

from typing import Any

from gateway.api.connections import PROTOCOL
from gateway.settings import Settings


def uvicorn_options(settings: Settings) -> dict[str, Any]:
    """Keyword arguments for ``uvicorn.run`` / ``uvicorn.Config`` shared by every entry."""
    return {
        "timeout_graceful_shutdown": settings.http.shutdown_grace_seconds,
        # Longer than a load balancer's idle timeout (AWS ALB 60 s by default), so the
        # balancer, not the server, closes idle connections: no request is sent on a
        # connection the server is closing (a 502). Shutdown closes idle ones anyway.
        "timeout_keep_alive": settings.http.keep_alive_seconds,
        # Slow, silent and huge requests are bounded per connection (header and body
        # time, head size, connections per process): gateway.api.connections.
        "http": PROTOCOL,
        "h11_max_incomplete_event_size": settings.http.max_header_bytes,
        # Never let uvicorn rewrite the client address from X-Forwarded-For: it believes
        # any loopback peer by default, so a local sidecar's client could pick its
        # address and pass a key's IP allowlist. access.trusted_proxies alone decides
        # which forwarding headers are believed (gateway.access.client_ip).
        "proxy_headers": False,
        # Our JSON handler (configure_logging) formats uvicorn's lines too.
        "log_config": None,
        "access_log": False,
        "log_level": settings.log_level.lower(),
    }
