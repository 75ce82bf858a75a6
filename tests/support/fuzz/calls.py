"""Sending fuzz cases and judging the answers."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass
from typing import Any

import grpc
from google.protobuf.descriptor import MethodDescriptor

from libs.common.status import call_status

from .messages import FORBIDDEN, STREAM_IDLE_SECONDS, TRANSPORT_CODES, method_path
from .strategies import Case


def _identity(data: bytes) -> bytes:
    return data


@dataclass(frozen=True)
class Outcome:
    code: grpc.StatusCode
    details: str
    error_info: bool


async def _messages(parts: tuple[bytes, ...]) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


async def _drain(call: Any, idle_seconds: float, limit: int) -> None:
    """Reads a response stream until it ends, `limit` messages, or `idle_seconds` without one
    (a stream that waits for news), then cancels it."""
    try:
        for _ in range(limit):
            message = await asyncio.wait_for(call.read(), idle_seconds)
            if message is grpc.aio.EOF:  # type: ignore[attr-defined]
                return
    except TimeoutError:
        pass
    call.cancel()


async def invoke(
    channel: grpc.aio.Channel, method: MethodDescriptor, case: Case, deadline: float = 20.0
) -> Outcome:
    """Sends `case` to `method` and says how it ended."""
    path = method_path(method)
    try:
        if method.client_streaming and method.server_streaming:
            call: Any = channel.stream_stream(path, _identity, _identity)(
                _messages(case.messages), timeout=deadline
            )
            await _drain(call, STREAM_IDLE_SECONDS, 50)
            await call.code()
        elif method.client_streaming:
            await channel.stream_unary(path, _identity, _identity)(
                _messages(case.messages), timeout=deadline
            )
        elif method.server_streaming:
            call = channel.unary_stream(path, _identity, _identity)(
                case.messages[0], timeout=deadline
            )
            await _drain(call, STREAM_IDLE_SECONDS, 50)
            code = await call.code()
            if code not in (grpc.StatusCode.OK, grpc.StatusCode.CANCELLED):
                failure = grpc.aio.AioRpcError(
                    code,
                    await call.initial_metadata(),
                    await call.trailing_metadata(),
                    await call.details(),
                    None,
                )
                return _failed(failure)
        else:
            await channel.unary_unary(path, _identity, _identity)(
                case.messages[0], timeout=deadline
            )
    except grpc.aio.AioRpcError as exc:
        return _failed(exc)
    return Outcome(grpc.StatusCode.OK, "", False)


def _failed(exc: grpc.aio.AioRpcError) -> Outcome:
    try:
        status = call_status(exc)
    except ValueError:  # the status details disagree with the call's code or message
        return Outcome(exc.code(), f"mismatched status details: {exc.details()}", False)
    info = False
    for detail in status.details if status is not None else ():
        if detail.TypeName() == "google.rpc.ErrorInfo":
            info = True
    return Outcome(exc.code(), exc.details() or "", info)


def check_outcome(outcome: Outcome) -> str | None:
    """What is wrong with an answer, or None."""
    if outcome.code in FORBIDDEN:
        return f"{outcome.code.name}: {outcome.details}"
    if outcome.code is grpc.StatusCode.OK or outcome.code in TRANSPORT_CODES:
        return None
    if not outcome.error_info:
        return f"{outcome.code.name} without ErrorInfo: {outcome.details}"
    return None


@dataclass(frozen=True)
class Finding:
    method: str
    kind: str
    problem: str
    request: str  # hex of the first 300 bytes of each message

    def __str__(self) -> str:
        return f"{self.method} [{self.kind}] {self.problem}\n    request: {self.request}"


async def run_cases(
    channel: grpc.aio.Channel,
    method: MethodDescriptor,
    cases: Iterable[Case],
    *,
    alive: Callable[[], Any] | None = None,
    every: int = 50,
    codes: Counter[str] | None = None,
    parallel: int = 1,
) -> tuple[int, list[Finding]]:
    """Sends the cases, `parallel` at a time; returns the number sent and the findings.
    `alive()` (a coroutine function raising when the server no longer answers properly) runs
    after about every `every` cases and at the end; `codes` counts the answers' status
    codes."""
    findings: list[Finding] = []
    pending = list(cases)
    sent = 0
    checked = 0
    for start in range(0, len(pending), parallel):
        batch = pending[start : start + parallel]
        outcomes = await asyncio.gather(*(invoke(channel, method, case) for case in batch))
        for case, outcome in zip(batch, outcomes, strict=True):
            sent += 1
            if codes is not None:
                codes[outcome.code.name] += 1
            problem = check_outcome(outcome)
            if problem is not None:
                request = " | ".join(m[:300].hex() for m in case.messages)
                findings.append(Finding(method_path(method), case.kind, problem[:500], request))
        if alive is not None and sent - checked >= every:
            checked = sent
            await alive()
    if alive is not None:
        await alive()
    return sent, findings
