"""Back-fills: a segment's past days computed by as-of evaluation, when the segment is new
or its definition changed.

One back-fill per segment, for its current definition version: the days from
`backfill_days(...)` up to the day before it was planned. It advances day by day
(`next_day`), so that it resumes where it stopped after a restart; a day whose stored
figures already belong to the current definition is skipped. A failing back-fill waits
with back-off (`not_before`) and is reported FAILED after its last attempt.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from services.reporting.domain.days import backfill_days

#: A changed definition of an old segment back-fills at most this many days.
MAX_BACKFILL_DAYS = 400


class BackfillState(enum.StrEnum):
    PENDING = "PENDING"
    DONE = "DONE"
    FAILED = "FAILED"


@dataclass(frozen=True)
class Backfill:
    project: str
    segment: str
    definition_version: str
    start_day: date
    end_day: date
    next_day: date
    state: BackfillState = BackfillState.PENDING
    attempts: int = 0
    reason: str = ""
    lease_owner: str = ""
    lease_expires: datetime | None = None
    not_before: datetime | None = None

    def claimable(self, now: datetime) -> bool:
        return (
            self.state is BackfillState.PENDING
            and (self.lease_expires is None or self.lease_expires <= now)
            and (self.not_before is None or self.not_before <= now)
        )


def plan(
    project: str,
    segment: str,
    definition_version: str,
    created: datetime,
    now: datetime,
    zone: str,
    days_before: int,
) -> Backfill:
    """The back-fill of a new (or newly changed) definition: DONE at once when there is no
    complete day to fill."""
    wanted = backfill_days(created, now, zone, days_before)[-MAX_BACKFILL_DAYS:]
    if not wanted:
        today = now.date()
        return Backfill(project, segment, definition_version, today, today - timedelta(days=1),
                        today, BackfillState.DONE)  # fmt: skip
    return Backfill(project, segment, definition_version, wanted[0], wanted[-1], wanted[0])
