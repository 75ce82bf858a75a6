"""Who is calling and which request this is, from inside a gRPC handler."""

from __future__ import annotations

from typing import Any

import grpc

from libs.common.logging import current_request_id

USER_EMAIL_KEY = "x-user-email"
REQUEST_ID_KEY = "x-request-id"


def metadata_value(context: grpc.aio.ServicerContext[Any, Any], key: str) -> str:
    """The first value of invocation metadata `key` (lower case), or "" when absent."""
    for item in context.invocation_metadata() or ():
        name, value = item[0], item[1]
        if name == key:
            return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
    return ""


def caller_email(context: grpc.aio.ServicerContext[Any, Any]) -> str:
    """The caller's e-mail from metadata "x-user-email" (trimmed), or "" when absent."""
    return metadata_value(context, USER_EMAIL_KEY).strip()


def request_id() -> str:
    """The id of the call being served (from "x-request-id" or generated), "" outside a call."""
    return current_request_id()
