"""Resource names the reporting service accepts, parsed and validated."""

from __future__ import annotations

from libs.model.names import parse_project, parse_segment


def segment_project(value: str, field: str = "segment") -> str:
    """The project of a segment name projects/{project}/segments/{segment}."""
    return parse_segment(value, field).project


__all__ = ["parse_project", "segment_project"]
