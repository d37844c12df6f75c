"""The settings of an operator command that works on the gateway's real Redis
(``gateway orders|resellers|keys|accounts|catalog matches``).

Such a command reads or writes what running gateways keep in Redis; with no
``GATEWAY_REDIS_URL`` there is nothing for it to reach (the embedded demo store lives
inside a running ``gateway serve``), so it stops with a usage error saying so.
"""

from __future__ import annotations

import click

from gateway.settings import Settings


def settings_with_redis(what: str) -> Settings:
    """The settings from the environment, or ``click.UsageError`` when they name no Redis;
    ``what`` says what the command would have worked on ("orders", "accounts", ...)."""
    settings = Settings()
    if settings.redis_url is None:
        raise click.UsageError(
            f"{what} live in Redis: set GATEWAY_REDIS_URL (the embedded demo store exists "
            "only inside a running `gateway serve`)"
        )
    return settings
