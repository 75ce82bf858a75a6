"""The access check every Segments server runs (docs/security.md).

For every call except grpc health and server reflection, `AccessInterceptor`:

1. refuses a client address that failed authentication too often (RESOURCE_EXHAUSTED with a
   retry delay; `FailedAuthLimiter`);
2. reads the credential (``authorization: Bearer <api key>``; UNAUTHENTICATED when missing
   or malformed) and looks the method up in the role table; a method missing from it is
   refused (PERMISSION_DENIED);
3. asks the decider whether the key holds the method's role on each project the request
   names (for client-streaming calls, on every message before the service sees it), and
   binds the caller to the call (`libs.common.context`);
4. holds one of the principal's slots for expensive calls (count, stream, snapshot, export;
   `ConcurrencyLimiter`), refusing the call when none is free;
5. writes an audit record of every write, export and key operation (the methods needing
   editor or more), whatever its outcome, refusals included.

It runs inside `ErrorInterceptor`, which maps its refusals to rich statuses and logs them.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Mapping
from contextlib import nullcontext
from typing import Any

import grpc
from google.protobuf.message import Message

from libs.audit.records import AuditRecord, AuditWriter
from libs.common.access import (
    AccessDecider,
    acting_for,
    bearer_credential,
    from_loopback,
    is_internal_credential,
    named_projects,
)
from libs.common.context import Principal, bind_caller
from libs.common.errors import DomainError, InvalidArgument, PermissionDenied, Unauthenticated
from libs.common.interceptors import rewrap_handler, status_code_for
from libs.common.limits import ConcurrencyLimiter, FailedAuthLimiter, client_address
from libs.common.logging import current_request_id
from libs.common.rpc_roles import EXPENSIVE_RPCS, RPC_ROLES, SELF_RPCS, UNSCOPED_RPCS, Role

#: Methods every client may call without a credential.
OPEN_METHOD_PREFIXES = (
    "/grpc.health.v1.Health/",
    "/grpc.reflection.v1alpha.ServerReflection/",
    "/grpc.reflection.v1.ServerReflection/",
)
#: Methods needing at least this role are audited: writes, exports, key operations.
AUDITED_FROM = Role.EDITOR

Context = grpc.aio.ServicerContext[Any, Any]


def _name_in(message: object) -> str:
    if isinstance(message, Message):
        for name in ("name", "parent", "segment"):
            field = message.DESCRIPTOR.fields_by_name.get(name)
            if field is not None and field.type == field.TYPE_STRING and not field.is_repeated:
                value: str = getattr(message, name)
                if value:
                    return value
    return ""


def resource_of(request: object, response: object = None) -> str:
    """The resource a call wrote: the name in its answer when there is one (a created
    segment, a key), else the name, parent or segment its request names (at its top, or in
    one of its messages: an update's resource, an upload's header)."""
    if isinstance(response, Message):
        found = _name_in(response) or _name_in(getattr(response, "api_key", None))
        if found:
            return found
    found = _name_in(request)
    if not found and isinstance(request, Message):
        for field in request.DESCRIPTOR.fields:
            nested = field.type == field.TYPE_MESSAGE and not field.is_repeated
            if nested and request.HasField(field.name):
                found = found or _name_in(getattr(request, field.name))
    return found


class _Call:
    """One call under the access check: its caller once known, and its audit record."""

    def __init__(self, interceptor: AccessInterceptor, method: str, context: Context) -> None:
        self.check = interceptor
        self.method = method
        self.context = context
        self.client = client_address(context.peer() or "")
        self.credential = ""
        self.role: Role | None = None
        self.principal: Principal | None = None
        self.first_request: object = None
        self.projects: tuple[str, ...] = ()

    async def authenticate(self, *, check_key: bool) -> None:
        """Reads the credential and the role the method needs (None: any valid key). The key
        is checked now with `check_key`, for a method missing from the role table, and for an
        audited one (so that its record names the caller even when the call is refused)."""
        limiter = self.check.failures
        if limiter is not None:
            limiter.admit(self.client)
        try:
            credential = bearer_credential(self.context)
        except Unauthenticated:
            self.failed()
            raise
        if not credential and not self.check.auth_disabled:
            self.failed()
            raise Unauthenticated(
                "this call needs an API key: send metadata 'authorization: Bearer <api key>'",
                reason="API_KEY_MISSING",
            )
        if is_internal_credential(credential) and not from_loopback(self.context):
            self.failed()
            raise Unauthenticated("unknown API key", reason="API_KEY_UNKNOWN")
        self.credential = credential
        role = self.check.roles.get(self.method)
        if check_key or role is None or self.audited():
            await self.decide((), None)
        if self.method in self.check.self_rpcs:
            role = None
        elif role is None:
            raise PermissionDenied(
                f"{self.method} has no entry in the role table, so it is refused",
                reason="RPC_NOT_IN_ROLE_TABLE",
                metadata={"method": self.method},
            )
        self.role = role

    def failed(self) -> None:
        if self.check.failures is not None:
            self.check.failures.failed(self.client)

    async def decide(self, projects: tuple[str, ...], role: Role | None) -> None:
        try:
            access = await self.check.decider.check(self.credential, projects, role)
        except Unauthenticated:
            self.failed()
            raise
        self.principal = acting_for(access.principal, self.context)
        bind_caller(self.principal, self.credential)

    def scoped(self) -> bool:
        return self.role is not None and self.method not in self.check.unscoped

    def scoped_by_table(self) -> bool:
        """Whether the method's requests name their project (known before admission)."""
        return self.method not in self.check.unscoped and self.method not in self.check.self_rpcs

    async def admit(self, request: object) -> None:
        """The role on the projects `request` names (on all projects when it names none)."""
        if self.first_request is None:
            self.first_request = request
        projects = named_projects(request) if self.scoped() else ()
        if projects:
            self.projects = projects
        await self.decide(projects, self.role)

    def slot(self) -> Any:
        """One of the principal's expensive-call slots (nothing to hold for other calls)."""
        limiter = self.check.concurrency
        if limiter is None or self.method not in self.check.expensive or self.principal is None:
            return nullcontext()
        return limiter.slot(self.principal.id, current_request_id(), self.method)

    def audited(self) -> bool:
        role = self.check.roles.get(self.method)
        return (
            self.check.audit is not None
            and self.method not in self.check.self_rpcs
            and (role is None or role >= AUDITED_FROM)
        )

    async def record(self, outcome: BaseException | None, response: object = None) -> None:
        if not self.audited() or self.check.audit is None:
            return
        if outcome is None:
            code, message = "OK", ""
        elif isinstance(outcome, DomainError):
            code, message = status_code_for(outcome).name, outcome.message
        elif isinstance(outcome, asyncio.CancelledError | GeneratorExit):
            code, message = "CANCELLED", "the call ended before its answer"
        else:
            code, message = "INTERNAL", "internal error"
        principal = self.principal
        if not self.projects and self.scoped_by_table():
            try:
                self.projects = named_projects(self.first_request)
            except InvalidArgument:
                self.projects = ()
        await self.check.audit.write(
            AuditRecord(
                principal=principal.display if principal else "",
                key_id=principal.key_id if principal else "",
                method=self.method,
                project_id=self.projects[0] if self.projects else "",
                resource=resource_of(self.first_request, response),
                outcome=code,
                message=message,
                request_id=current_request_id(),
                client=self.client,
            )
        )


class AccessInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[type-arg]
    """Authenticates, authorises, limits and audits every call (see the module doc).

    `auth_disabled` (development, loopback only): a call without a credential is passed to the
    decider with an empty one, which treats it as an admin.
    """

    def __init__(
        self,
        decider: AccessDecider,
        *,
        roles: Mapping[str, Role] = RPC_ROLES,
        unscoped: Collection[str] = UNSCOPED_RPCS,
        self_rpcs: Collection[str] = SELF_RPCS,
        expensive: Collection[str] = EXPENSIVE_RPCS,
        auth_disabled: bool = False,
        failures: FailedAuthLimiter | None = None,
        concurrency: ConcurrencyLimiter | None = None,
        audit: AuditWriter | None = None,
    ) -> None:
        self.decider = decider
        self.roles = roles
        self.unscoped = frozenset(unscoped)
        self.self_rpcs = frozenset(self_rpcs)
        self.expensive = frozenset(expensive)
        self.auth_disabled = auth_disabled
        self.failures = failures
        self.concurrency = concurrency
        self.audit = audit

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],  # type: ignore[type-arg]
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:  # type: ignore[type-arg]
        handler = await continuation(handler_call_details)
        method = handler_call_details.method
        if handler is None or method.startswith(OPEN_METHOD_PREFIXES):
            return handler

        def wrap(kind: str, behavior: Callable[..., Any]) -> Callable[..., Any]:
            streamed_request = kind.startswith("stream_")
            if kind.endswith("_unary"):
                return self._answered(method, behavior, streamed_request)
            return self._streamed(method, behavior, streamed_request)

        return rewrap_handler(handler, wrap)

    async def _open(self, call: _Call, received: Any, streamed_request: bool) -> Any:
        """Admits the call; what the handler is given: the request, or the request stream
        with each message admitted before the handler sees it."""
        if streamed_request:
            await call.authenticate(check_key=True)  # refused before reading a message
            return self._checked(call, received)
        call.first_request = received
        await call.authenticate(check_key=False)
        await call.admit(received)
        return received

    def _checked(self, call: _Call, requests: Any) -> AsyncIterator[Any]:
        """The request stream, each message admitted before the handler sees it. A message
        naming no project continues under the projects admitted before it; a first message
        naming none needs the role on all projects."""

        async def messages() -> AsyncIterator[Any]:
            admitted = False
            async for message in requests:
                if not admitted or (call.scoped() and named_projects(message)):
                    await call.admit(message)
                    admitted = True
                yield message

        return messages()

    def _answered(
        self, method: str, behavior: Callable[..., Any], streamed_request: bool
    ) -> Callable[..., Any]:
        """A handler with one response, around `behavior`."""

        async def handler(received: Any, context: Context) -> Any:
            call = _Call(self, method, context)
            try:
                argument = await self._open(call, received, streamed_request)
                with call.slot():
                    result = behavior(argument, context)
                    response = await result if isinstance(result, Awaitable) else result
            except BaseException as exc:
                await call.record(exc)
                raise
            await call.record(None, response)
            return response

        return handler

    def _streamed(
        self, method: str, behavior: Callable[..., Any], streamed_request: bool
    ) -> Callable[..., Any]:
        """A handler streaming its responses, around `behavior`."""

        async def handler(received: Any, context: Context) -> AsyncIterator[Any]:
            call = _Call(self, method, context)
            try:
                argument = await self._open(call, received, streamed_request)
                with call.slot():
                    async for response in _responses(behavior(argument, context)):
                        yield response
            except BaseException as exc:
                await call.record(exc)
                raise
            await call.record(None)

        return handler


async def _responses(result: Any) -> AsyncIterator[Any]:
    """The responses of a server-streaming handler, whether it is an async generator, a
    coroutine returning an iterator, or one that writes with `context.write()`."""
    if isinstance(result, Awaitable):
        result = await result
    if result is None:
        return
    if hasattr(result, "__aiter__"):
        async for response in result:
            yield response
    else:
        for response in result:
            yield response
