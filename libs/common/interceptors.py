"""The server interceptor every Segments service runs behind.

For each call (unary and streaming alike) it:

* takes the request id from metadata ``x-request-id`` (or generates one), binds it to the
  call's log lines and returns it in the trailing metadata;
* turns a `DomainError` into its gRPC status code with a ``google.rpc.Status`` in the
  ``grpc-status-details-bin`` trailer (`libs.common.rich_status`): an ``ErrorInfo``, plus
  ``BadRequest`` field violations for `InvalidArgument` and ``PreconditionFailure``
  violations for `FailedPrecondition`, and a ``RetryInfo`` for `ResourceExhausted` and
  `Unavailable` with a retry delay;
* turns any other exception into INTERNAL with a generic message (the traceback goes to the
  log, never to the caller);
* logs the call once when it ends: method, status code, duration_ms, and the authenticated
  caller (`caller`, `key`: its API key's id) once the access check has admitted it (server
  reflection at debug level);
* answers a request message that cannot be decoded (corrupt wire bytes, invalid UTF-8 in a
  string, nesting deeper than the decoder allows) with INVALID_ARGUMENT like any other bad
  request. grpc decodes a message before any interceptor runs, so the handler's request
  deserializer is wrapped: it hands an `Undecodable` to the call instead of raising, and the
  call (or the request stream, at that message) fails with `REQUEST_UNDECODABLE`
  (`libs.common.decoding`).
"""

from __future__ import annotations

import inspect
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, NoReturn

import google.rpc.code_pb2 as code_pb2
import google.rpc.error_details_pb2 as error_details_pb2
import google.rpc.status_pb2 as status_pb2
import grpc

from libs.common import errors
from libs.common.decoding import checked, tolerant_deserializer
from libs.common.rich_status import pack, rich_status, status_code_for

__all__ = [
    "INTERNAL_MESSAGE",
    "STATUS_DETAILS_KEY",
    "ErrorInterceptor",
    "code_of",
    "rewrap_handler",
    "rich_status",
    "server_interceptors",
    "status_code_for",
]
from libs.common.context import REQUEST_ID_KEY, current_principal, metadata_value
from libs.common.logging import bind_request_id, get_logger, new_request_id

STATUS_DETAILS_KEY = "grpc-status-details-bin"
INTERNAL_MESSAGE = "internal error; quote the request id when reporting it"
_MAX_REQUEST_ID_LENGTH = 128
#: Methods whose calls are logged at debug level when they end well (or are cancelled, as a
#: reflection stream is when its client has read enough): server reflection.
QUIET_PREFIXES = ("/grpc.reflection.",)
_QUIET_CODES = (grpc.StatusCode.OK, grpc.StatusCode.CANCELLED)

_log = get_logger("segments.rpc")

Context = grpc.aio.ServicerContext[Any, Any]


class _Call:
    """Book-keeping of one call: request id, start time, final status, logging."""

    def __init__(self, method: str, context: Context) -> None:
        self.method = method
        self.context = context
        supplied = metadata_value(context, REQUEST_ID_KEY).strip()
        valid = supplied and len(supplied) <= _MAX_REQUEST_ID_LENGTH and supplied.isprintable()
        self.request_id = supplied if valid else new_request_id()
        self.started = time.perf_counter()
        self.code = grpc.StatusCode.OK
        bind_request_id(self.request_id)
        context.set_trailing_metadata(((REQUEST_ID_KEY, self.request_id),))

    def _trailers(self, extra: tuple[tuple[str, str | bytes], ...] = ()) -> tuple[Any, ...]:
        own = tuple(
            (k, v) for k, v in (self.context.trailing_metadata() or ()) if k != REQUEST_ID_KEY
        )
        return (*own, *extra, (REQUEST_ID_KEY, self.request_id))

    def succeeded(self) -> None:
        self.context.set_trailing_metadata(self._trailers())
        code = code_of(self.context)
        if code is not None:
            self.code = code

    async def fail(self, exc: BaseException) -> NoReturn:
        """Ends the call with the status `exc` stands for. Always raises."""
        if isinstance(exc, grpc.aio.AbortError):
            # The handler aborted by itself: keep its status, add the request id.
            self.code = code_of(self.context) or grpc.StatusCode.UNKNOWN
            self.context.set_trailing_metadata(self._trailers())
            raise exc
        if isinstance(exc, errors.DomainError):
            status = rich_status(exc)
            self.code = status_code_for(exc)
            message = status.message
        elif isinstance(exc, NotImplementedError):
            # A generated servicer base method that nobody overrode.
            self.code = grpc.StatusCode.UNIMPLEMENTED
            message = f"{self.method} is not implemented"
            status = status_pb2.Status(code=code_pb2.UNIMPLEMENTED, message=message)
        else:
            _log.error("rpc_unhandled_exception", method=self.method, exc_info=exc)
            self.code = grpc.StatusCode.INTERNAL
            message = INTERNAL_MESSAGE
            status = status_pb2.Status(code=code_pb2.INTERNAL, message=message)
            status.details.append(
                pack(
                    error_details_pb2.ErrorInfo(
                        reason="INTERNAL",
                        domain=errors.ERROR_DOMAIN,
                        metadata={"request_id": self.request_id},
                    )
                )
            )
        trailers = self._trailers(((STATUS_DETAILS_KEY, status.SerializeToString()),))
        await self.context.abort(self.code, message, trailing_metadata=trailers)
        raise AssertionError("unreachable: abort raises")  # pragma: no cover

    def cancelled(self) -> None:
        remaining = _time_remaining(self.context)
        expired = remaining is not None and remaining <= 0
        self.code = grpc.StatusCode.DEADLINE_EXCEEDED if expired else grpc.StatusCode.CANCELLED

    def log(self) -> None:
        duration_ms = round((time.perf_counter() - self.started) * 1000, 3)
        level = "info" if self.code is grpc.StatusCode.OK else "warning"
        if self.code is grpc.StatusCode.INTERNAL or self.code is grpc.StatusCode.UNKNOWN:
            level = "error"
        elif self.method.startswith(QUIET_PREFIXES) and self.code in _QUIET_CODES:
            level = "debug"  # tools listing the services, not requests of the product
        principal = current_principal()
        fields = {"caller": principal.display, "key": principal.key_id} if principal else {}
        getattr(_log, level)(
            "rpc",
            method=self.method,
            code=self.code.name,
            duration_ms=duration_ms,
            **fields,
        )


def code_of(context: Context) -> grpc.StatusCode | None:
    """The status a handler set on its call so far (None: none yet)."""
    try:
        code: Any = context.code()
    except (AttributeError, NotImplementedError):  # pragma: no cover - older grpc
        return None
    if isinstance(code, grpc.StatusCode):
        return code
    for candidate in grpc.StatusCode:
        if candidate.value[0] == code:
            return candidate
    return None


def _time_remaining(context: Context) -> float | None:
    try:
        remaining = context.time_remaining()
    except Exception:  # pragma: no cover - defensive: context already finished
        return None
    return remaining


def _wrap_unary_response(method: str, behavior: Callable[..., Any]) -> Callable[..., Any]:
    async def handler(request_or_iterator: Any, context: Context) -> Any:
        call = _Call(method, context)
        try:
            result = behavior(checked(request_or_iterator), context)
            if inspect.isawaitable(result):
                result = await result
            call.succeeded()
            return result
        except BaseException as exc:
            if isinstance(exc, Exception):
                await call.fail(exc)
            call.cancelled()
            raise
        finally:
            call.log()

    return handler


def _wrap_stream_response(method: str, behavior: Callable[..., Any]) -> Callable[..., Any]:
    if inspect.isasyncgenfunction(behavior):

        async def generator(request_or_iterator: Any, context: Context) -> AsyncIterator[Any]:
            call = _Call(method, context)
            try:
                async for response in behavior(checked(request_or_iterator), context):
                    yield response
                call.succeeded()
            except BaseException as exc:
                if isinstance(exc, Exception):
                    await call.fail(exc)
                call.cancelled()
                raise
            finally:
                call.log()

        return generator

    async def writer(request_or_iterator: Any, context: Context) -> None:
        # The handler writes with context.write() (or returns an iterator of responses).
        call = _Call(method, context)
        try:
            result = behavior(checked(request_or_iterator), context)
            if inspect.isawaitable(result):
                result = await result
            if hasattr(result, "__aiter__"):
                async for response in result:
                    await context.write(response)
            elif result is not None:
                for response in result:
                    await context.write(response)
            call.succeeded()
        except BaseException as exc:
            if isinstance(exc, Exception):
                await call.fail(exc)
            call.cancelled()
            raise
        finally:
            call.log()

    return writer


_HANDLER_FACTORIES: dict[str, Callable[..., Any]] = {
    "unary_unary": grpc.unary_unary_rpc_method_handler,
    "unary_stream": grpc.unary_stream_rpc_method_handler,
    "stream_unary": grpc.stream_unary_rpc_method_handler,
    "stream_stream": grpc.stream_stream_rpc_method_handler,
}


def rewrap_handler(
    handler: grpc.RpcMethodHandler,  # type: ignore[type-arg]
    wrap: Callable[[str, Callable[..., Any]], Callable[..., Any]],
    *,
    tolerant: bool = False,
) -> grpc.RpcMethodHandler:  # type: ignore[type-arg]
    """`handler` with its behaviour replaced by `wrap(kind, behaviour)`, where kind is
    "unary_unary", "unary_stream", "stream_unary" or "stream_stream"; with `tolerant`, its
    request deserializer hands on an `Undecodable` instead of raising."""
    for kind, factory in _HANDLER_FACTORIES.items():
        behavior = getattr(handler, kind)
        if behavior is not None:
            deserializer = handler.request_deserializer
            rewrapped: grpc.RpcMethodHandler = factory(  # type: ignore[type-arg]
                wrap(kind, behavior),
                request_deserializer=tolerant_deserializer(deserializer)
                if tolerant
                else deserializer,
                response_serializer=handler.response_serializer,
            )
            return rewrapped
    return handler  # pragma: no cover - grpc has no other kind


class ErrorInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[type-arg]
    """Request id, error mapping and one log line per call, for every kind of handler."""

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],  # type: ignore[type-arg]
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:  # type: ignore[type-arg]
        handler = await continuation(handler_call_details)
        if handler is None:
            return handler
        method = handler_call_details.method

        def wrap(kind: str, behavior: Callable[..., Any]) -> Callable[..., Any]:
            if kind.endswith("_unary"):
                return _wrap_unary_response(method, behavior)
            return _wrap_stream_response(method, behavior)

        return rewrap_handler(handler, wrap, tolerant=True)


def server_interceptors(
    *inner: grpc.aio.ServerInterceptor,  # type: ignore[type-arg]
) -> list[grpc.aio.ServerInterceptor]:  # type: ignore[type-arg]
    """The interceptors of every Segments server, outermost first: this one, then `inner`
    (the access check), whose errors it maps and logs."""
    return [ErrorInterceptor(), *inner]
