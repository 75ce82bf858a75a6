"""Back-off between attempts of a failing segment."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta


@dataclass(frozen=True)
class RetryPolicy:
    """`attempts` tries per segment and run; the n-th retry waits `base * factor**(n-1)`,
    at most `cap`."""

    attempts: int = 3
    base: timedelta = timedelta(seconds=5)
    factor: float = 4.0
    cap: timedelta = timedelta(minutes=5)

    def delay(self, failed_attempts: int) -> timedelta:
        """The wait before the next attempt after `failed_attempts` failures (>= 1)."""
        if failed_attempts < 1:
            return timedelta(0)
        return min(self.cap, self.base * self.factor ** (failed_attempts - 1))

    def gives_up(self, failed_attempts: int) -> bool:
        return failed_attempts >= self.attempts
