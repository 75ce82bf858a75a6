"""Validation of definitions on write: shape, types, ranges and limits of every node.

`definition_violations` walks the whole definition and returns every violation it finds,
each with the path of the offending field (for example
`segment.definition.past_behavior.root.children[2].did_event.window`). Structure (a oneof
left unset, an UNSPECIFIED enum) was already checked by the proto conversion; this module
checks meaning. Rules and limits are listed in docs/definition-model.md.
"""

from __future__ import annotations

import math
import re
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from libs.common.errors import FieldViolation
from libs.model import definition as m
from libs.model.patterns import PatternError, compile_re2
from services.definition.domain import limits
from services.definition.domain.names import try_parse_segment_name

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
#: Control characters but tab, line feed and carriage return (allowed in descriptions).
_CONTROL_IN_TEXT = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
_PROPERTY_EXTRA = frozenset(" _-.:$")


def name_problem(name: str, what: str) -> str | None:
    """Event and property names: non-empty, at most 128 characters, no control characters."""
    if not name:
        return f"{what} is required"
    if len(name) > limits.MAX_NAME_LENGTH:
        return f"{what} must be at most {limits.MAX_NAME_LENGTH} characters"
    if _CONTROL.search(name):
        return f"{what} must not contain control characters"
    if name != name.strip():
        return f"{what} must not start or end with spaces"
    return None


def property_name_problem(name: str) -> str | None:
    problem = name_problem(name, "property name")
    if problem is None and not all(c.isalnum() or c in _PROPERTY_EXTRA for c in name):
        problem = "property name may hold letters, digits, spaces, '_', '-', '.', ':' and '$'"
    return problem


def text_problems(display_name: str, description: str) -> list[tuple[str, str]]:
    """(field, problem) pairs for a segment's display name and description."""
    found: list[tuple[str, str]] = []
    stripped = display_name.strip()
    if not limits.MIN_DISPLAY_NAME <= len(stripped) <= limits.MAX_DISPLAY_NAME:
        found.append(
            (
                "display_name",
                f"must be {limits.MIN_DISPLAY_NAME} to {limits.MAX_DISPLAY_NAME} characters "
                "(not only spaces)",
            )
        )
    elif _CONTROL.search(display_name) or stripped != display_name:
        found.append(("display_name", "must not contain control characters or surrounding spaces"))
    if len(description) > limits.MAX_DESCRIPTION:
        found.append(("description", f"must be at most {limits.MAX_DESCRIPTION} characters"))
    elif _CONTROL_IN_TEXT.search(description):
        found.append(
            ("description", "must not contain control characters (but tabs and line breaks)")
        )
    return found


def _in_range(instant: datetime) -> bool:
    return m.EARLIEST_TIME <= instant < m.LATEST_TIME


class _Checker:
    def __init__(self, project_id: str, time_zone: str) -> None:
        self.project_id = project_id
        self.time_zone = time_zone
        self.violations: list[FieldViolation] = []
        self.nodes = 0
        self.too_deep = False

    def add(self, path: str, description: str) -> None:
        self.violations.append(FieldViolation(path, description))

    # --- building blocks --------------------------------------------------------------------

    def duration(self, value: timedelta | None, path: str) -> None:
        if value is not None and value <= timedelta(0):
            self.add(path, "must be a positive duration")
        elif value is not None and value > limits.MAX_DURATION:
            self.add(path, f"must be at most {limits.MAX_DURATION.days:,} days")

    def offset(self, o: m.RelativeOffset, path: str) -> None:
        most = limits.MAX_OFFSET[o.unit]
        if o.amount <= 0:
            self.add(f"{path}.amount", "must be a positive amount")
        elif o.amount > most:
            self.add(
                f"{path}.amount",
                f"at most {most:,} {o.unit.value.lower()}s (times lie {m.SUPPORTED_TIME_RANGE})",
            )

    def point(self, point: m.TimePoint, path: str) -> None:
        """A time point in the supported range (a date: its day)."""
        if point.date is not None:
            inside = m.EARLIEST_TIME.date() <= point.date < m.LATEST_TIME.date()
            where = f"{path}.date"
        else:
            inside = point.instant is not None and _in_range(point.instant)
            where = f"{path}.instant"
        if not inside:
            self.add(where, f"must lie {m.SUPPORTED_TIME_RANGE}")

    def window(self, w: m.TimeWindow, path: str) -> None:
        match w:
            case m.LastWindow(offset=o):
                self.offset(o, f"{path}.last")
            case m.RangeWindow(start=s, end=e):
                self.point(s, f"{path}.range.start")
                self.point(e, f"{path}.range.end")
                start, end = self.instant(s), self.instant(e)
                if start is not None and end is not None and start >= end:
                    self.add(
                        f"{path}.range",
                        f"start must be earlier than end (dates are midnight in {self.time_zone})",
                    )
            case m.SinceWindow(start=s):
                self.point(s, f"{path}.since")
            case m.BeforeWindow(end=e):
                self.point(e, f"{path}.before")
            case _:
                pass

    def instant(self, point: m.TimePoint) -> datetime | None:
        """The instant a time point stands for: a date is midnight in the project's zone."""
        if point.date is not None:
            return datetime.combine(point.date, time(), ZoneInfo(self.time_zone))
        return point.instant

    def event(self, e: m.EventSpec, path: str) -> None:
        problem = name_problem(e.event_name, "event name")
        if problem:
            self.add(f"{path}.event_name", problem)
        if len(e.filters) > limits.MAX_FILTERS_PER_EVENT:
            self.add(f"{path}.filters", f"at most {limits.MAX_FILTERS_PER_EVENT} filters")
        for i, f in enumerate(e.filters):
            self.property_filter(f, f"{path}.filters[{i}]")

    def property_filter(self, f: m.PropertyFilter, path: str) -> None:
        problem = property_name_problem(f.property)
        if problem:
            self.add(f"{path}.property", problem)
        self.comparison(f.comparison, f"{path}.comparison")

    def comparison(self, c: m.Comparison, path: str) -> None:
        op, values = c.operator, c.values
        vpath = f"{path}.values"
        for i, v in enumerate(values):
            if isinstance(v, float) and not math.isfinite(v):
                self.add(f"{vpath}[{i}]", "must be a finite number")
            if isinstance(v, str) and len(v) > limits.MAX_STRING_VALUE:
                self.add(f"{vpath}[{i}]", f"at most {limits.MAX_STRING_VALUE} characters")
            if isinstance(v, datetime) and not _in_range(v):
                self.add(f"{vpath}[{i}].time_value", f"must lie {m.SUPPORTED_TIME_RANGE}")
        if op in m.RELATIVE_DATE_OPERATORS:
            if c.relative is None:
                self.add(f"{path}.relative", f"{op.value} needs a relative offset")
            else:
                self.offset(c.relative, f"{path}.relative")
            if values:
                self.add(vpath, f"{op.value} takes no values (it uses relative)")
            return
        if c.relative is not None:
            self.add(
                f"{path}.relative", f"only the relative date operators take it, not {op.value}"
            )
        if op in (m.ComparisonOperator.EXISTS, m.ComparisonOperator.NOT_EXISTS):
            if values:
                self.add(vpath, f"{op.value} takes no values")
        elif op in (m.ComparisonOperator.IN_LIST, m.ComparisonOperator.NOT_IN_LIST):
            if not values:
                self.add(vpath, f"{op.value} needs at least one value")
            elif len(values) > limits.MAX_LIST_VALUES:
                self.add(vpath, f"at most {limits.MAX_LIST_VALUES} values")
        elif op == m.ComparisonOperator.BETWEEN:
            self.ordered_pair(values, vpath)
        elif op in m.ORDERING_OPERATORS:
            if len(values) != 1:
                self.add(vpath, f"{op.value} needs exactly one value")
            elif not _is_orderable(values[0]):
                self.add(f"{vpath}[0]", f"{op.value} needs a number or time value")
        elif op in (
            m.ComparisonOperator.CONTAINS,
            m.ComparisonOperator.NOT_CONTAINS,
            m.ComparisonOperator.STARTS_WITH,
        ):
            if len(values) != 1:
                self.add(vpath, f"{op.value} needs exactly one value")
            elif not isinstance(values[0], str) or not values[0]:
                self.add(f"{vpath}[0]", f"{op.value} needs a non-empty string value")
        elif len(values) != 1:
            self.add(vpath, f"{op.value} needs exactly one value")

    def ordered_pair(self, values: tuple[m.Scalar, ...], path: str) -> None:
        if len(values) != 2:
            self.add(path, "BETWEEN needs exactly two values")
            return
        low, high = values
        if not (_is_orderable(low) and _is_orderable(high)):
            self.add(path, "BETWEEN needs two number values or two time values")
        elif isinstance(low, datetime) != isinstance(high, datetime):
            self.add(path, "BETWEEN needs two values of the same type")
        elif low > high:  # type: ignore[operator]
            self.add(path, "BETWEEN needs the lower value first")

    def aggregate(self, a: m.Aggregate, path: str) -> None:
        if a.function == m.AggregateFunction.COUNT:
            if a.property:
                self.add(f"{path}.property", "COUNT takes no property")
        else:
            problem = property_name_problem(a.property)
            if problem:
                self.add(f"{path}.property", f"{a.function.value} needs a property: {problem}")
        if a.operator not in m.AGGREGATE_OPERATORS:
            self.add(
                f"{path}.operator",
                "must be one of EQUALS, NOT_EQUALS, GREATER_THAN(_OR_EQUAL), "
                "LESS_THAN(_OR_EQUAL), BETWEEN",
            )
        elif a.operator == m.ComparisonOperator.BETWEEN:
            self.ordered_pair(tuple(a.values), f"{path}.values")
        elif len(a.values) != 1:
            self.add(f"{path}.values", f"{a.operator.value} needs exactly one value")
        for i, v in enumerate(a.values):
            if not math.isfinite(v):
                self.add(f"{path}.values[{i}]", "must be a finite number")
        if a.include_non_performers and (
            a.operator not in m.LESS_OPERATORS
            or a.function in (m.AggregateFunction.MIN, m.AggregateFunction.MAX)
        ):
            self.add(
                f"{path}.include_non_performers",
                "only for COUNT, SUM or AVG with LESS_THAN or LESS_THAN_OR_EQUAL",
            )

    def segment_ref(self, name: str, path: str) -> None:
        ref = try_parse_segment_name(name)
        if ref is None:
            self.add(path, f"must be projects/{{project}}/segments/{{segment}}, got {name!r}")
        elif ref.project_id != self.project_id:
            self.add(path, f"must be a segment of projects/{self.project_id}")

    def url(self, u: m.UrlMatch, path: str) -> None:
        if not u.pattern:
            self.add(f"{path}.pattern", "is required")
        elif len(u.pattern) > limits.MAX_PATTERN_LENGTH:
            self.add(f"{path}.pattern", f"at most {limits.MAX_PATTERN_LENGTH} characters")
        elif _CONTROL.search(u.pattern):
            self.add(f"{path}.pattern", "must not contain control characters")
        elif u.operator == m.UrlMatchOperator.MATCHES:
            try:
                compile_re2(u.pattern)
            except PatternError as exc:
                self.add(f"{path}.pattern", f"not a valid RE2 regular expression: {exc}")

    # --- trees ------------------------------------------------------------------------------

    def node(self, n: m.Node, path: str, depth: int) -> None:
        self.nodes += 1
        if depth > limits.MAX_TREE_DEPTH:
            self.too_deep = True
            return
        if n.condition is not None:
            self.condition(n.condition, path)
            return
        if n.operator == m.BooleanOperator.NOT and len(n.children) != 1:
            self.add(f"{path}.children", "NOT takes exactly one child")
        elif not n.children:
            self.add(
                f"{path}.children",
                f"{n.operator.value if n.operator else 'a group'} takes at least one child",
            )
        for i, child in enumerate(n.children):
            self.node(child, f"{path}.children[{i}]", depth + 1)

    def condition(self, c: m.Condition, path: str) -> None:
        match c:
            case m.DidEvent(event=e, window=w, aggregate=a):
                p = f"{path}.did_event"
                self.event(e, f"{p}.event")
                self.window(w, f"{p}.window")
                if a is not None:
                    self.aggregate(a, f"{p}.aggregate")
            case m.DidNotEvent(event=e, window=w):
                self.event(e, f"{path}.did_not_event.event")
                self.window(w, f"{path}.did_not_event.window")
            case m.Inaction(did=a, did_not=b, window=w, within=t):
                p = f"{path}.inaction"
                self.event(a, f"{p}.did")
                self.event(b, f"{p}.did_not")
                self.window(w, f"{p}.window")
                self.duration(t, f"{p}.within")
            case m.FirstTime(event=e, window=w):
                self.event(e, f"{path}.first_time.event")
                self.window(w, f"{path}.first_time.window")
            case m.Sequence(steps=steps, window=w, within=t):
                p = f"{path}.sequence"
                if len(steps) < 2:
                    self.add(f"{p}.steps", "a sequence needs at least two steps")
                elif len(steps) > limits.MAX_SEQUENCE_STEPS:
                    self.add(f"{p}.steps", f"at most {limits.MAX_SEQUENCE_STEPS} steps")
                for i, s in enumerate(steps):
                    self.event(s, f"{p}.steps[{i}]")
                self.window(w, f"{p}.window")
                self.duration(t, f"{p}.within")
            case m.UserProperty(filter=f):
                self.property_filter(f, f"{path}.user_property")
            case m.InSegment(segment=s):
                self.segment_ref(s, f"{path}.in_segment.segment")

    def past_behavior(self, q: m.PastBehaviorQuery, path: str) -> None:
        if q.root is None and not q.included_segments:
            self.add(f"{path}.root", "is required unless at least one segment is included")
        for field, names in (
            ("included_segments", q.included_segments),
            ("excluded_segments", q.excluded_segments),
        ):
            for i, name in enumerate(names):
                self.segment_ref(name, f"{path}.{field}[{i}]")
        for i, name in enumerate(q.excluded_segments):
            if name in q.included_segments:
                self.add(f"{path}.excluded_segments[{i}]", "is also included")
        if q.root is not None:
            self.nodes, self.too_deep = 0, False
            self.node(q.root, f"{path}.root", 1)
            if self.too_deep:
                self.add(f"{path}.root", f"the tree is deeper than {limits.MAX_TREE_DEPTH} levels")
            if self.nodes > limits.MAX_NODES:
                self.add(f"{path}.root", f"the tree has more than {limits.MAX_NODES} nodes")
        if len(m.referenced_segments(q)) > limits.MAX_REFERENCED_SEGMENTS:
            self.add(path, f"references more than {limits.MAX_REFERENCED_SEGMENTS} segments")

    def trigger(self, t: m.LiveTrigger, path: str) -> None:
        match t:
            case m.SingleActionTrigger(event=e):
                self.event(e, f"{path}.single_action")
            case m.InactionWithinTrigger(did=a, did_not=b, within=w):
                p = f"{path}.inaction_within"
                self.event(a, f"{p}.did")
                self.event(b, f"{p}.did_not")
                self.duration(w, f"{p}.within")
            case m.DateTrigger(property=prop, days_from_today=days):
                problem = property_name_problem(prop)
                if problem:
                    self.add(f"{path}.on_date.property", problem)
                if abs(days) > 36_500:
                    self.add(f"{path}.on_date.days_from_today", "at most 36,500 days either way")
            case m.PageVisitTrigger(url=u):
                self.url(u, f"{path}.page_visit")
            case m.ReferrerTrigger(referrer_url=r, campaign=c):
                if r is not None:
                    self.url(r, f"{path}.referrer.referrer_url")
                if c is not None:
                    self.url(c, f"{path}.referrer.campaign")
            case m.PageCountTrigger(pages=pages, window=w):
                if pages < 1:
                    self.add(f"{path}.page_count.pages", "must be at least 1")
                if w is not None:
                    self.offset(w, f"{path}.page_count.window")

    def reentry(self, r: m.Reentry, path: str) -> None:
        if r.mode != m.ReentryMode.AFTER_COOLDOWN:
            if r.cooldown is not None:
                self.add(f"{path}.cooldown", "only REENTRY_MODE_AFTER_COOLDOWN takes a cooldown")
        elif r.cooldown is None:
            self.add(f"{path}.cooldown", "REENTRY_MODE_AFTER_COOLDOWN needs a cooldown")
        elif not timedelta(0) < r.cooldown <= limits.MAX_REENTRY_COOLDOWN:
            self.add(f"{path}.cooldown", "must be positive and at most 366 days")

    def definition(self, d: m.Definition, path: str) -> None:
        match d:
            case m.PastBehaviorQuery():
                self.past_behavior(d, f"{path}.past_behavior")
            case m.LiveDefinition(trigger=t, past_behavior=q, reentry=r):
                self.trigger(t, f"{path}.live.trigger")
                if q is not None:
                    self.past_behavior(q, f"{path}.live.past_behavior")
                self.reentry(r, f"{path}.live.reentry")
            case m.CustomListDefinition():
                pass
            case m.PartnerDefinition(partner=partner, external_cohort_id=cohort):
                problem = name_problem(partner, "partner")
                if problem:
                    self.add(f"{path}.partner.partner", problem)
                problem = name_problem(cohort, "external cohort id")
                if problem:
                    self.add(f"{path}.partner.external_cohort_id", problem)
            case m.SystemDefinition():
                self.add(f"{path}.system", "system segments are built in and cannot be written")


def _is_orderable(value: m.Scalar) -> bool:
    return isinstance(value, datetime) or (isinstance(value, float) and not isinstance(value, bool))


def definition_violations(
    definition: m.Definition, path: str, project_id: str, time_zone: str = "UTC"
) -> list[FieldViolation]:
    """Every violation of `definition` (empty when valid); paths start with `path`.
    `time_zone` is the project's: the midnight a date in a time window stands for."""
    checker = _Checker(project_id, time_zone)
    checker.definition(definition, path)
    return checker.violations
