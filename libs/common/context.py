"""Who is calling and which request this is, from inside a gRPC handler.

The access check (`libs.common.access`) authenticates every call and binds its principal
here before the handler runs; `caller_email()` is the one place that says who did something,
for every record that keeps it (segment creator and updater, export creator, audit).
"""

from __future__ import annotations

from contextvars import ContextVar
from typing import Any

import grpc

from libs.common.logging import current_request_id
from libs.common.principal import Principal, PrincipalKind

USER_EMAIL_KEY = "x-user-email"
REQUEST_ID_KEY = "x-request-id"
AUTHORIZATION_KEY = "authorization"

__all__ = [
    "AUTHORIZATION_KEY",
    "REQUEST_ID_KEY",
    "USER_EMAIL_KEY",
    "Principal",
    "PrincipalKind",
    "bind_caller",
    "caller_email",
    "current_credential",
    "current_principal",
    "metadata_value",
    "request_id",
]


_principal: ContextVar[Principal | None] = ContextVar("segments_principal", default=None)
_credential: ContextVar[str] = ContextVar("segments_credential", default="")


def bind_caller(principal: Principal, credential: str) -> None:
    """Makes `principal` (holding `credential`) the current call's caller. Called by the
    access check only."""
    _principal.set(principal)
    _credential.set(credential)


def current_principal() -> Principal | None:
    """The authenticated caller of the call being served; None outside a call."""
    return _principal.get()


def current_credential() -> str:
    """The credential the current call was authenticated with ("" outside a call): passed on
    to peers so that they decide with the caller's own rights."""
    return _credential.get()


def metadata_value(context: grpc.aio.ServicerContext[Any, Any], key: str) -> str:
    """The first value of invocation metadata `key` (lower case), or "" when absent."""
    for item in context.invocation_metadata() or ():
        name, value = item[0], item[1]
        if name == key:
            return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
    return ""


def caller_email(context: grpc.aio.ServicerContext[Any, Any] | None = None) -> str:
    """Who is calling, as records keep it: the authenticated principal's e-mail (a person) or
    name (a service), or "person via service" when a service acts for a person; "" outside an
    authenticated call. `context` is accepted for older call sites and not needed."""
    principal = _principal.get()
    return principal.display if principal is not None else ""


def request_id() -> str:
    """The id of the call being served (from "x-request-id" or generated), "" outside a call."""
    return current_request_id()
