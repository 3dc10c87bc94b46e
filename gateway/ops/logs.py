"""Log lines: one per event, plain text (``2026-12-03T10:00:00Z INFO gateway: ...``) or
JSON (``log.format: json``, env ``LOG_FORMAT``), at ``log.level`` (env ``LOG_LEVEL``).

Every line goes through the standard library's logging, whoever wrote it: the gateway's
modules (``logging.getLogger(__name__)``), aiohttp, arq, and the structured lines written
with structlog (:func:`get_logger`: the access log), whose key-value pairs become fields.
:func:`configure` puts one handler on the root logger that renders them all alike, with
what is bound in the current context (:func:`bound`: the request ID of the HTTP request or
of the job under way) and secrets redacted (:mod:`gateway.ops.logsafe`).

A request's ID reaches the jobs it queues: the dispatchers read :func:`request_id` when
they queue a job and hand it to the job, which binds it again (:func:`bound`).
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Literal, TextIO

import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

from gateway import __version__
from gateway.ops import logsafe

__all__ = ["bound", "configure", "get_logger", "request_id", "starting"]

Format = Literal["plain", "json"]

# What every LogRecord has: the rest of its attributes are a line's own fields.
_RECORD_FIELDS = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}

structlog.configure(
    processors=[
        structlog.stdlib.filter_by_level,
        structlog.stdlib.PositionalArgumentsFormatter(),
        structlog.stdlib.render_to_log_kwargs,
    ],
    logger_factory=structlog.stdlib.LoggerFactory(),
    wrapper_class=structlog.stdlib.BoundLogger,
    cache_logger_on_first_use=True,
)
"""structlog's loggers hand their events to the standard library's (the event its message,
the pairs its ``extra``), so that one handler renders every line, and tests see them."""


def get_logger(name: str) -> structlog.stdlib.BoundLogger:
    """A logger whose keyword arguments become fields of the line."""
    logger: structlog.stdlib.BoundLogger = structlog.stdlib.get_logger(name)
    return logger


def request_id() -> str | None:
    """The request ID bound in this context (an HTTP request's, or a job's), if any."""
    value = structlog.contextvars.get_contextvars().get("request_id")
    return value if isinstance(value, str) else None


@contextmanager
def bound(**fields: Any) -> Iterator[None]:
    """``fields`` on every line logged in this context (this task, and the tasks it
    starts) for the ``with`` block; a None value is not bound."""
    present = {k: v for k, v in fields.items() if v is not None}
    with structlog.contextvars.bound_contextvars(**present):
        yield


def _record_fields(_: WrappedLogger, __: str, event: EventDict) -> EventDict:
    """A record's ``extra`` (a structlog line's pairs) as fields, and its traceback as
    :class:`~gateway.ops.logsafe.RedactSecrets` left it (secrets redacted)."""
    record: logging.LogRecord | None = event.get("_record")
    if record is None:
        return event
    for key, value in record.__dict__.items():
        if key not in _RECORD_FIELDS and not key.startswith("_") and key not in event:
            event[key] = value
    if record.exc_text:
        event.pop("exc_info", None)
        event["exception"] = record.exc_text
    return event


def _redact(_: WrappedLogger, __: str, event: EventDict) -> EventDict:
    for key, value in event.items():
        if isinstance(value, str) and not key.startswith("_"):
            event[key] = logsafe.redact(value)
    return event


def _plain(_: WrappedLogger, __: str, event: EventDict) -> str:
    """``time LEVEL logger: event key=value ...``, then the traceback's lines, if any."""
    head = (
        f"{event.pop('timestamp', '')} {str(event.pop('level', '')).upper()} "
        f"{event.pop('logger', '')}: {event.pop('event', '')}"
    )
    exception = event.pop("exception", None)
    pairs = "".join(f" {key}={value}" for key, value in event.items())
    return head + pairs + (f"\n{exception}" if exception else "")


def _formatter(format: Format) -> structlog.stdlib.ProcessorFormatter:
    renderer: Processor = structlog.processors.JSONRenderer() if format == "json" else _plain
    return structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[
            _record_fields,
            structlog.contextvars.merge_contextvars,
            structlog.stdlib.add_log_level,
            structlog.stdlib.add_logger_name,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
        ],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            _redact,
            renderer,
        ],
    )


def configure(
    *, level: str = "INFO", format: Format = "plain", stream: TextIO | None = None
) -> None:
    """Send every log line to ``stream`` (stderr), rendered in ``format``, from ``level`` up.

    Replaces the root logger's handlers: call once, at a long-running command's start.
    """
    logsafe.install()  # every record, aiohttp's too, without tokens or Authorization values
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(_formatter(format))
    root = logging.getLogger()
    for old in root.handlers[:]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    logging.captureWarnings(True)  # a library's warning is a line like the others
    logging.getLogger("tortoise").setLevel(logging.WARNING)
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)  # ours: gateway.access
    if root.level > logging.DEBUG:
        # arq logs every job and a health line every 10 s; the gateway logs what matters.
        logging.getLogger("arq").setLevel(logging.WARNING)


def starting(what: str, **fields: Any) -> None:
    """The first line of a long-running command: what starts, and which version."""
    get_logger("gateway").info(f"starting {what}", version=__version__, **fields)
