"""Where a definition references other segments, and what a reference must satisfy."""

from __future__ import annotations

from collections.abc import Mapping

from libs.common.errors import FieldViolation
from libs.model import definition as m
from services.definition.domain.names import try_parse_segment_name
from services.definition.domain.segment import Segment


def reference_paths(definition: m.Definition, path: str) -> list[tuple[str, str]]:
    """(field path, segment id) of every well-formed reference in `definition`."""
    found: list[tuple[str, str]] = []

    def query(q: m.PastBehaviorQuery, p: str) -> None:
        for field, names in (
            ("included_segments", q.included_segments),
            ("excluded_segments", q.excluded_segments),
        ):
            for i, name in enumerate(names):
                add(name, f"{p}.{field}[{i}]")
        if q.root is not None:
            node(q.root, f"{p}.root")

    def node(n: m.Node, p: str) -> None:
        if isinstance(n.condition, m.InSegment):
            add(n.condition.segment, f"{p}.in_segment.segment")
        for i, child in enumerate(n.children):
            node(child, f"{p}.children[{i}]")

    def add(name: str, p: str) -> None:
        ref = try_parse_segment_name(name)
        if ref is not None:
            found.append((p, ref.segment_id))

    if isinstance(definition, m.PastBehaviorQuery):
        query(definition, f"{path}.past_behavior")
    elif isinstance(definition, m.LiveDefinition) and definition.past_behavior is not None:
        query(definition.past_behavior, f"{path}.live.past_behavior")
    return found


def reference_violations(
    project_id: str,
    references: list[tuple[str, str]],
    existing: Mapping[str, Segment],
) -> list[FieldViolation]:
    """Each reference must name a past-behaviour segment of the same project."""
    violations: list[FieldViolation] = []
    for path, segment_id in references:
        target = existing.get(segment_id)
        if target is None:
            violations.append(
                FieldViolation(path, f"no segment {segment_id!r} in projects/{project_id}")
            )
        elif target.type != m.SegmentType.PAST_BEHAVIOR:
            violations.append(
                FieldViolation(
                    path,
                    f"only past-behaviour segments can be referenced; {target.name} is "
                    f"{target.type.value}",
                )
            )
    return violations
