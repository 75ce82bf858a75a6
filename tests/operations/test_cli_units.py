"""Pure parts of the command-line client: the trend chart, file records, exit codes."""

from __future__ import annotations

from pathlib import Path

import grpc
import pytest
from PIL import Image

from libs.cli.charts import Point, terminal_bars, write_png
from libs.cli.errors import EXIT_DENIED, EXIT_NOT_FOUND, EXIT_REFUSED, EXIT_SERVER, exit_code
from libs.cli.records import read_events, read_profiles

POINTS = [
    Point("2026-06-01", 10, True),
    Point("2026-06-02", 40, True),
    Point("2026-06-03", 0, False),
    Point("2026-06-04", 20, True),
]


def test_terminal_bars_are_proportional() -> None:
    lines = terminal_bars(POINTS, width=40)
    assert lines[1].startswith("2026-06-02  " + "█" * 40)
    assert lines[0].count("█") == 10 and lines[3].count("█") == 20
    assert lines[2].endswith("not computed")
    assert terminal_bars([Point("2026-06-01", 0, True)])[0].endswith("  0")


def test_png_chart(tmp_path: Path) -> None:
    path = tmp_path / "trend.png"
    write_png(POINTS, "projects/p/segments/s: users a day", path)
    with Image.open(path) as image:
        assert image.format == "PNG" and image.size == (960, 480)
        # Bars are drawn in the bar colour.
        assert (59, 111, 182) in {c for _, c in image.getcolors(maxcolors=100_000) or []}
    write_png([], "empty", tmp_path / "empty.png")
    assert (tmp_path / "empty.png").stat().st_size > 0


def test_records_with_types_and_problems(tmp_path: Path) -> None:
    events = tmp_path / "e.csv"
    events.write_text(
        "event_id,user_id,event_name,event_time,n:number,ok:bool,at:time,note\n"
        "a,u1,E,2026-06-01T00:00:00Z,1.5,yes,2026-06-01T01:00:00Z,\n"
        "b,u1,E,2026-06-01T00:00:00Z,inf,yes,,x\n"
        "c,u1,E,2026-06-01T00:00:00Z,1,maybe,,x\n"
    )
    rows = list(read_events(str(events), "csv"))
    first = rows[0].message
    assert first.properties["n"].number_value == 1.5
    assert first.properties["ok"].bool_value is True
    assert first.properties["at"].time_value.seconds > 0
    assert "note" not in first.properties  # empty cell: left out
    assert [r.line for r in rows if r.error] == [3, 4]
    assert "finite" in rows[1].error and "true or false" in rows[2].error
    profiles = tmp_path / "p.jsonl"
    profiles.write_text('{"user_id": "u1", "properties": {"tags": ["a"]}}\n[]\n')
    found = list(read_profiles(str(profiles), "jsonl"))
    assert all(r.error for r in found)


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        (grpc.StatusCode.NOT_FOUND, EXIT_NOT_FOUND),
        (grpc.StatusCode.INVALID_ARGUMENT, EXIT_REFUSED),
        (grpc.StatusCode.ABORTED, EXIT_REFUSED),
        (grpc.StatusCode.PERMISSION_DENIED, EXIT_DENIED),
        (grpc.StatusCode.UNAVAILABLE, EXIT_SERVER),
        (grpc.StatusCode.INTERNAL, EXIT_SERVER),
    ],
)
def test_exit_codes(code: grpc.StatusCode, expected: int) -> None:
    assert exit_code(code) == expected
