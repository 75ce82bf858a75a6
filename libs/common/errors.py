"""Domain errors: what went wrong, in the caller's terms, without any transport detail.

Services raise these from domain code and adapters; the gRPC error interceptor
(`libs.common.interceptors`) turns each kind into a `google.rpc.Status` with a status code,
an `ErrorInfo` (reason, domain, metadata) and, where present, `BadRequest` field violations or
`PreconditionFailure` violations.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

ERROR_DOMAIN = "segments.v1"


@dataclass(frozen=True)
class FieldViolation:
    """One bad field of a request: `field` is a path such as `segment.definition.past_behavior`."""

    field: str
    description: str


@dataclass(frozen=True)
class PreconditionViolation:
    """One unmet precondition, for example a segment that still depends on the one deleted."""

    type: str
    subject: str
    description: str


class DomainError(Exception):
    """Base of every error a caller can act on. `reason` is an UPPER_SNAKE_CASE constant."""

    default_reason = "ERROR"

    def __init__(
        self,
        message: str,
        *,
        reason: str | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.reason = reason or self.default_reason
        self.metadata: dict[str, str] = dict(metadata or {})


class InvalidArgument(DomainError):
    """The request is malformed; `violations` say which fields and how to fix them."""

    default_reason = "INVALID_ARGUMENT"

    def __init__(
        self,
        message: str,
        *,
        violations: Sequence[FieldViolation] = (),
        reason: str | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message, reason=reason, metadata=metadata)
        self.violations = list(violations)

    @classmethod
    def field(cls, field: str, description: str) -> InvalidArgument:
        """One bad field: the message is the description prefixed with the field path."""
        return cls(f"{field}: {description}", violations=[FieldViolation(field, description)])


class NotFound(DomainError):
    default_reason = "NOT_FOUND"


class AlreadyExists(DomainError):
    default_reason = "ALREADY_EXISTS"


class FailedPrecondition(DomainError):
    """The system is not in a state that allows the request (for example: dependants exist)."""

    default_reason = "FAILED_PRECONDITION"

    def __init__(
        self,
        message: str,
        *,
        violations: Sequence[PreconditionViolation] = (),
        reason: str | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message, reason=reason, metadata=metadata)
        self.violations = list(violations)


class Aborted(DomainError):
    """A concurrent change won: for example a stale etag. Re-read and retry."""

    default_reason = "ABORTED"


class PermissionDenied(DomainError):
    default_reason = "PERMISSION_DENIED"


class Unauthenticated(DomainError):
    default_reason = "UNAUTHENTICATED"


class ResourceExhausted(DomainError):
    """A limit was reached. `retry_after_seconds`, when set, goes to the caller as a
    `google.rpc.RetryInfo`: when trying again may succeed."""

    default_reason = "RESOURCE_EXHAUSTED"

    def __init__(
        self,
        message: str,
        *,
        retry_after_seconds: float | None = None,
        reason: str | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message, reason=reason, metadata=metadata)
        self.retry_after_seconds = retry_after_seconds


class Unavailable(DomainError):
    """A store or peer service cannot be reached; retrying later may succeed.
    `retry_after_seconds`, when set, goes to the caller as a `google.rpc.RetryInfo`."""

    default_reason = "UNAVAILABLE"

    def __init__(
        self,
        message: str,
        *,
        retry_after_seconds: float | None = None,
        reason: str | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message, reason=reason, metadata=metadata)
        self.retry_after_seconds = retry_after_seconds


class DeadlineExceeded(DomainError):
    default_reason = "DEADLINE_EXCEEDED"


class Unimplemented(DomainError):
    default_reason = "UNIMPLEMENTED"


class Internal(DomainError):
    default_reason = "INTERNAL"
