"""Server processes a test starts (``gateway serve`` and friends): waiting until one
answers, and stopping it as an orchestrator would."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time

import httpx
import pytest


def wait_until_healthy(url: str, proc: subprocess.Popen[bytes], seconds: float = 60) -> None:
    """Poll ``url``/healthz until it answers 200; fail the test with the process's output
    if it exits first, or when ``seconds`` pass."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            out = proc.stdout.read().decode() if proc.stdout else ""
            pytest.fail(f"the server exited with {proc.returncode}:\n{out[-3000:]}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                return
        time.sleep(0.1)
    pytest.fail(f"the server did not answer {url}/healthz within {seconds:.0f} s")


def stop(proc: subprocess.Popen[bytes], grace: float = 30) -> None:
    """SIGTERM, as Kubernetes or docker stop sends; SIGKILL to the whole process group
    (workers included) if it has not exited within ``grace`` seconds."""
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
