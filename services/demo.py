"""The demo data set: a small e-commerce app, generated deterministically (fixed seed).

200 users with profiles, about 5,000 events over the 60 days before the data set's instant
(`demo_as_of()`: the start of the current day, UTC), and a few segments, among them the
product's worked example: users who live in New York, were acquired by a Facebook campaign
in the month three months back (April, for a data set of July), transacted three or more
times in the two months after it, and have not transacted in the past two weeks. Its
members are the same whatever the day: requests that default to now show real numbers.
`load_demo()` loads it through the gRPC API (see `services.demo_loader`).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from google.protobuf.duration_pb2 import Duration
from google.protobuf.timestamp_pb2 import Timestamp

from segments.v1 import definition_model_pb2 as m
from segments.v1 import evaluator_service_pb2 as ev
from segments.v1 import segment_pb2 as sg

PROJECT = "projects/demo"
#: Days of events before the data set's instant.
DEMO_DAYS = 60
SEED = 20260701
USER_COUNT = 200

CITIES = [
    ("New York", "US", 30),
    ("San Francisco", "US", 14),
    ("Chicago", "US", 12),
    ("London", "GB", 12),
    ("Berlin", "DE", 10),
    ("Mumbai", "IN", 12),
    ("Toronto", "CA", 10),
]
SOURCES = [("facebook", 35), ("google", 25), ("organic", 20), ("instagram", 12), ("email", 8)]
CATEGORIES = ["shoes", "apparel", "electronics", "home", "beauty", "books"]
REFERRERS = ["https://www.facebook.com/", "https://www.google.com/", "", "https://t.co/"]


def _ts(when: datetime) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(when)
    return stamp


def _value(value: str | float | bool | datetime) -> m.Value:
    if isinstance(value, bool):
        return m.Value(bool_value=value)
    if isinstance(value, str):
        return m.Value(string_value=value)
    if isinstance(value, datetime):
        return m.Value(time_value=_ts(value))
    return m.Value(number_value=float(value))


def demo_as_of(now: datetime | None = None) -> datetime:
    """The data set's instant: the start of the current day (UTC), nothing happens after it."""
    now = (now or datetime.now(UTC)).astimezone(UTC)
    return datetime(now.year, now.month, now.day, tzinfo=UTC)


def month_start(as_of: datetime, back: int) -> datetime:
    """The first instant of the month `back` months before `as_of`'s month (UTC)."""
    index = as_of.year * 12 + as_of.month - 1 - back
    return datetime(index // 12, index % 12 + 1, 1, tzinfo=UTC)


def _weighted(rng: random.Random, choices: list[tuple[str, int]]) -> str:
    return rng.choices([c for c, _ in choices], weights=[w for _, w in choices])[0]


@dataclass
class DemoData:
    as_of: datetime
    profiles: list[ev.Profile]
    events: list[ev.Event]
    segments: list[tuple[str, sg.Segment]]  # (segment_id, segment)


def _profiles(rng: random.Random, as_of: datetime) -> list[ev.Profile]:
    profiles = []
    for i in range(1, USER_COUNT + 1):
        user_id = f"u{i:04d}"
        city, country, _ = rng.choices(CITIES, weights=[w for *_, w in CITIES])[0]
        source = _weighted(rng, SOURCES)
        # Acquired from four months back to about two weeks back (March to mid-June in July).
        acquired = month_start(as_of, 4) + timedelta(
            days=rng.randrange(0, 105), hours=rng.randrange(24)
        )
        properties = {
            "city": _value(city),
            "country": _value(country),
            "acquisition_source": _value(source),
            "acquisition_campaign": _value(_campaign(source, acquired)),
            "acquisition_date": _value(acquired),
            "age": _value(float(rng.randrange(18, 70))),
            "plan": _value(rng.choice(["free", "free", "plus", "premium"])),
        }
        channels = [sg_channel(ev.CHANNEL_EMAIL, unsubscribed=rng.random() < 0.1)]
        if rng.random() < 0.7:
            channels.append(sg_channel(ev.CHANNEL_MOBILE_PUSH, address=f"push-token-{user_id}"))
        if rng.random() < 0.4:
            channels.append(sg_channel(ev.CHANNEL_SMS))
        profiles.append(
            ev.Profile(
                user_id=user_id,
                email=f"{user_id}@example.com",
                phone=f"+1555{i:07d}",
                display_name=f"Demo User {i}",
                channels=channels,
                test_user=i <= 3,
                blocked=i % 50 == 0,
                properties=properties,
                update_time=_ts(acquired),
            )
        )
    return profiles


def sg_channel(channel: int, *, address: str = "", unsubscribed: bool = False) -> ev.ChannelState:
    return ev.ChannelState(channel=channel, address=address, unsubscribed=unsubscribed)  # type: ignore[arg-type]


class _EventLog:
    def __init__(self, as_of: datetime) -> None:
        self.as_of = as_of
        self.events: list[ev.Event] = []
        self.issued = 0

    def add(self, user_id: str, name: str, when: datetime, **props: str | float) -> None:
        if when >= self.as_of:
            return  # nothing happens after the data set's "now"
        self.issued += 1
        self.events.append(
            ev.Event(
                event_id=f"demo-{self.issued:06d}",
                user_id=user_id,
                event_name=name,
                event_time=_ts(when),
                properties={k: _value(v) for k, v in props.items()},
            )
        )


def _events(rng: random.Random, profiles: list[ev.Profile], as_of: datetime) -> list[ev.Event]:
    log = _EventLog(as_of)
    add = log.add
    demo_start = as_of - timedelta(days=DEMO_DAYS)

    for profile in profiles:
        acquired = profile.properties["acquisition_date"].time_value.ToDatetime(tzinfo=UTC)
        first = max(acquired, demo_start)
        span = (as_of - first).total_seconds()
        if span <= 0:
            continue
        # Every fifth user stops being active two to four weeks before the end.
        lapsed = rng.random() < 0.2
        if lapsed:
            span = max(span - rng.randrange(14, 28) * 86400, 3600.0)
        sessions = rng.randrange(3, 10)
        for s in range(sessions):
            start = first + timedelta(seconds=rng.randrange(0, int(span)))
            session_id = f"{profile.user_id}-s{s}"
            t = start
            add(profile.user_id, "App Launched", t, platform=rng.choice(["ios", "android", "web"]))
            t += timedelta(seconds=rng.randrange(5, 60))
            add(
                profile.user_id,
                "Page Visited",
                t,
                url=f"https://shop.example.com/{rng.choice(CATEGORIES)}",
                referrer=rng.choice(REFERRERS),
                utm_campaign=profile.properties["acquisition_campaign"].string_value,
                session_id=session_id,
            )
            for _ in range(rng.randrange(0, 4)):
                t += timedelta(seconds=rng.randrange(10, 240))
                category = rng.choice(CATEGORIES)
                price = round(rng.uniform(5, 300), 2)
                add(profile.user_id, "Product Viewed", t, category=category, price=price)
                if rng.random() < 0.35:
                    t += timedelta(seconds=rng.randrange(10, 120))
                    add(profile.user_id, "Added to Cart", t, category=category, price=price)
                    if rng.random() < 0.55:
                        t += timedelta(minutes=rng.randrange(1, 90))
                        add(
                            profile.user_id,
                            "Charged",
                            t,
                            amount=price,
                            currency="USD",
                            category=category,
                            items=float(rng.randrange(1, 4)),
                        )
    _add_worked_example_events(log)
    events = log.events
    events.sort(key=lambda e: (e.event_time.seconds, e.event_time.nanos, e.event_id))
    return events


WORKED_EXAMPLE_MATCHES = ("u0011", "u0012", "u0013", "u0014")
WORKED_EXAMPLE_NEAR_MISSES = ("u0015", "u0016")  # they bought in the past two weeks


def _campaign(source: str, acquired: datetime) -> str:
    return f"{source}-{acquired.strftime('%b').lower()}-{acquired.year}"


def _shape_worked_example(profiles: list[ev.Profile], as_of: datetime) -> None:
    """Six New York users acquired by Facebook in the acquisition month: four match the
    example, two miss. No other New York user is acquired by Facebook that month, so that
    the members are the same whatever the data set's day."""
    month = month_start(as_of, 3)
    for offset, profile in enumerate(profiles[10:16]):
        profile.properties["city"].CopyFrom(_value("New York"))
        profile.properties["acquisition_source"].CopyFrom(_value("facebook"))
        acquired = month + timedelta(days=4 + offset * 3, hours=15)
        profile.properties["acquisition_date"].CopyFrom(_value(acquired))
        profile.properties["acquisition_campaign"].CopyFrom(_value(_campaign("facebook", acquired)))
        profile.update_time.CopyFrom(_ts(acquired))
    for profile in profiles[:10] + profiles[16:]:
        props = profile.properties
        acquired = props["acquisition_date"].time_value.ToDatetime(tzinfo=UTC)
        if (
            props["city"].string_value == "New York"
            and props["acquisition_source"].string_value == "facebook"
            and month <= acquired < month_start(as_of, 2)
        ):
            props["acquisition_source"].CopyFrom(_value("instagram"))
            props["acquisition_campaign"].CopyFrom(_value(_campaign("instagram", acquired)))


def _add_worked_example_events(log: _EventLog) -> None:
    as_of = log.as_of
    two_weeks_ago = _ts(as_of - timedelta(days=15))
    log.events = [
        e
        for e in log.events
        if not (
            e.user_id in WORKED_EXAMPLE_MATCHES
            and e.event_name == "Charged"
            and e.event_time.seconds >= two_weeks_ago.seconds
        )
    ]
    for offset, user_id in enumerate(WORKED_EXAMPLE_MATCHES + WORKED_EXAMPLE_NEAR_MISSES):
        for k in range(3 + offset % 2):
            when = month_start(as_of, 2) + timedelta(days=2 + 9 * k, hours=12)
            if user_id in WORKED_EXAMPLE_NEAR_MISSES and k == 0:
                when = as_of - timedelta(days=3)
            log.add(user_id, "Charged", when, amount=49.0, currency="USD", category="shoes")


def _did(event: str, window: m.TimeWindow, **aggregate: object) -> m.Node:
    condition = m.DidEventCondition(event=m.EventSpec(event_name=event), window=window)
    if aggregate:
        condition.aggregate.CopyFrom(m.Aggregate(**aggregate))  # type: ignore[arg-type]
    return m.Node(did_event=condition)


def _prop(name: str, op: int, *values: str | float | datetime) -> m.Node:
    comparison = m.Comparison(operator=op, values=[_value(v) for v in values])  # type: ignore[arg-type]
    return m.Node(user_property=m.PropertyFilter(property=name, comparison=comparison))


def _and(*children: m.Node) -> m.Node:
    return m.Node(operator=m.BOOLEAN_OPERATOR_AND, children=children)


def _range(start: datetime, end: datetime) -> m.TimeWindow:
    return m.TimeWindow(
        range=m.AbsoluteRange(
            start=m.TimePoint(instant=_ts(start)), end=m.TimePoint(instant=_ts(end))
        )
    )


def _segment(display_name: str, description: str, definition: m.Definition) -> sg.Segment:
    return sg.Segment(display_name=display_name, description=description, definition=definition)


def demo_segments(as_of: datetime) -> list[tuple[str, sg.Segment]]:
    acquisition, purchases = month_start(as_of, 3), month_start(as_of, 2)
    last_two_weeks = m.TimeWindow(last=m.RelativeOffset(amount=2, unit=m.TIME_UNIT_WEEK))
    new_york = m.PastBehaviorQuery(
        root=_and(
            _prop("city", m.COMPARISON_OPERATOR_EQUALS, "New York"),
            _prop("acquisition_source", m.COMPARISON_OPERATOR_EQUALS, "facebook"),
            _prop(
                "acquisition_date",
                m.COMPARISON_OPERATOR_BETWEEN,
                acquisition,
                purchases - timedelta(seconds=1),
            ),
            _did(
                "Charged",
                _range(purchases, month_start(as_of, 0)),
                function=m.AGGREGATE_FUNCTION_COUNT,
                operator=m.COMPARISON_OPERATOR_GREATER_THAN_OR_EQUAL,
                values=[3.0],
            ),
            m.Node(
                did_not_event=m.DidNotEventCondition(
                    event=m.EventSpec(event_name="Charged"), window=last_two_weeks
                )
            ),
        )
    )
    abandoners = m.PastBehaviorQuery(
        root=m.Node(
            inaction=m.InactionCondition(
                did=m.EventSpec(event_name="Added to Cart"),
                did_not=m.EventSpec(event_name="Charged"),
                window=m.TimeWindow(last=m.RelativeOffset(amount=7, unit=m.TIME_UNIT_DAY)),
                within=Duration(seconds=3600),
            )
        )
    )
    high_value = m.PastBehaviorQuery(
        root=_did(
            "Charged",
            m.TimeWindow(all_time=m.AllTime()),
            function=m.AGGREGATE_FUNCTION_SUM,
            property="amount",
            operator=m.COMPARISON_OPERATOR_GREATER_THAN_OR_EQUAL,
            values=[300.0],
        )
    )
    live_abandon = m.LiveDefinition(
        trigger=m.LiveTrigger(
            inaction_within=m.InactionWithinTrigger(
                did=m.EventSpec(event_name="Added to Cart"),
                did_not=m.EventSpec(event_name="Charged"),
                within=Duration(seconds=600),
            )
        )
    )
    shoe_page = m.LiveDefinition(
        trigger=m.LiveTrigger(
            page_visit=m.UrlMatch(operator=m.URL_MATCH_OPERATOR_CONTAINS, pattern="/shoes")
        )
    )
    return [
        (
            "ny-facebook-april-lapsed",
            _segment(
                f"New York, Facebook {acquisition:%B}, 3+ purchases "
                f"{purchases:%B}-{month_start(as_of, 1):%B}, none in 2 weeks",
                "The product's worked example (April, May-June for a data set of July). "
                f"The demo data end at {as_of.isoformat()}.",
                m.Definition(past_behavior=new_york),
            ),
        ),
        (
            "cart-abandoners-7d",
            _segment(
                "Cart abandoners, last 7 days",
                "Added to cart and did not buy within an hour.",
                m.Definition(past_behavior=abandoners),
            ),
        ),
        (
            "high-value-customers",
            _segment(
                "High-value customers",
                "Spent 300 USD or more, all time.",
                m.Definition(past_behavior=high_value),
            ),
        ),
        (
            "live-cart-abandon-10m",
            _segment(
                "Live: cart abandoned for 10 minutes",
                "Enters when an Added to Cart is not followed by a Charged within 10 minutes.",
                m.Definition(live=live_abandon),
            ),
        ),
        (
            "live-shoe-page",
            _segment(
                "Live: visited a shoe page",
                "Enters on every visit of a page whose URL contains /shoes.",
                m.Definition(live=shoe_page),
            ),
        ),
    ]


def build_demo_data(seed: int = SEED, as_of: datetime | None = None) -> DemoData:
    """The data set as of `as_of` (default: `demo_as_of()`, the start of today)."""
    instant = as_of or demo_as_of()
    rng = random.Random(seed)
    profiles = _profiles(rng, instant)
    _shape_worked_example(profiles, instant)
    events = _events(rng, profiles, instant)
    return DemoData(instant, profiles=profiles, events=events, segments=demo_segments(instant))


def stored_as_of(path: Path, now: datetime | None = None) -> datetime:
    """The instant of the data set loaded into this data directory, kept in `path`: the
    start of today on the first load, the same instant on every later one, so that loading
    again is harmless (the same events, segments and export)."""
    try:
        return datetime.fromisoformat(path.read_text().strip()).astimezone(UTC)
    except (OSError, ValueError):
        as_of = demo_as_of(now)
        path.write_text(as_of.isoformat() + "\n")
        return as_of


async def load_demo(address: str, key_file: Path) -> dict[str, str]:
    """Loads the demo data set into the suite at `address` (served by this process), with an
    admin key of the demo project kept in `key_file`; returns each step's outcome."""
    import asyncio

    from services.demo_loader import load

    as_of = await asyncio.to_thread(stored_as_of, key_file.parent / "demo.as_of")
    return await load(address, build_demo_data(as_of=as_of), key_file)
