"""Running the real ``gateway`` CLI from async tests (in a thread: it runs its own loop)."""

from __future__ import annotations

import asyncio
import re

from click.testing import CliRunner, Result

from gateway.cli import main


async def gateway_cli(redis_url: str, key_prefix: str, *args: str) -> Result:
    env = {"GATEWAY_REDIS_URL": redis_url, "GATEWAY_KEY_PREFIX": key_prefix}
    return await asyncio.to_thread(CliRunner().invoke, main, list(args), env=env)


def printed(result: Result, label: str) -> str:
    """The value printed after ``label`` (e.g. ``api key``) by a command."""
    match = re.search(rf"^{re.escape(label)}\s+(\S+)", result.output, re.MULTILINE)
    assert match, f"{label!r} not in output:\n{result.output}"
    return match.group(1)
