"""Structured logs: one JSON object per line, carrying the request it belongs to.

Three pieces, all on the standard ``logging`` module so that third-party loggers (uvicorn,
redis, httpx) come out in the same shape:

* ``LogContext`` in a context variable: the request id, reseller id and route template of
  the request being served (or the job being worked on). The HTTP middleware opens one per
  request; code deeper down adds to it with ``bind(reseller_id=...)``. The context is a
  mutable object on purpose: a value bound inside a task that copied the context (Starlette
  runs some handlers that way) is still seen by the middleware's closing log line.
* ``JsonFormatter``: the record, the context, and any ``extra={...}`` fields, as JSON
  (``TextFormatter``: short lines for a terminal, chosen when the log stream is one);
  lines go out through a ``LineHandler`` (``log_writer``), which also takes the
  per-request access lines in batches (``access_log``).
* ``RedactionFilter`` + ``redact``: secrets never reach the output. Fields whose *name* says
  secret (``authorization``, ``api_key``, ``password``, ``codes``, ...) are replaced whole;
  free text is scrubbed of bearer tokens, ``key=value`` secrets, JWTs, supplier key shapes
  and every value registered with ``register_secret`` (the configured supplier credentials
  and encryption keys are registered at start-up). The formatter scrubs its final line
  once more, so a secret in an exception message or a traceback is caught too.

Redaction is a safety net, not a licence: code must still not log codes or keys.
"""

from __future__ import annotations

import contextlib
import datetime
import functools
import json
import logging
import re
import sys
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextvars import ContextVar, Token
from typing import TYPE_CHECKING, Any, TextIO

import orjson
from pydantic import BaseModel, SecretBytes, SecretStr

from gateway.observability.log_writer import FLUSH_SECONDS, LineHandler, LineWriter

if TYPE_CHECKING:
    from gateway.settings import Settings

REDACTED = "[REDACTED]"

#: Field names (case-insensitive, ``-`` and ``_`` alike) whose values are never printed.
SENSITIVE_NAMES = frozenset(
    {
        "authorization",
        "proxy_authorization",
        "cookie",
        "set_cookie",
        "x_api_key",
        "api_key",
        "apikey",
        "api_secret",
        "secret",
        "client_secret",
        "password",
        "passwd",
        "token",
        "access_token",
        "refresh_token",
        "id_token",
        "encryption_key",
        "encryption_keys",
        "signing_secret",
        "webhook_secret",
        "key_hash",
        # delivered goods
        "codes",
        "activation_code",
        "activation_codes",
        "voucher_code",
        "card_number",
        "pin",
        "pin_code",
        "serial",
        "claim_url",
    }
)

_SECRET_WORDS = (
    r"authorization|x-api-key|api[_-]?key|api[_-]?secret|client[_-]?secret|password|passwd|"
    r"secret|access[_-]?token|refresh[_-]?token|token|pin[_-]?code|card[_-]?number|claim[_-]?url"
)
_PATTERNS: list[tuple[re.Pattern[str], str]] = [
    # "Authorization: Bearer abc", "bearer abc"
    (re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]{4,}"), r"\1 " + REDACTED),
    # api_key=..., "password": "...", X-API-Key: ...  (JSON-escaped quotes allowed)
    (
        re.compile(
            r"(?i)((?:\\?[\"'])?\b(?:" + _SECRET_WORDS + r")\b(?:\\?[\"'])?\s*[:=]\s*(?:\\?[\"'])?)"
            r"(?!\[REDACTED\])([^\s\"'\\,&;}\]]+)"
        ),
        r"\1" + REDACTED,
    ),
    # JSON Web Tokens
    (re.compile(r"\beyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*"), REDACTED),
    # supplier and gateway key shapes: pk_live_..., sk_test_..., gk_live_...
    (re.compile(r"\b[a-z]{2,3}_(?:live|test)_[A-Za-z0-9_-]{8,}"), REDACTED),
]

# A cheap test run first on every line: the patterns above cost tens of microseconds per
# line, and almost no line contains anything they could match.
_TRIGGERS = (
    "bearer", "basic", "auth", "key", "secret", "passw", "token", "pin", "card", "claim",
    "eyj", "_live_", "_test_",
)  # fmt: skip

_secrets: dict[str, None] = {}  # insertion-ordered set, bounded below
_secrets_lock = threading.Lock()
_secret_re: re.Pattern[str] | None = None
_MAX_SECRETS = 10_000
_MIN_SECRET_LEN = 6


def register_secret(value: str | bytes | SecretStr | SecretBytes | None) -> None:
    """Never print ``value`` (and its JSON-escaped form) in any log line from now on.

    Values shorter than six characters are ignored: redacting them would mangle ordinary
    words and could not hide anything worth hiding anyway."""
    global _secret_re
    if isinstance(value, SecretStr | SecretBytes):
        value = value.get_secret_value()
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    if not value or len(value) < _MIN_SECRET_LEN:
        return
    forms = {value, json.dumps(value)[1:-1]}
    with _secrets_lock:
        for form in forms:
            _secrets[form] = None
        while len(_secrets) > _MAX_SECRETS:
            _secrets.pop(next(iter(_secrets)))
        ordered = sorted(_secrets, key=len, reverse=True)
        _secret_re = re.compile("|".join(re.escape(s) for s in ordered))


def forget_secrets() -> None:
    """Drop every registered value (tests)."""
    global _secret_re
    with _secrets_lock:
        _secrets.clear()
        _secret_re = None


def register_secrets_in(value: Any, *, _name: str = "") -> None:
    """Register every secret found in a settings tree: ``SecretStr`` values anywhere, and
    plain values under a sensitive name (raw supplier settings arrive as dicts)."""
    if isinstance(value, SecretStr | SecretBytes):
        register_secret(value)
    elif isinstance(value, BaseModel):
        for name in type(value).model_fields:
            register_secrets_in(getattr(value, name), _name=name)
    elif isinstance(value, Mapping):
        for key, item in value.items():
            register_secrets_in(item, _name=str(key))
    elif isinstance(value, list | tuple | set | frozenset):
        for item in value:
            register_secrets_in(item, _name=_name)
    elif isinstance(value, str | bytes) and is_sensitive(_name):
        register_secret(value)


@functools.lru_cache(maxsize=1024)
def is_sensitive(name: str) -> bool:
    """Whether a field called ``name`` holds a secret (its value is never printed)."""
    return name.lower().replace("-", "_") in SENSITIVE_NAMES


def redact(text: str) -> str:
    """``text`` with every known secret shape and registered secret value replaced."""
    pattern = _secret_re
    if pattern is not None:
        text = pattern.sub(REDACTED, text)
    lowered = text.lower()
    for word in _TRIGGERS:
        if word in lowered:
            for regex, replacement in _PATTERNS:
                text = regex.sub(replacement, text)
            break
    return text


def redact_value(value: Any, name: str = "") -> Any:
    """A JSON-ready copy of ``value`` with sensitive fields and secret text removed."""
    if name and is_sensitive(name):
        return REDACTED
    if isinstance(value, SecretStr | SecretBytes):
        return REDACTED
    if isinstance(value, str):
        return redact(value)
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, Mapping):
        return {str(k): redact_value(v, str(k)) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [redact_value(v) for v in value]
    return redact(str(value))


# ------------------------------------------------------------------- context


class LogContext:
    """What every log line of one request (or one job) carries.

    ``state`` is the request's ``scope["state"]`` when there is one: the request id the
    API face settles on (``state["request_id"]``) and the reseller the access guard admits
    (``state["reseller"]``) are read from it at the moment a line is written, so the
    layers that own those values need not know about logging. The HTTP front door's
    subclass also knows the route template once the router has matched (``routed``).

    The defaults are class attributes and an instance stores only what is assigned to it
    (``bind``, or a subclass's constructor): one context is built per HTTP request, and
    each stored attribute costs."""

    request_id: str | None = None
    reseller_id: str | None = None
    route: str | None = None
    extra: dict[str, Any] | None = None
    state: dict[str, Any] | None = None
    #: The request id when the gateway issued it itself (no caller chose it, so there is
    #: nothing in it to redact): the access log skips scrubbing that exact string.
    issued_request_id: str | None = None

    def routed(self) -> str | None:
        """The route template, when the context knows how to find it."""
        return None

    def resolve(self) -> None:
        """Take the request id and reseller from ``state``, and the route, once they
        are known."""
        if self.route is None:
            self.route = self.routed()
        state = self.state
        if state is None:
            return
        rid = state.get("request_id")
        if rid is not None:
            self.request_id = str(rid)
        if self.reseller_id is None:
            reseller = state.get("reseller_id") or getattr(state.get("reseller"), "id", None)
            if reseller is not None:
                self.reseller_id = str(reseller)

    def fields(self) -> dict[str, Any]:
        self.resolve()
        out: dict[str, Any] = {}
        if self.request_id is not None:
            out["request_id"] = self.request_id
        if self.reseller_id is not None:
            out["reseller_id"] = self.reseller_id
        if self.route is not None:
            out["route"] = self.route
        if self.extra:
            out.update(self.extra)
        return out


_CONTEXT: ContextVar[LogContext | None] = ContextVar("gateway_log_context", default=None)


def current_context() -> LogContext | None:
    return _CONTEXT.get()


def current_request_id() -> str | None:
    ctx = _CONTEXT.get()
    return ctx.request_id if ctx is not None else None


def open_context(**fields: Any) -> Token[LogContext | None]:
    """Start a fresh context (one per request or job); undo with ``close_context``."""
    ctx = LogContext()
    _assign(ctx, fields)
    return enter_context(ctx)


#: ``enter_context(ctx)``: make ``ctx`` (built by the caller) the current context; undo
#: with ``close_context(token)``. The context variable's own methods, not wrappers: the
#: front door calls both for every request.
enter_context: Callable[[LogContext], Token[LogContext | None]] = _CONTEXT.set
close_context: Callable[[Token[LogContext | None]], None] = _CONTEXT.reset


@contextlib.contextmanager
def log_context(**fields: Any) -> Iterator[LogContext]:
    """``with log_context(order_id=...):`` for work outside a request (the order worker
    runs each job inside one)."""
    token = open_context(**fields)
    try:
        ctx = _CONTEXT.get()
        assert ctx is not None
        yield ctx
    finally:
        close_context(token)


def bind(**fields: Any) -> None:
    """Add fields to the current context (``bind(reseller_id=r.id)`` after authentication).

    Outside any context this opens one for the rest of the current task."""
    ctx = _CONTEXT.get()
    if ctx is None:
        ctx = LogContext()
        _CONTEXT.set(ctx)
    _assign(ctx, fields)


def _assign(ctx: LogContext, fields: Mapping[str, Any]) -> None:
    for name, value in fields.items():
        if name == "state":
            ctx.state = value
        elif name in ("request_id", "reseller_id", "route"):
            setattr(ctx, name, None if value is None else str(value))
        elif value is None:
            if ctx.extra:
                ctx.extra.pop(name, None)
        elif ctx.extra is None:
            ctx.extra = {name: value}
        else:
            ctx.extra[name] = value


# ------------------------------------------------------------ filter, format

# Attributes every LogRecord has; anything else on a record came from ``extra=``.
_STANDARD = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "taskName"}


class ContextFilter(logging.Filter):
    """Copies the current ``LogContext`` onto each record (fields given in ``extra`` win)."""

    def filter(self, record: logging.LogRecord) -> bool:
        ctx = _CONTEXT.get()
        if ctx is not None:
            for name, value in ctx.fields().items():
                if not hasattr(record, name):
                    setattr(record, name, value)
        return True


class RedactionFilter(logging.Filter):
    """Scrubs the message, blanks fields named like secrets and scrubs nested values,
    before any handler formats the record (other handlers, pytest's too, see the same).
    Plain string fields are left to the formatter's pass over the whole line."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a bad format string must not lose the line
            message = f"{record.msg!r} {record.args!r}"
        record.msg = redact(message)
        record.args = None
        for name, value in list(record.__dict__.items()):
            if name in _STANDARD:
                continue
            if is_sensitive(name):
                setattr(record, name, REDACTED)
            elif not (value is None or isinstance(value, str | bool | int | float)):
                setattr(record, name, redact_value(value, name))
        return True


#: Record attributes left out of every line: uvicorn's ``color_message`` repeats the
#: message with terminal colour codes.
_OMITTED = frozenset({"color_message"})


def dumps(value: Any) -> str:
    """One JSON line's text (orjson: several times faster than ``json.dumps``)."""
    try:
        return orjson.dumps(value, default=str, option=orjson.OPT_NON_STR_KEYS).decode()
    except TypeError:  # an integer beyond 64 bits, say
        return json.dumps(value, ensure_ascii=False, default=str)


class JsonFormatter(logging.Formatter):
    """``{"ts", "level", "logger", "message", ...context, ...extra, "exc"?}`` on one line."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": datetime.datetime.fromtimestamp(record.created, datetime.UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name, value in record.__dict__.items():
            if name in _STANDARD or name in out or name in _OMITTED:
                continue
            if is_sensitive(name):
                out[name] = REDACTED
            elif value is None or isinstance(value, str | bool | int | float):
                out[name] = value  # scrubbed with the whole line below
            else:
                out[name] = redact_value(value, name)
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        elif record.exc_text:
            out["exc"] = record.exc_text
        return redact(dumps(out))


class TextFormatter(logging.Formatter):
    """Short lines for a person at a terminal: local time of day, level, logger, message,
    then the context and extra fields as ``name=value`` (the access log writes its
    request lines in the same shape, ``gateway.observability.access_log``)."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-5s %(name)s: %(message)s", "%H:%M:%S")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        extras = {
            k: v for k, v in record.__dict__.items() if k not in _STANDARD and k not in _OMITTED
        }
        if extras:
            line += " " + " ".join(f"{k}={redact_value(v, k)}" for k, v in extras.items())
        return redact(line)


def make_handler(
    stream: TextIO | None = None,
    *,
    json_lines: bool = True,
    flush_seconds: float = FLUSH_SECONDS,
) -> LineHandler:
    """A handler with the context and redaction filters and the chosen formatter, writing
    through a ``LineWriter`` (the access log batches its lines there)."""
    writer = LineWriter(stream or sys.stderr, flush_seconds=flush_seconds)
    handler = LineHandler(writer, json_lines=json_lines)
    handler.addFilter(ContextFilter())
    handler.addFilter(RedactionFilter())
    handler.setFormatter(JsonFormatter() if json_lines else TextFormatter())
    return handler


_INSTALLED = "_gateway_handler"
#: Loggers that would print one more line per upstream call or per request (with URLs).
QUIET_LOGGERS = ("httpx", "httpcore", "uvicorn.access", "hpack", "asyncio")


def wants_json(stream: TextIO) -> bool:
    """JSON unless ``stream`` is a terminal (a person is reading: short text lines)."""
    try:
        return not stream.isatty()
    except (AttributeError, ValueError):
        return True


def configure_logging(
    level: str | int = "INFO",
    *,
    json_lines: bool | None = None,
    stream: TextIO | None = None,
    secrets_from: Iterable[Any] = (),
    flush_seconds: float = FLUSH_SECONDS,
) -> LineHandler:
    """Install the gateway's handler on the root logger (replacing a previous one).

    Call once per process: the app's start-up (every uvicorn worker), ``gateway worker``,
    the CLI tools. uvicorn is run with ``log_config=None`` so its loggers propagate here.
    ``secrets_from``: settings objects whose secrets are registered for redaction.
    ``json_lines``: JSON or text lines; ``None`` (``log_json`` unset): JSON unless the
    stream is a terminal.    ``flush_seconds``: how long an access line may wait in the buffer
    (``log_flush_seconds``).
    """
    for source in secrets_from:
        register_secrets_in(source)
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, _INSTALLED, False)]:
        old.flush()
        root.removeHandler(old)
    stream = stream or sys.stderr
    if json_lines is None:
        json_lines = wants_json(stream)
    handler = make_handler(stream, json_lines=json_lines, flush_seconds=flush_seconds)
    setattr(handler, _INSTALLED, True)
    root.addHandler(handler)
    root.setLevel(level if isinstance(level, int) else level.upper())
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    for name in ("uvicorn", "uvicorn.error"):
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True
    return handler


def configure_from(settings: Settings) -> LineHandler:
    """``configure_logging`` as every process of the gateway runs it: level, line shape
    and flush interval from its settings (``log_level``, ``log_json``,
    ``log_flush_seconds``), and the settings' secrets registered for redaction."""
    return configure_logging(
        settings.log_level,
        json_lines=settings.log_json,
        secrets_from=[settings],
        flush_seconds=settings.log_flush_seconds,
    )
