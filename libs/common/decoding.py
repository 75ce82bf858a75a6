"""Request messages that cannot be decoded.

grpc decodes a request message before any interceptor runs, and a deserializer that raises
ends the call UNKNOWN with the exception's class in the message, without a log line. So the
error interceptor wraps every handler's request deserializer (`tolerant_deserializer`): it
hands the call an `Undecodable` instead of raising, and the call (or the request stream, at
that message) fails with INVALID_ARGUMENT, reason ``REQUEST_UNDECODABLE`` (`checked`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

from libs.common import errors


class Undecodable:
    """What the wrapped deserializer hands on for a message it could not decode."""

    __slots__ = ("error",)

    def __init__(self, error: Exception) -> None:
        self.error = error


def undecodable_error(found: Undecodable) -> errors.InvalidArgument:
    detail = str(found.error).strip() or type(found.error).__name__
    return errors.InvalidArgument(
        "the request message cannot be decoded (corrupt wire bytes, a string that is not "
        f"UTF-8, or nesting deeper than 100 levels): {detail}",
        reason="REQUEST_UNDECODABLE",
    )


def tolerant_deserializer(
    deserializer: Callable[[bytes], Any] | None,
) -> Callable[[bytes], Any] | None:
    """`deserializer` returning an `Undecodable` where it would raise."""
    if deserializer is None or getattr(deserializer, "tolerant", False):
        return deserializer

    def deserialize(data: bytes) -> Any:
        try:
            return deserializer(data)
        except Exception as exc:
            return Undecodable(exc)

    deserialize.tolerant = True  # type: ignore[attr-defined]
    return deserialize


def _decoded(request: Any) -> Any:
    if isinstance(request, Undecodable):
        raise undecodable_error(request)
    return request


async def _decoded_stream(requests: AsyncIterator[Any]) -> AsyncIterator[Any]:
    async for request in requests:
        yield _decoded(request)


def checked(request_or_iterator: Any) -> Any:
    """The request (raising for an undecodable one), or the request stream checked message by
    message."""
    if hasattr(request_or_iterator, "__aiter__"):
        return _decoded_stream(request_or_iterator)
    return _decoded(request_or_iterator)
