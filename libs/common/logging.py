"""Structured JSON logs on stderr, with the current call's request id on every line.

`configure_logging()` is called once per process (the CLI does it). Inside a gRPC call the
interceptor binds the request id with `bind_request_id()`; every log line written while that
call runs (in its asyncio task) carries it, and, when tracing is on, the `trace_id` and
`span_id` of the current span (`libs.common.tracing`).
"""

from __future__ import annotations

import logging
import sys
import uuid
from contextvars import ContextVar
from typing import Any, TextIO

import structlog
from opentelemetry import trace
from structlog.typing import FilteringBoundLogger

REQUEST_ID_KEY = "request_id"

_request_id: ContextVar[str] = ContextVar("segments_request_id", default="")


def new_request_id() -> str:
    return uuid.uuid4().hex


def current_request_id() -> str:
    """The request id of the gRPC call being served, or "" outside a call."""
    return _request_id.get()


def bind_request_id(request_id: str) -> None:
    """Make `request_id` the current call's id (for this asyncio task and what it spawns)."""
    _request_id.set(request_id)


def _add_request_id(_: Any, __: str, event_dict: dict[str, Any]) -> dict[str, Any]:
    request_id = _request_id.get()
    if request_id and REQUEST_ID_KEY not in event_dict:
        event_dict[REQUEST_ID_KEY] = request_id
    return event_dict


def _add_trace_ids(_: Any, __: str, event_dict: dict[str, Any]) -> dict[str, Any]:
    context = trace.get_current_span().get_span_context()
    if context.is_valid and "trace_id" not in event_dict:
        event_dict["trace_id"] = format(context.trace_id, "032x")
        event_dict["span_id"] = format(context.span_id, "016x")
    return event_dict


def configure_logging(level: str = "INFO", *, stream: TextIO | None = None) -> None:
    """JSON lines on stderr (or `stream`) for structlog and the standard `logging` module."""
    out = stream if stream is not None else sys.stderr
    numeric = logging.getLevelNamesMapping().get(level.upper())
    if numeric is None:
        raise ValueError(f"unknown log level {level!r}")
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        _add_request_id,
        _add_trace_ids,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    structlog.configure(
        processors=[
            *shared,
            structlog.processors.StackInfoRenderer(),
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.PrintLoggerFactory(file=out),
        cache_logger_on_first_use=False,
    )
    # Libraries that use the standard logging module (grpc, sqlalchemy) end up as JSON too.
    handler = logging.StreamHandler(out)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[*shared, structlog.stdlib.add_logger_name],
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.format_exc_info,
                structlog.processors.JSONRenderer(),
            ],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    # Other libraries are quiet below WARNING unless DEBUG is asked for.
    root.setLevel(logging.DEBUG if numeric <= logging.DEBUG else max(numeric, logging.WARNING))


def get_logger(name: str | None = None) -> FilteringBoundLogger:
    """A structlog logger; `name` shows up as the `component` field."""
    # A lazy proxy: it picks up the configuration in force when it is first used.
    logger: FilteringBoundLogger = (
        structlog.get_logger(component=name) if name else structlog.get_logger()
    )
    return logger
