"""The access log: one line per request, written in batches once per event-loop turn,
never lost (a full buffer, an error line, a stop), and as free of secrets as every
other line."""

from __future__ import annotations

import asyncio
import datetime
import io
import json
import logging
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from gateway.observability.access_log import AccessLog
from gateway.observability.log_writer import LineWriter
from gateway.observability.logging import (
    REDACTED,
    LogContext,
    configure_logging,
    forget_secrets,
    register_secret,
)
from tests.ops.conftest import ROOT, free_port, gateway_env


class CountingStream(io.StringIO):
    """A stream that counts its writes (one per batch, not one per line)."""

    def __init__(self) -> None:
        super().__init__()
        self.writes = 0

    def write(self, text: str) -> int:
        self.writes += 1
        return super().write(text)


@pytest.fixture
def installed() -> Any:
    """The gateway's handler installed as in production, on a counting stream, writing
    at the end of each loop turn (``log_flush_seconds=0``) so a test sees its lines
    after a turn; the interval is tested on its own."""
    root = logging.getLogger()
    level = root.level
    stream = CountingStream()
    handler = configure_logging("INFO", json_lines=True, stream=stream, flush_seconds=0)
    yield stream
    root.removeHandler(handler)
    root.setLevel(level)


def _context(request_id: str = "rid-1", **extra: Any) -> LogContext:
    ctx = LogContext()
    ctx.request_id, ctx.reseller_id, ctx.extra = request_id, "rs_1", extra or None
    return ctx


def _loop() -> asyncio.AbstractEventLoop | None:
    """The running loop, as the front door hands it to the access log (``None`` in a
    thread that runs none)."""
    return asyncio._get_running_loop()


def _lines(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


async def test_a_turn_of_requests_is_written_once_with_every_field(installed) -> None:
    access = AccessLog()
    for i in range(20):
        access.write(logging.INFO, "GET", "/v1/search", 200, 0.0012, _context(f"rid-{i}"), _loop())
    assert installed.getvalue() == ""  # buffered until the end of this turn
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    lines = _lines(installed)
    assert installed.writes == 1 and len(lines) == 20
    assert [line["request_id"] for line in lines] == [f"rid-{i}" for i in range(20)]
    first = lines[0]
    assert list(first)[:4] == ["ts", "level", "logger", "message"]
    assert first["logger"] == "gateway.http" and first["level"] == "info"
    assert first["message"] == "GET /v1/search 200" and first["route"] == "/v1/search"
    assert first["method"] == "GET" and first["status"] == 200
    assert first["reseller_id"] == "rs_1" and first["duration_ms"] == 1.2
    assert first["ts"].endswith("+00:00") and len(first["ts"]) == 29


async def test_warnings_errors_and_5xx_lines_are_written_at_once_in_order(installed) -> None:
    access = AccessLog()
    access.write(logging.INFO, "GET", "/v1/products", 200, 0.001, _context("first"), _loop())
    logging.getLogger("gateway.test").warning("upstream slow")
    access.write(logging.ERROR, "GET", "/v1/products", 500, 0.001, _context("failed"), _loop())
    # no turn has ended: all of it is out already, in the order it happened
    messages = [line["message"] for line in _lines(installed)]
    assert messages == ["GET /v1/products 200", "upstream slow", "GET /v1/products 500"]


async def test_a_full_buffer_is_written_not_dropped() -> None:
    stream = CountingStream()
    writer = LineWriter(stream, max_bytes=1000)
    for i in range(50):
        writer.add(f"line {i:03d} " + "x" * 90 + "\n", _loop())  # ~100 bytes each
    assert stream.writes >= 4  # the buffer filled several times within one turn
    writer.flush()
    assert [line[:8] for line in stream.getvalue().splitlines()] == [
        f"line {i:03d}" for i in range(50)
    ]


async def test_lines_wait_at_most_the_flush_interval() -> None:
    stream = CountingStream()
    writer = LineWriter(stream, flush_seconds=0.05)
    writer.add("one\n", _loop())
    writer.add("two\n", _loop())
    await asyncio.sleep(0)
    assert stream.writes == 0  # not per turn: the interval batches several turns
    written = asyncio.Event()
    asyncio.get_running_loop().call_later(0.05, written.set)
    await asyncio.wait_for(written.wait(), 1)
    await asyncio.sleep(0)
    assert stream.getvalue() == "one\ntwo\n" and stream.writes == 1
    writer.add("three\n", _loop())
    writer.flush()  # a graceful stop writes what waits
    assert stream.getvalue().endswith("three\n")


async def test_with_no_interval_lines_are_written_by_the_end_of_the_turn() -> None:
    stream = CountingStream()
    writer = LineWriter(stream, flush_seconds=0)
    writer.add("one\n", _loop())
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert stream.getvalue() == "one\n"


def test_without_a_running_loop_lines_are_written_at_once() -> None:
    stream = io.StringIO()
    LineWriter(stream).add("from a thread or a CLI tool\n", _loop())
    assert stream.getvalue() == "from a thread or a CLI tool\n"


async def test_a_request_id_or_context_field_carrying_a_secret_is_redacted(installed) -> None:
    key = "gk_live_" + "Q" * 40  # a caller may send anything well formed as X-Request-ID
    registered = "registered-secret-value"
    register_secret(registered)
    try:
        access = AccessLog()
        access.write(
            logging.INFO, "GET", "/x", 200, 0.001, _context(key, api_key="k123456"), _loop()
        )
        access.write(
            logging.INFO, "GET", "/x", 200, 0.001, _context("ok", note=f"see {registered}"), _loop()
        )
        await asyncio.sleep(0)
        await asyncio.sleep(0)
    finally:
        forget_secrets()
    text = installed.getvalue()
    assert key not in text and "k123456" not in text and registered not in text
    first, second = _lines(installed)
    assert first["request_id"] == REDACTED and first["api_key"] == REDACTED
    assert second["note"] == f"see {REDACTED}"


async def test_text_lines_for_a_terminal() -> None:
    stream = io.StringIO()
    handler = configure_logging("INFO", json_lines=False, stream=stream)
    try:
        AccessLog().write(logging.INFO, "POST", "/v1/orders", 201, 0.0456, _context("r-9"), _loop())
        handler.flush()
    finally:
        logging.getLogger().removeHandler(handler)
    (line,) = stream.getvalue().splitlines()
    clock, level, rest = line.split(" ", 2)
    assert len(clock) == 8 and level == "INFO"
    assert rest.strip() == "POST /v1/orders 201 45.6ms reseller=rs_1 request=r-9"


async def test_the_log_level_and_other_handlers_are_honoured(installed, caplog) -> None:
    access = AccessLog()
    logging.getLogger("gateway.http").setLevel(logging.WARNING)  # GATEWAY_LOG_LEVEL=WARNING
    try:
        assert not access.enabled_for(logging.INFO)  # the front door writes no line then
        assert access.enabled_for(logging.ERROR)
    finally:
        logging.getLogger("gateway.http").setLevel(logging.NOTSET)
    with caplog.at_level(logging.INFO):
        access.write(logging.INFO, "GET", "/v1/search", 200, 0.001, _context("seen"), _loop())
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert [line["request_id"] for line in _lines(installed)] == ["seen"]
    (record,) = [r for r in caplog.records if r.name == "gateway.http"]
    assert record.getMessage() == "GET /v1/search 200" and record.request_id == "seen"


def test_a_stopped_server_has_written_one_line_per_request(
    redis_url: str, key_prefix: str, tmp_path: Path
) -> None:
    """``gateway serve`` with its output to a file (not a terminal: JSON), a burst of
    requests, then SIGTERM right after: every request has its line."""
    port = free_port()
    env = gateway_env(
        redis_url, key_prefix, GATEWAY_HTTP__PORT=str(port), GATEWAY_ORDERS__INLINE_WORKERS="false"
    )
    log_file = tmp_path / "gateway.log"
    gateway = str(Path(sys.executable).with_name("gateway"))
    with log_file.open("wb") as out:
        proc = subprocess.Popen(
            [gateway, "serve"], env=env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT
        )
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, log_file.read_text()
            assert time.monotonic() < deadline, "the gateway did not start"
            try:
                httpx.get(url + "/healthz", timeout=1)
                break
            except httpx.TransportError:
                time.sleep(0.1)

        async def burst() -> None:
            async with httpx.AsyncClient(base_url=url) as client:
                for _ in range(10):
                    await asyncio.gather(
                        *(client.get(f"/no/such/{i}", headers={"X-Request-ID": f"b-{i}"})
                          for i in range(30))
                    )  # fmt: skip

        asyncio.run(burst())
        proc.terminate()
        assert proc.wait(timeout=60) in (0, -15)  # uvicorn re-raises the signal it handled
    finally:
        if proc.poll() is None:
            proc.kill()
    text = log_file.read_text().splitlines()
    lines = [json.loads(line) for line in text if line.startswith("{")]  # not the banner
    access = [line for line in lines if line["logger"] == "gateway.http"]
    assert len(access) == 300
    assert all(line["status"] == 404 for line in access)


def test_ts_is_what_the_json_formatter_writes_for_the_same_moment() -> None:
    """``_Clock`` assembles ``ts`` from parts worked out once (the second, a table of
    millisecond endings); the result is the formatter's ``isoformat``."""

    from gateway.observability.access_log import _Clock

    clock = _Clock()
    for now in (0.0, 1.0005, 1765000000.0, 1765000000.9999, 1765000001.001, 1765000059.5):
        expected = datetime.datetime.fromtimestamp(now, datetime.UTC).isoformat(
            timespec="milliseconds"
        )
        assert clock.iso(now) == expected, now


def test_a_line_with_context_fields_renders_them_after_the_request_fields(installed) -> None:
    """Lines with fields bound to the request's context take orjson's slower options
    (keys that are not strings); lines without, the faster ones: the same text."""
    access = AccessLog()
    access.write(logging.INFO, "GET", "/v1/x", 200, 0.001, _context("rid-a", attempt=2), _loop())
    access.write(logging.INFO, "GET", "/v1/x", 200, 0.001, _context("rid-b"), _loop())
    for handler in logging.getLogger().handlers:
        handler.flush()
    with_extra, plain = installed.getvalue().splitlines()
    assert json.loads(with_extra)["attempt"] == 2 and list(json.loads(with_extra))[-1] == "attempt"
    assert with_extra.replace('"rid-a"', '"rid-b"').replace(',"attempt":2', "") == plain.replace(
        json.loads(plain)["ts"], json.loads(with_extra)["ts"]
    )


#: Strings heavy in what JSON escapes (and in what it does not), no lone surrogates.
_TEXT = st.text(
    st.one_of(
        st.sampled_from('"\\/\x00\n\x1f\x7f\u2028é{}'),
        st.characters(exclude_categories=("Cs",)),
    ),
    max_size=12,
)


@settings(max_examples=400, deadline=None)
@given(
    method=st.one_of(st.sampled_from(["GET", "POST", "other"]), _TEXT),
    route=st.one_of(st.sampled_from(["/v1/search", "/v1/orders/{order_id}"]), _TEXT),
    request_id=st.one_of(st.none(), st.from_regex(r"[A-Za-z0-9._-]{1,40}", fullmatch=True), _TEXT),
    issued=st.booleans(),
    reseller_id=st.one_of(st.none(), st.just("rs_demo"), _TEXT),
    microseconds=st.one_of(st.integers(0, 10**7), st.integers(0, 10**21)),
    status=st.sampled_from([200, 201, 404, 429, 500, 503]),
    level=st.sampled_from([logging.DEBUG, logging.INFO, logging.ERROR]),
)
# What JSON escapes, once in each value the template may write as it is:
@example('G"T', "/v1/x", "r1", False, "rs_1", 1, 200, logging.INFO)
@example("GET", "/v1/\\x", "r1", False, "rs_1", 1, 200, logging.INFO)
@example("GET", "/v1/x", 'r"1', False, "rs_1", 1, 200, logging.INFO)
@example("GET", "/v1/x", "r\\1", False, "rs_1", 1, 200, logging.INFO)
@example("GET", "/v1/x", "r\x001", False, "rs_1", 1, 200, logging.INFO)
@example("GET", "/v1/x", "r1", False, 'rs_"1', 1, 200, logging.INFO)
@example("GET", "/v1/x", "r1", False, "rs_\n1", 1, 200, logging.INFO)
@example("GET", "/v1/x", "r1", True, "rs_é", 10**13, 500, logging.ERROR)
def test_a_json_line_is_exactly_what_orjson_writes_for_its_fields(
    method: str,
    route: str,
    request_id: str | None,
    issued: bool,
    reseller_id: str | None,
    microseconds: int,
    status: int,
    level: int,
) -> None:
    """Lines without context fields are filled into a template (fragments encoded
    once): the bytes orjson gives for the same fields in the same order, whatever the
    values hold (an issued request id is hex: ``issued`` is drawn only for those)."""
    issued = issued and request_id is not None and request_id.isalnum() and request_id.isascii()
    access, now = AccessLog(), 1_765_000_000.123
    expected = {
        "ts": datetime.datetime.fromtimestamp(now, datetime.UTC).isoformat(timespec="milliseconds"),
        "level": logging.getLevelName(level).lower(),
        "logger": "gateway.http",
        "message": f"{method} {route} {status}",
        "request_id": request_id,
        "reseller_id": reseller_id,
        "route": route,
        "method": method,
        "status": status,
        "duration_ms": microseconds / 1000,
    }
    for _ in range(2):  # the second time from the remembered fragments
        line = access._json(
            now, level, method, route, status, request_id, issued, reseller_id, microseconds, None
        )
        assert line == orjson.dumps(expected, option=orjson.OPT_APPEND_NEWLINE).decode()


def test_every_duration_below_two_seconds_is_written_as_orjson_writes_it() -> None:
    """The template writes a duration from its microseconds and a table: the same text
    as orjson's (``repr``) for each of the first two million, and for large ones."""
    access = AccessLog()
    for microseconds in [*range(2_000_000), 10**12 - 1, 123_456_789_012, 999_999_999]:
        line = access._json(
            0.0, logging.INFO, "GET", "/", 200, None, False, None, microseconds, None
        )
        written = line.rsplit('"duration_ms":', 1)[1][:-2]
        assert written == orjson.dumps(microseconds / 1000).decode(), microseconds
