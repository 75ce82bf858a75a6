"""Metrics and traces of a SQL store: pool use read at scrape time, a span per statement (when
tracing is on), and the duration and failures of transactions (`SqlDatabase.begin`)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Connection
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.pool import QueuePool

from libs.common import metrics, tracing
from libs.common.errors import Aborted, Unavailable

_SPAN_KEY = "segments_span"


def store_name(label: str) -> str:
    """ "definition" of "the definition store" (the label of error messages)."""
    return label.removeprefix("the ").removesuffix(" store").strip() or label


def _pool_state(engine: AsyncEngine) -> metrics.PoolState:
    pool = engine.sync_engine.pool
    if isinstance(pool, QueuePool):
        return metrics.PoolState(
            size=pool.size(),
            checked_out=pool.checkedout(),
            idle=pool.checkedin(),
            overflow=max(pool.overflow(), 0),
        )
    return metrics.PoolState(size=0, checked_out=0, idle=0, overflow=0)


def observe_engine(owner: Any, engine: AsyncEngine, store: str) -> None:
    """Reports `engine`'s pool under `store` while `owner` lives, and traces its statements."""
    metrics.SQL_POOLS.watch(owner, store, lambda: _pool_state(engine))
    sync = engine.sync_engine
    system = "postgresql" if engine.dialect.name == "postgresql" else "sqlite"

    @event.listens_for(sync, "before_cursor_execute")
    def _before(
        conn: Connection, cursor: Any, statement: str, params: Any, context: Any, many: bool
    ) -> None:
        if not tracing.enabled() or context is None:
            return
        verb = statement.lstrip().split(None, 1)[0].upper() if statement.strip() else "SQL"
        context.__dict__[_SPAN_KEY] = tracing.start_span(
            f"sql {verb}",
            kind=tracing.SpanKind.CLIENT,
            attributes={"db.system": system, "db.statement": statement, "segments.store": store},
        )

    @event.listens_for(sync, "after_cursor_execute")
    def _after(
        conn: Connection, cursor: Any, statement: str, params: Any, context: Any, many: bool
    ) -> None:
        span = context.__dict__.pop(_SPAN_KEY, None) if context is not None else None
        if span is not None:
            span.end()

    @event.listens_for(sync, "handle_error")
    def _error(exception_context: Any) -> None:
        context = exception_context.execution_context
        span = context.__dict__.pop(_SPAN_KEY, None) if context is not None else None
        if span is not None:
            tracing.mark_error(span, exception_context.original_exception)
            span.end()


def forget_engine(owner: Any) -> None:
    metrics.SQL_POOLS.forget(owner)


@asynccontextmanager
async def observed_transaction(store: str) -> AsyncIterator[None]:
    """Times the block as one transaction of `store`, in a span when tracing is on. Failures
    of the store itself (ABORTED: a concurrent writer won; UNAVAILABLE; other driver errors)
    are counted; a domain refusal raised inside the block is not a store failure."""
    started = time.perf_counter()
    try:
        with tracing.span("sql transaction", attributes={"segments.store": store}):
            yield
    except (Aborted, Unavailable, SQLAlchemyError) as exc:
        code = (
            "ABORTED"
            if isinstance(exc, Aborted)
            else "UNAVAILABLE"
            if isinstance(exc, Unavailable)
            else "ERROR"
        )
        metrics.SQL_TRANSACTION_FAILURES.labels(store, code).inc()
        raise
    finally:
        metrics.SQL_TRANSACTION_SECONDS.labels(store).observe(time.perf_counter() - started)
