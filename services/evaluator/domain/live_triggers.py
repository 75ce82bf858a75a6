"""Live segments compiled for matching, and the index that matches ingested events (pure).

The index keeps, per project, the compiled triggers by the event name they listen to, so
matching a batch costs one dictionary look-up per event whatever the number of live
segments; only events whose name some trigger listens to are looked at further.

What a trigger makes of a matching event:

* single action, page visit, referrer: an occurrence (the event);
* inaction within T: a timer due at t_A + T (A's event time); the timer fires unless a B
  in (t_A, t_A + T] has been stored by then;
* page count: a page view to count (`live_entries.page_count_occurrences`);
* on a date: nothing (profiles and the day's start drive it).

Web visits are events named "Page Visited" with the properties "url", "referrer",
"utm_campaign" and "session_id".
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cached_property
from typing import Any

from libs.model.definition import (
    DateTrigger,
    InactionWithinTrigger,
    LiveDefinition,
    PageCountTrigger,
    PageVisitTrigger,
    ReferrerTrigger,
    Scalar,
    SingleActionTrigger,
)
from services.evaluator.domain.live_entries import LiveEvent, Occurrence, PageView, TimerStart
from services.evaluator.domain.live_filters import UrlMatcher, compile_spec
from services.evaluator.domain.records import EventBatch

PAGE_EVENT = "Page Visited"
URL_PROPERTY = "url"
REFERRER_PROPERTY = "referrer"
CAMPAIGN_PROPERTY = "utm_campaign"
SESSION_PROPERTY = "session_id"


@dataclass(frozen=True)
class LiveSegment:
    """A live segment as the definition service describes it."""

    name: str  # projects/{project}/segments/{segment}
    project: str
    definition: LiveDefinition
    time_zone: str = "UTC"

    @cached_property
    def trigger_key(self) -> str:
        """Identifies the trigger: pending timers of another trigger are dropped."""
        return hashlib.sha256(repr(self.definition.trigger).encode()).hexdigest()[:32]


@dataclass
class Matches:
    """What one batch of events did to the live segments."""

    occurrences: list[Occurrence] = field(default_factory=list)
    timers: list[TimerStart] = field(default_factory=list)
    page_views: list[PageView] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.occurrences or self.timers or self.page_views)


class CompiledSegment:
    """One live segment's trigger, ready to match events."""

    def __init__(self, segment: LiveSegment) -> None:
        self.segment = segment
        trigger = segment.definition.trigger
        self.trigger = trigger
        self._url: UrlMatcher | None = None
        self._url_property = URL_PROPERTY
        self._matches: Callable[[str, Mapping[str, Scalar], datetime], bool] = _never
        match trigger:
            case SingleActionTrigger(event=e):
                self.event_names: tuple[str, ...] = (e.event_name,)
                self._matches = compile_spec(e, segment.time_zone)
            case InactionWithinTrigger(did=a):
                self.event_names = (a.event_name,)
                self._matches = compile_spec(a, segment.time_zone)
            case DateTrigger():
                self.event_names = ()
            case PageVisitTrigger(url=u):
                self.event_names = (PAGE_EVENT,)
                self._url = UrlMatcher(u)
            case ReferrerTrigger(referrer_url=r, campaign=c):
                self.event_names = (PAGE_EVENT,)
                self._url = UrlMatcher(r if r is not None else c)  # type: ignore[arg-type]
                self._url_property = REFERRER_PROPERTY if r is not None else CAMPAIGN_PROPERTY
            case PageCountTrigger():
                self.event_names = (PAGE_EVENT,)

    @property
    def name(self) -> str:
        return self.segment.name

    def accepts(self, name: str, props: Mapping[str, Scalar], event_time: datetime) -> bool:
        """Whether an event of a name this segment listens to does anything to it."""
        t = self.trigger
        if isinstance(t, SingleActionTrigger | InactionWithinTrigger):
            return self._matches(name, props, event_time)
        if isinstance(t, PageVisitTrigger | ReferrerTrigger):
            assert self._url is not None
            return self._url(props.get(self._url_property))
        if isinstance(t, PageCountTrigger) and t.window is None:
            session = props.get(SESSION_PROPERTY)
            return isinstance(session, str) and bool(session)  # else it counts in no session
        return isinstance(t, PageCountTrigger)

    def record(self, event: LiveEvent, entry_time: datetime, out: Matches) -> None:
        """Adds what an accepted `event` makes of this segment to `out` (`entry_time`: when an
        event occurrence qualifies the user)."""
        t = self.trigger
        if isinstance(t, InactionWithinTrigger):
            due = event.event_time + t.within
            out.timers.append(
                TimerStart(self.name, event.user_id, event, due, self.segment.trigger_key)
            )
        elif isinstance(t, PageCountTrigger):
            scope = "" if t.window is not None else str(event.properties[SESSION_PROPERTY])
            out.page_views.append(PageView(self.name, event.user_id, scope, event))
        else:
            out.occurrences.append(
                Occurrence(self.name, event.user_id, f"event:{event.event_id}", entry_time, event)
            )

    def match(self, event: LiveEvent, entry_time: datetime, out: Matches) -> None:
        """`accepts`, then `record`."""
        if self.accepts(event.event_name, event.properties, event.event_time):
            self.record(event, entry_time, out)


def _never(name: str, props: Mapping[str, Scalar], as_of: datetime) -> bool:
    return False


class _Properties(Mapping[str, Scalar]):
    """One event's properties as one mapping over its typed maps (a view: nothing is copied
    for the many events that no filter lets through)."""

    __slots__ = ("_maps",)

    def __init__(self, *maps: Mapping[str, Scalar]) -> None:
        self._maps = maps

    def __getitem__(self, key: str) -> Scalar:
        for found in self._maps:
            if key in found:
                return found[key]
        raise KeyError(key)

    def get(self, key: str, default: Any = None) -> Any:
        for found in self._maps:
            if key in found:
                return found[key]
        return default

    def __iter__(self) -> Iterator[str]:
        for found in self._maps:
            yield from found

    def __len__(self) -> int:
        return sum(len(found) for found in self._maps)


def _properties(batch: EventBatch, i: int) -> Mapping[str, Scalar]:
    return _Properties(
        batch.str_props[i], batch.num_props[i], batch.bool_props[i], batch.time_props[i]
    )


class LiveIndex:
    """The live segments known to this process, compiled and indexed by event name."""

    def __init__(self) -> None:
        self._segments: dict[str, CompiledSegment] = {}
        self._by_event: dict[str, dict[str, list[CompiledSegment]]] = {}

    def __len__(self) -> int:
        return len(self._segments)

    def get(self, name: str) -> CompiledSegment | None:
        return self._segments.get(name)

    def segments(self) -> list[CompiledSegment]:
        return list(self._segments.values())

    def reset(self, segments: Iterable[LiveSegment]) -> None:
        self._segments = {}
        self._by_event = {}
        for segment in segments:
            self.put(segment)

    def put(self, segment: LiveSegment) -> None:
        self.remove(segment.name)
        compiled = CompiledSegment(segment)
        self._segments[segment.name] = compiled
        names = self._by_event.setdefault(segment.project, {})
        for event_name in compiled.event_names:
            names.setdefault(event_name, []).append(compiled)

    def remove(self, name: str) -> None:
        old = self._segments.pop(name, None)
        if old is None:
            return
        names = self._by_event.get(old.segment.project, {})
        for event_name in old.event_names:
            kept = [c for c in names.get(event_name, []) if c.name != name]
            if kept:
                names[event_name] = kept
            else:
                names.pop(event_name, None)

    def listens(self, project: str) -> bool:
        return bool(self._by_event.get(project))

    def match_batch(
        self, project: str, batch: EventBatch, now: datetime, max_age: timedelta
    ) -> Matches:
        """What the batch's events make of the project's live segments, as of `now`.

        Events older than `max_age` (event time before `now - max_age`, for example a
        back-fill of history) are stored but trigger nothing. An event occurrence qualifies
        the user at its event time, or at `now` for an event time in the future.
        """
        out = Matches()
        by_name = self._by_event.get(project)
        if not by_name:
            return out
        oldest = now - max_age
        for i, name in enumerate(batch.event_names):
            listeners = by_name.get(name)
            if listeners is None:
                continue
            when = batch.event_times[i]
            if when < oldest:
                continue
            props = _properties(batch, i)
            event: LiveEvent | None = None
            for compiled in listeners:
                if compiled.accepts(name, props, when):
                    if event is None:  # built only for the events that do something
                        event = LiveEvent(batch.event_ids[i], batch.user_ids[i], name, when, props)
                    compiled.record(event, min(when, now), out)
        return out
