"""Abuse limits of the access check: failed authentication per client address, and concurrent
expensive calls per principal. Both answer RESOURCE_EXHAUSTED with a retry delay
(`google.rpc.RetryInfo`), and both count in this process only."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from libs.common.errors import ResourceExhausted

#: Client addresses and principals tracked at most; the least recently seen go first.
MAX_TRACKED = 10_000
#: Retry delay suggested to a principal at its limit of expensive calls.
BUSY_RETRY_SECONDS = 1.0


def client_address(peer: str) -> str:
    """The host part of a grpc peer string ("ipv4:10.0.0.7:51234" -> "10.0.0.7",
    "ipv6:[::1]:51234" -> "::1")."""
    kind, _, rest = peer.partition(":")
    if kind == "ipv6" and rest.startswith("["):
        return rest[1:].partition("]")[0]
    if kind == "ipv4":
        return rest.rpartition(":")[0] or rest
    return peer


@dataclass
class _Bucket:
    tokens: float
    seen: float


class FailedAuthLimiter:
    """At most `per_minute` failed authentications per client address (a token bucket that
    refills continuously). An address out of tokens has every call refused until one refills.
    `per_minute` 0 disables the limit."""

    def __init__(self, per_minute: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.per_minute = per_minute
        self._clock = clock
        self._buckets: dict[str, _Bucket] = {}

    def _bucket(self, address: str) -> _Bucket:
        now = self._clock()
        bucket = self._buckets.pop(address, None)
        if bucket is None:
            bucket = _Bucket(float(self.per_minute), now)
        else:
            refill = (now - bucket.seen) * self.per_minute / 60.0
            bucket = _Bucket(min(float(self.per_minute), bucket.tokens + refill), now)
        self._buckets[address] = bucket  # most recently seen last
        while len(self._buckets) > MAX_TRACKED:
            del self._buckets[next(iter(self._buckets))]
        return bucket

    def admit(self, address: str) -> None:
        """Refuses the call when `address` has used up its failures."""
        if self.per_minute <= 0 or address not in self._buckets:
            return
        bucket = self._bucket(address)
        if bucket.tokens < 1:
            wait = (1 - bucket.tokens) * 60.0 / self.per_minute
            raise ResourceExhausted(
                f"too many failed authentications from {address}; retry in {wait:.0f} s",
                retry_after_seconds=wait,
                reason="TOO_MANY_FAILED_AUTHENTICATIONS",
            )

    def failed(self, address: str) -> None:
        if self.per_minute > 0:
            self._bucket(address).tokens -= 1


@dataclass
class _Slots:
    calls: int = 0
    # request id -> methods in flight under it: a call to another method with the request id
    # of a call in flight (a peer call it made) shares that call's slot.
    requests: dict[str, set[str]] = field(default_factory=dict)


class ConcurrencyLimiter:
    """At most `limit` expensive calls in flight per principal; `limit` 0 disables it."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._held: dict[str, _Slots] = {}

    def in_flight(self, principal: str) -> int:
        slots = self._held.get(principal)
        return slots.calls if slots else 0

    @contextmanager
    def slot(self, principal: str, request_id: str, method: str) -> Iterator[None]:
        """Holds one of `principal`'s slots while the block runs, or refuses the call."""
        if self.limit <= 0:
            yield
            return
        slots = self._held.setdefault(principal, _Slots())
        methods = slots.requests.get(request_id) if request_id else None
        shared = methods is not None and method not in methods
        if not shared and slots.calls >= self.limit:
            raise ResourceExhausted(
                f"{self.limit} expensive calls (count, stream, snapshot, export) of this caller "
                "are running; retry when one has finished",
                retry_after_seconds=BUSY_RETRY_SECONDS,
                reason="TOO_MANY_CONCURRENT_CALLS",
                metadata={"limit": str(self.limit)},
            )
        if not shared:
            slots.calls += 1
        if request_id:
            slots.requests.setdefault(request_id, set()).add(method)
        try:
            yield
        finally:
            if request_id:
                held = slots.requests.get(request_id, set())
                held.discard(method)
                if not held:
                    slots.requests.pop(request_id, None)
            if not shared:
                slots.calls -= 1
            if slots.calls == 0 and not slots.requests:
                self._held.pop(principal, None)
