"""Daily figures in ClickHouse, beside the events (the evaluator's database).

`report_daily_figures` holds one row per project, segment and day: ReplacingMergeTree on
`computed_at`, so that a re-run of a day (or a back-fill after a definition change) replaces
the day's row. Until the engine merges them a day may have several rows: a read keeps each
day's latest (`ORDER BY day, computed_at DESC LIMIT 1 BY day` within the sort key's range of
one segment, cheaper than FINAL, which merges every part the range touches). The tables are
created at start-up (IF NOT EXISTS: running it again is harmless); their names start with
`report_`, apart from the evaluator's.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

from libs.clickhouse.port import ClickHouse
from services.reporting.domain.figures import DayCount, DayFigures, Source

FIGURES_TABLE = "report_daily_figures"

_CREATE = f"""CREATE TABLE IF NOT EXISTS {FIGURES_TABLE} (
    project LowCardinality(String),
    segment String,
    day Date,
    user_count UInt64,
    reachable Map(LowCardinality(String), UInt64),
    sample Array(String),
    as_of DateTime64(3, 'UTC'),
    source LowCardinality(String),
    definition_version String,
    computed_at DateTime64(3, 'UTC')
) ENGINE = ReplacingMergeTree(computed_at) ORDER BY (project, segment, day)"""

_COLUMNS = (
    "project", "segment", "day", "user_count", "reachable", "sample", "as_of", "source",
    "definition_version", "computed_at",
)  # fmt: skip


_RANGE = (
    "WHERE project = {project:String} AND segment = {segment:String} "
    "AND day >= {start:Date} AND day <= {end:Date} "
    # each day's latest row; one thread (a few hundred rows: starting more costs more)
    "ORDER BY day, computed_at DESC LIMIT 1 BY day SETTINGS max_threads = 1"
)
_READ = f"SELECT {', '.join(_COLUMNS)} FROM {FIGURES_TABLE} {_RANGE}"  # noqa: S608
#: a trend's read: the sizes, without reachability and sample
_READ_COUNTS = (
    "SELECT day, user_count, source, definition_version "  # noqa: S608
    f"FROM {FIGURES_TABLE} {_RANGE}"
)


class FigureStore:
    def __init__(self, ch: ClickHouse) -> None:
        self.ch = ch

    async def create_tables(self) -> None:
        await self.ch.command(_CREATE)

    async def write(self, rows: Sequence[DayFigures]) -> None:
        if not rows:
            return
        await self.ch.insert(
            FIGURES_TABLE,
            _COLUMNS,
            [
                [f.project, f.segment, f.day, f.user_count, dict(f.reachable), list(f.sample),
                 f.as_of, f.source.value, f.definition_version, f.computed_at]
                for f in rows
            ],
        )  # fmt: skip

    async def read(self, project: str, segment: str, start: date, end: date) -> list[DayFigures]:
        """The stored days in [start, end], oldest first."""
        rows = await self.ch.query(
            _READ, {"project": project, "segment": segment, "start": start, "end": end}
        )
        return [
            DayFigures(
                project=r[0], segment=r[1], day=_date(r[2]), user_count=int(r[3]),
                reachable={str(k): int(v) for k, v in r[4].items()}, sample=tuple(r[5]),
                as_of=r[6], source=Source(r[7]), definition_version=r[8], computed_at=r[9],
            )
            for r in rows
        ]  # fmt: skip

    async def counts(self, project: str, segment: str, start: date, end: date) -> list[DayCount]:
        """The stored days' sizes in [start, end], oldest first (nothing more: a trend)."""
        rows = await self.ch.query(
            _READ_COUNTS, {"project": project, "segment": segment, "start": start, "end": end}
        )
        return [DayCount(_date(r[0]), int(r[1]), Source(r[2]), r[3]) for r in rows]


def _date(value: object) -> date:
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value))
