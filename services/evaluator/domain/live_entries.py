"""Entries into live segments and the rules that make them (pure, no I/O).

An entry is made by a triggering *occurrence*: an event (single action, page visit,
referrer, a page view at or past a window's page count), an elapsed inaction timer, a
session reaching its page count, or a day of a date trigger. Its id is derived from the
segment, the user and the occurrence only, so the same occurrence always gives the same
entry id, whichever process sees it and however often.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from libs.model.definition import (
    PageCountTrigger,
    Reentry,
    ReentryMode,
    Scalar,
)
from services.evaluator.domain.windows import shift

#: An entry made later than this after the user qualified is marked late.
LATE_AFTER = timedelta(seconds=1)


@dataclass(frozen=True)
class LiveEvent:
    """An ingested event as the live engine sees it (properties of every type together)."""

    event_id: str
    user_id: str
    event_name: str
    event_time: datetime
    properties: Mapping[str, Scalar] = field(default_factory=dict)


def entry_id(segment: str, user_id: str, occurrence: str) -> str:
    """The stable id of the entry `occurrence` makes (32 hex digits)."""
    text = f"{segment}\n{user_id}\n{occurrence}".encode()
    return hashlib.sha256(text).hexdigest()[:32]


@dataclass(frozen=True)
class Occurrence:
    """A user qualifying for a live segment: an entry unless the re-entry policy or the
    past-behaviour part says no."""

    segment: str
    user_id: str
    occurrence: str  # "event:<id>", "timer:<id>", "session:<id>", "day:<yyyy-mm-dd>"
    entry_time: datetime  # when the user qualified
    event: LiveEvent | None = None
    #: the event as stored with a timer (instead of `event`: copied into the entry as it is)
    event_json: str | None = None

    @property
    def entry_id(self) -> str:
        return entry_id(self.segment, self.user_id, self.occurrence)


@dataclass(frozen=True)
class Entry:
    """A stored entry: an occurrence admitted, with its place in the project's stream."""

    cursor: int
    entry_id: str
    project: str
    segment: str
    user_id: str
    entry_time: datetime
    create_time: datetime
    late: bool
    event: LiveEvent | None


@dataclass(frozen=True)
class Committed:
    """What one transaction of the live store wrote: it took the cursors after `after` up to
    `last` (no other transaction has any of them; an occurrence written before leaves its
    cursor unused), and these entries, in cursor order."""

    after: int
    last: int
    entries: list[Entry]


def is_late(entry_time: datetime, create_time: datetime) -> bool:
    return create_time - entry_time > LATE_AFTER


def admit(
    occurrences: Iterable[Occurrence], reentry: Reentry, last_entry: Mapping[str, datetime]
) -> list[Occurrence]:
    """The occurrences that become entries under `reentry`, in entry-time order, given each
    user's last entry time (`last_entry`, updated as occurrences are admitted)."""
    latest = dict(last_entry)
    admitted: list[Occurrence] = []
    for o in sorted(occurrences, key=lambda o: o.entry_time):  # ties keep their order
        last = latest.get(o.user_id)
        if last is not None and reentry.mode is ReentryMode.ONCE:
            continue
        if last is not None and reentry.mode is ReentryMode.AFTER_COOLDOWN:
            assert reentry.cooldown is not None
            if o.entry_time < last + reentry.cooldown:
                continue
        admitted.append(o)
        latest[o.user_id] = max(o.entry_time, last) if last is not None else o.entry_time
    return admitted


# --- page counts ------------------------------------------------------------------------------


@dataclass(frozen=True)
class PageView:
    """A page view counted for a page-count segment; `scope` is the session id (session
    scope) or "" (rolling window)."""

    segment: str
    user_id: str
    scope: str
    event: LiveEvent


def page_count_occurrences(
    segment: str,
    trigger: PageCountTrigger,
    time_zone: str,
    new_views: Sequence[PageView],
    stored: Sequence[tuple[str, datetime]],
) -> list[Occurrence]:
    """Occurrences of one user and scope, given the views of this batch and every view of
    that user and scope stored so far (`stored`: (event id, event time), these included).

    Session scope: the session reaching `pages` views, once per session (entry time: the
    time of its `pages`-th view). Window scope: each view of the batch at which the views in
    [t - window, t] number at least `pages`.
    """
    if not new_views:
        return []
    user_id, scope = new_views[0].user_id, new_views[0].scope
    ordered = sorted(stored, key=lambda v: (v[1], v[0]))
    if trigger.window is None:
        if len(ordered) < trigger.pages:
            return []
        latest = max(new_views, key=lambda v: (v.event.event_time, v.event.event_id))
        reached = ordered[trigger.pages - 1][1]
        return [Occurrence(segment, user_id, f"session:{scope}", reached, latest.event)]
    found: list[Occurrence] = []
    times = [t for _, t in ordered]
    for view in new_views:
        at = view.event.event_time
        start = shift(at, trigger.window, time_zone, sign=-1)
        if sum(1 for t in times if start <= t <= at) >= trigger.pages:
            found.append(
                Occurrence(segment, user_id, f"event:{view.event.event_id}", at, view.event)
            )
    return found


# --- inaction timers --------------------------------------------------------------------------


@dataclass(frozen=True)
class TimerStart:
    """An A of an inaction trigger: the user enters at `due` unless a B follows first."""

    segment: str
    user_id: str
    event: LiveEvent
    due: datetime
    trigger_key: str

    @property
    def timer_id(self) -> str:
        return entry_id(self.segment, self.user_id, f"timer:{self.event.event_id}")


@dataclass(frozen=True)
class Timer:
    """A stored timer (see `TimerStart`): its A event kept as stored (`event_json`), read only
    to be copied into the entry."""

    timer_id: str
    project: str
    segment: str
    user_id: str
    event_id: str  # the A event's id
    a_time: datetime  # the A event's time
    due: datetime
    trigger_key: str
    event_json: str


def followed_by_b(timer: Timer, b_times: Sequence[datetime]) -> bool:
    """Whether a B in (t_A, t_A + T] cancels the timer ("within" includes T exactly)."""
    return any(timer.a_time < b <= timer.due for b in b_times)


def timer_occurrence(timer: Timer) -> Occurrence:
    return Occurrence(
        timer.segment, timer.user_id, f"timer:{timer.event_id}", timer.due,
        event_json=timer.event_json,
    )  # fmt: skip


# --- date triggers ----------------------------------------------------------------------------


def local_day(instant: datetime, time_zone: str) -> date:
    return instant.astimezone(ZoneInfo(time_zone)).date()


def date_occurrence(
    segment: str,
    user_id: str,
    value: Scalar | None,
    days_from_today: int,
    time_zone: str,
    now: datetime,
) -> Occurrence | None:
    """The entry of a date trigger for a profile whose property holds `value`, checked at
    `now`: when the value's day (in the project's time zone) is `days_from_today` days from
    today. One occurrence per user, segment and day."""
    if not isinstance(value, datetime):
        return None
    today = local_day(now, time_zone)
    if local_day(value, time_zone) != today + timedelta(days=days_from_today):
        return None
    return Occurrence(segment, user_id, f"day:{today.isoformat()}", now)
