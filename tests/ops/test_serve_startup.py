"""``gateway serve`` as an operator runs it: a configuration that cannot work ends in one
clear line and a non-zero exit; logs are short text lines on a terminal and JSON
otherwise (or when ``GATEWAY_LOG_JSON=true`` says so).

Each test runs the real command in a subprocess, on loopback only."""

from __future__ import annotations

import json
import os
import pty
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.ops.conftest import ENCRYPTION_KEY, ROOT, free_port, gateway_env

GATEWAY = str(Path(sys.executable).with_name("gateway"))


def _serve(env: dict[str, str]) -> tuple[int, list[str]]:
    """Run ``gateway serve`` to its end; its exit status and non-empty output lines."""
    proc = subprocess.run(
        [GATEWAY, "serve"], env=env, cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    lines = [line for line in (proc.stdout + proc.stderr).splitlines() if line.strip()]
    return proc.returncode, lines


def _refused(env: dict[str, str]) -> str:
    """The one line a refused start-up prints (and that it exits with status 1)."""
    status, lines = _serve(env)
    assert status == 1, lines
    assert len(lines) == 1, lines  # no traceback, no JSON log lines
    assert lines[0].startswith("Error: ")
    return lines[0]


def test_an_unreachable_redis_is_one_line_without_its_password(key_prefix: str) -> None:
    port = free_port()  # nothing listens there
    url = f"redis://:s3cret-redis-pw@127.0.0.1:{port}/0"
    line = _refused(gateway_env(url, key_prefix, GATEWAY_HTTP__PORT=str(free_port())))
    assert f"127.0.0.1:{port}" in line and "not reachable" in line
    assert "GATEWAY_REDIS_URL" in line  # what to do about it
    assert "s3cret-redis-pw" not in line


def test_a_real_redis_without_an_encryption_key_is_refused(redis_url: str, key_prefix: str) -> None:
    env = gateway_env(redis_url, key_prefix, GATEWAY_HTTP__PORT=str(free_port()))
    del env["GATEWAY_ORDERS__ENCRYPTION_KEYS"]
    line = _refused(env)
    assert "encryption_keys is not set" in line
    assert "GATEWAY_ORDERS__ENCRYPTION_KEYS" in line and "gateway orders generate-key" in line

    env["GATEWAY_ORDERS__ENCRYPTION_KEYS"] = '["not-a-fernet-key"]'
    assert "is not a Fernet key" in _refused(env)


def test_bad_settings_name_the_variable_to_fix(redis_url: str, key_prefix: str) -> None:
    base = gateway_env(redis_url, key_prefix)
    line = _refused({**base, "GATEWAY_HTTP__PORT": "99999"})
    assert "GATEWAY_HTTP__PORT" in line and "65535" in line

    line = _refused({**base, "GATEWAY_HTTP__PORT": str(free_port()), "GATEWAY_LOG_LEVEL": "LOUD"})
    assert "GATEWAY_LOG_LEVEL" in line

    secret = "vk_live_abcdef1234567890"
    line = _refused(
        {
            **base,
            "GATEWAY_HTTP__PORT": str(free_port()),
            "GATEWAY_SUPPLIERS__VOUCHERS__BASE_URL": f"http://127.0.0.1:{free_port()}",
            "GATEWAY_SUPPLIERS__VOUCHERS__API_KEY": secret,
        }
    )
    assert "GATEWAY_SUPPLIERS__VOUCHERS__API_SECRET" in line and "required" in line
    assert secret not in line


def _terminal_lines(env: dict[str, str], within: float = 60.0) -> list[str]:
    """Start ``gateway serve`` with a pseudo-terminal as its output, read until the
    server says it started, stop it (SIGINT, as Ctrl-C) and return what it wrote."""
    controller, terminal = pty.openpty()
    proc = subprocess.Popen(
        [GATEWAY, "serve"], env=env, cwd=ROOT, stdin=subprocess.DEVNULL,
        stdout=terminal, stderr=terminal,
    )  # fmt: skip
    os.close(terminal)
    out = b""
    deadline = time.monotonic() + within
    try:
        while b"Application startup complete" not in out:
            assert time.monotonic() < deadline, out.decode(errors="replace")
            ready, _, _ = select.select([controller], [], [], 0.5)
            if ready:
                try:
                    out += os.read(controller, 65536)
                except OSError:  # the terminal closed: the server exited
                    break
            assert proc.poll() is None or b"startup complete" in out, out.decode()
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=30)
        os.close(controller)
    return [line for line in out.decode(errors="replace").splitlines() if line.strip()]


def _demo_env(**extra: str) -> dict[str, str]:
    """The in-memory demo (no Redis, no sandboxes) on a free port."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    return (
        env
        | {
            "GATEWAY_SANDBOX": "off",
            "GATEWAY_HTTP__PORT": str(free_port()),
            "GATEWAY_ORDERS__ENCRYPTION_KEYS": json.dumps([ENCRYPTION_KEY]),
        }
        | extra
    )


def test_a_terminal_gets_short_text_lines_below_the_banner() -> None:
    lines = _terminal_lines(_demo_env())
    banner = [i for i, line in enumerate(lines) if line.startswith("gateway ")]
    assert banner, lines
    logs = lines[banner[0] + 1 :]
    started = [line for line in logs if "Application startup complete" in line]
    assert started, logs
    assert not any(line.lstrip().startswith("{") for line in logs), logs
    # "HH:MM:SS INFO  uvicorn.error: Application startup complete."
    time_of_day, level = started[0].split()[:2]
    assert len(time_of_day) == 8 and time_of_day.count(":") == 2 and level == "INFO"


def test_json_when_asked_for_even_on_a_terminal() -> None:
    lines = _terminal_lines(_demo_env(GATEWAY_LOG_JSON="true"))
    logs = [line for line in lines if line.lstrip().startswith("{")]
    started = [json.loads(line) for line in logs if "Application startup complete" in line]
    assert started and started[0]["level"] == "info" and "ts" in started[0]
