"""The gRPC side of metrics and traces.

* `TelemetryInterceptor`, the outermost interceptor of every server: for each call it counts
  the `grpc_server_*` metrics (started, handled by code, handling seconds, messages received
  and sent) and, when tracing is on, runs the call inside a SERVER span whose parent is the
  caller's `traceparent`; the span carries the request id and the status code.
* `peer_interceptors()`: the client interceptors of peer channels (`libs.common.peers`): a
  CLIENT span per call, its context passed on in `traceparent`. They do nothing while tracing
  is off.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc
from prometheus_client import Counter

from libs.common import metrics, tracing
from libs.common.interceptors import code_of, rewrap_handler
from libs.common.logging import current_request_id

Context = grpc.aio.ServicerContext[Any, Any]

_KINDS = {
    "unary_unary": "unary",
    "unary_stream": "server_stream",
    "stream_unary": "client_stream",
    "stream_stream": "bidi_stream",
}
#: Services whose calls are counted but not traced (probes would flood the traces).
_UNTRACED_PREFIXES = ("/grpc.health.", "/grpc.reflection.")


def split_method(method: str) -> tuple[str, str]:
    """("segments.v1.SegmentEvaluatorService", "CountSegment") of a full method path."""
    service, _, name = method.lstrip("/").rpartition("/")
    return service or "unknown", name


class _Observed:
    """Metrics and the span of one call."""

    def __init__(self, method: str, kind: str, context: Context) -> None:
        service, name = split_method(method)
        self.labels = (_KINDS[kind], service, name)
        self.context = context
        self.started = time.perf_counter()
        self._received: Counter | None = None
        self._sent: Counter | None = None
        metrics.RPC_STARTED.labels(*self.labels).inc()
        self.span: tracing.Span | None = None
        if tracing.enabled() and not method.startswith(_UNTRACED_PREFIXES):
            self.span = tracing.start_span(
                f"{service}/{name}",
                kind=tracing.SpanKind.SERVER,
                parent=tracing.extract_parent(context.invocation_metadata()),
                attributes={"rpc.system": "grpc", "rpc.service": service, "rpc.method": name},
            )

    def received(self) -> None:
        if self._received is None:  # the labelled counter looked up once per call
            self._received = metrics.RPC_MSG_RECEIVED.labels(*self.labels)
        self._received.inc()

    def sent(self) -> None:
        if self._sent is None:
            self._sent = metrics.RPC_MSG_SENT.labels(*self.labels)
        self._sent.inc()

    def finish(self, error: BaseException | None) -> None:
        if error is None:
            code = code_of(self.context) or grpc.StatusCode.OK
        elif isinstance(error, asyncio.CancelledError):
            remaining = self.context.time_remaining()
            expired = remaining is not None and remaining <= 0
            code = grpc.StatusCode.DEADLINE_EXCEEDED if expired else grpc.StatusCode.CANCELLED
        else:
            code = code_of(self.context) or grpc.StatusCode.UNKNOWN
        metrics.RPC_HANDLED.labels(*self.labels, code.name).inc()
        metrics.RPC_HANDLING_SECONDS.labels(*self.labels).observe(
            time.perf_counter() - self.started
        )
        if self.span is not None:
            self.span.set_attribute("rpc.grpc.status_code", code.value[0])
            request_id = current_request_id()
            if request_id:
                self.span.set_attribute("segments.request_id", request_id)
            if code is not grpc.StatusCode.OK:
                tracing.mark_error(self.span, code.name)
            self.span.end()


def _counted(observed: _Observed, requests: Any) -> Any:
    if not hasattr(requests, "__aiter__"):
        observed.received()
        return requests

    async def each() -> AsyncIterator[Any]:
        async for request in requests:
            observed.received()
            yield request

    return each()


def _wrap(method: str, kind: str, behavior: Callable[..., Any]) -> Callable[..., Any]:
    if inspect.isasyncgenfunction(behavior):

        async def generator(request: Any, context: Context) -> AsyncIterator[Any]:
            observed = _Observed(method, kind, context)
            error: BaseException | None = None
            try:
                with tracing.activated(observed.span):
                    async for response in behavior(_counted(observed, request), context):
                        observed.sent()
                        yield response
            except BaseException as exc:
                error = exc
                raise
            finally:
                observed.finish(error)

        return generator

    async def handler(request: Any, context: Context) -> Any:
        observed = _Observed(method, kind, context)
        error: BaseException | None = None
        try:
            with tracing.activated(observed.span):
                result = behavior(_counted(observed, request), context)
                if inspect.isawaitable(result):
                    result = await result
            if kind.endswith("_unary"):
                observed.sent()
            return result
        except BaseException as exc:
            error = exc
            raise
        finally:
            observed.finish(error)

    return handler


class TelemetryInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[type-arg]
    """Counts and traces every call; the outermost interceptor of every server."""

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],  # type: ignore[type-arg]
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:  # type: ignore[type-arg]
        handler = await continuation(handler_call_details)
        if handler is None:
            return handler
        method = handler_call_details.method
        return rewrap_handler(handler, lambda kind, behavior: _wrap(method, kind, behavior))


# --- peer calls -------------------------------------------------------------------------------

_finishing: set[asyncio.Task[None]] = set()


def _client_details(details: Any) -> tuple[Any, tracing.Span | None]:
    """`details` with `traceparent` added, and the CLIENT span of the call (None when off)."""
    if not tracing.enabled():
        return details, None
    method = details.method.decode() if isinstance(details.method, bytes) else details.method
    service, name = split_method(method)
    span = tracing.start_span(
        f"{service}/{name}",
        kind=tracing.SpanKind.CLIENT,
        attributes={"rpc.system": "grpc", "rpc.service": service, "rpc.method": name},
    )
    metadata = grpc.aio.Metadata(*(details.metadata or ()))
    with tracing.activated(span):
        for key, value in tracing.inject():
            metadata.add(key, value)
    rewritten = grpc.aio.ClientCallDetails(
        details.method, details.timeout, metadata, details.credentials, details.wait_for_ready
    )
    return rewritten, span


def _end_when_done(call: Any, span: tracing.Span | None) -> Any:
    if span is None:
        return call

    async def finish() -> None:
        try:
            code = await call.code()
        except BaseException:
            code = grpc.StatusCode.CANCELLED
        span.set_attribute("rpc.grpc.status_code", code.value[0])
        if code is not grpc.StatusCode.OK:
            tracing.mark_error(span, code.name)
        span.end()

    def done(_: Any) -> None:
        task = asyncio.ensure_future(finish())
        _finishing.add(task)
        task.add_done_callback(_finishing.discard)

    call.add_done_callback(done)
    return call


class _UnaryUnary(grpc.aio.UnaryUnaryClientInterceptor):  # type: ignore[type-arg]
    async def intercept_unary_unary(self, continuation: Any, details: Any, request: Any) -> Any:
        details, span = _client_details(details)
        return _end_when_done(await continuation(details, request), span)


class _UnaryStream(grpc.aio.UnaryStreamClientInterceptor):  # type: ignore[type-arg]
    async def intercept_unary_stream(self, continuation: Any, details: Any, request: Any) -> Any:
        details, span = _client_details(details)
        return _end_when_done(await continuation(details, request), span)


class _StreamUnary(grpc.aio.StreamUnaryClientInterceptor):  # type: ignore[type-arg]
    async def intercept_stream_unary(self, continuation: Any, details: Any, requests: Any) -> Any:
        details, span = _client_details(details)
        return _end_when_done(await continuation(details, requests), span)


class _StreamStream(grpc.aio.StreamStreamClientInterceptor):  # type: ignore[type-arg]
    async def intercept_stream_stream(self, continuation: Any, details: Any, requests: Any) -> Any:
        details, span = _client_details(details)
        return _end_when_done(await continuation(details, requests), span)


def peer_interceptors() -> list[Any]:
    """One client interceptor per kind of call (grpc files each under one kind only)."""
    return [_UnaryUnary(), _UnaryStream(), _StreamUnary(), _StreamStream()]
