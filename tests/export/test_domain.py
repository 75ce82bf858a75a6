"""The export domain on its own: CSV cell rules (the whole-column Arrow encoding agrees with
the cell-by-cell rules), column lists, names and the job rules."""

from __future__ import annotations

import csv
import io
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from libs.common.errors import FailedPrecondition, InvalidArgument
from services.export.domain.columns import MAX_FIELDS, check_fields
from services.export.domain.csv_cells import (
    BYTE_ORDER_MARK,
    FORMULA_PREFIXES,
    encode_chunk,
    header_row,
    neutralise,
    quote,
)
from services.export.domain.jobs import (
    MAX_ATTEMPTS,
    Destination,
    ExportJob,
    JobState,
    after_lost_worker,
    check_cancellable,
    may_start,
    output_path,
    parse_job_name,
    parse_segment,
    retry_or_fail,
)
from services.export.domain.ports import CellKind, MemberChunk, MemberColumn

TEXT, NUMBER, MISSING = CellKind.TEXT, CellKind.NUMBER, CellKind.MISSING
KINDS = [TEXT, NUMBER, MISSING]
T0 = datetime(2026, 7, 1, tzinfo=UTC)


def chunk(
    columns: list[tuple[list[str], list[int]]], blocked: list[int] | None = None
) -> MemberChunk:
    rows = len(columns[0][0])
    return MemberChunk(
        blocked=pa.array(blocked or [0] * rows, pa.uint8()),
        columns=[
            MemberColumn(pa.array(v, pa.string()), pa.array(k, pa.uint8())) for v, k in columns
        ],
    )


def parse(data: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(data.decode("utf-8"), newline="")))


def expected_cell(value: str, kind: int) -> str:
    """What a reader gets back for a cell: the value, neutralised unless a number."""
    return value if kind == NUMBER else neutralise(value)


# --- cells ------------------------------------------------------------------------------------


@pytest.mark.parametrize("prefix", FORMULA_PREFIXES)
def test_every_formula_prefix_is_neutralised_in_text_cells(prefix: str) -> None:
    assert neutralise(prefix + "1+1") == "'" + prefix + "1+1"
    encoded = encode_chunk(chunk([([prefix + "SUM(A1)", "ok"], [TEXT, TEXT])]))
    assert parse(encoded.data) == [["'" + prefix + "SUM(A1)"], ["ok"]]


def test_numbers_stay_numbers_and_text_that_looks_like_one_does_not() -> None:
    encoded = encode_chunk(chunk([(["-5", "-5", "+3", "", "1e21"], [NUMBER, TEXT, TEXT, MISSING,
                                                                   NUMBER])]))  # fmt: skip
    assert encoded.data == b"-5\r\n'-5\r\n'+3\r\n\"\"\r\n1e21\r\n"


def test_quotes_commas_newlines_and_unicode_follow_rfc_4180() -> None:
    values = ['say "hi"', "a,b", "two\nlines", "cr\rhere", "Zoë 東京 🎉", "plain"]
    encoded = encode_chunk(chunk([(values, [TEXT] * 6), (["x"] * 6, [TEXT] * 6)]))
    assert encoded.data.startswith(b'"say ""hi""",x\r\n"a,b",x\r\n"two\nlines",x\r\n')
    assert parse(encoded.data) == [[v, "x"] for v in values]


def test_a_neutralised_cell_is_quoted_when_it_must_be() -> None:
    encoded = encode_chunk(chunk([(['=HYPERLINK("http://x","y")'], [TEXT]), (["z"], [TEXT])]))
    assert encoded.data == b'"\'=HYPERLINK(""http://x"",""y"")",z\r\n'


def test_blocked_members_are_left_out_and_counted() -> None:
    encoded = encode_chunk(
        chunk([(["u1", "u2", "u3"], [TEXT] * 3), (["1", "2", "3"], [NUMBER] * 3)], [0, 1, 0])
    )
    assert (encoded.exported, encoded.blocked) == (2, 1)
    assert parse(encoded.data) == [["u1", "1"], ["u3", "3"]]
    none_left = encode_chunk(chunk([(["u1"], [TEXT])], [1]))
    assert (none_left.data, none_left.exported, none_left.blocked) == (b"", 0, 1)


def test_one_empty_column_is_written_as_an_empty_quoted_field() -> None:
    encoded = encode_chunk(chunk([(["", "a"], [MISSING, TEXT])]))
    assert parse(encoded.data) == [[""], ["a"]]


def test_header_is_neutralised_and_may_start_with_a_byte_order_mark() -> None:
    assert header_row(["user_id", "-score", "a b"]) == "user_id,'-score,a b\r\n"
    assert header_row(["email"], byte_order_mark=True) == BYTE_ORDER_MARK + "email\r\n"
    assert quote('a"b') == '"a""b"'


cells = st.text(
    alphabet=st.sampled_from([*"ab ,\"\r\n\t=+-@'é東", "\uff1d", "\uff0b", "\uff0d", "\uff20"]),
    max_size=6,
)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.lists(
            st.tuples(cells, st.sampled_from([TEXT, NUMBER, MISSING])), min_size=3, max_size=3
        ),
        min_size=1,
        max_size=8,
    ),
    st.lists(st.booleans(), min_size=8, max_size=8),
)
def test_the_column_encoding_agrees_with_the_cell_rules(
    rows: list[list[tuple[str, int]]], blocked: list[bool]
) -> None:
    rows = [[(v if k != MISSING else "", k) for v, k in row] for row in rows]
    flags = [int(b) for b in blocked[: len(rows)]]
    columns = [([r[i][0] for r in rows], [int(r[i][1]) for r in rows]) for i in range(3)]
    encoded = encode_chunk(chunk(columns, flags))
    kept = [row for row, flag in zip(rows, flags, strict=True) if not flag]
    assert (encoded.exported, encoded.blocked) == (len(kept), sum(flags))
    assert parse(encoded.data) == [[expected_cell(v, k) for v, k in row] for row in kept]


# --- columns ----------------------------------------------------------------------------------


def test_fields_in_order_with_any_property_name() -> None:
    assert check_fields(["email", "user_id", "Plan Tier", "a.b:c$-d"], "f") == (
        "email", "user_id", "Plan Tier", "a.b:c$-d")  # fmt: skip


@pytest.mark.parametrize(
    ("fields", "path"),
    [
        ([], "f"),
        (["x"] * (MAX_FIELDS + 1), "f"),
        (["email", ""], "f[1]"),
        (["email", "city", "email"], "f[2]"),
        (["=cmd|' /C calc'!A0"], "f[0]"),
        (["x" * 129], "f[0]"),
    ],
)
def test_bad_field_lists_are_refused_naming_the_entry(fields: list[str], path: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        check_fields(fields, "f")
    assert caught.value.violations[0].field == path


# --- names and jobs ---------------------------------------------------------------------------


def job(**changes: object) -> ExportJob:
    base = ExportJob("p", "j1", "projects/p/segments/s", ("user_id",), Destination.FILE, False,
                     T0, "ada@example.com", T0, T0)  # fmt: skip
    return replace(base, **changes)  # type: ignore[arg-type]


def test_names_are_parsed_and_paths_are_made_of_checked_parts_only() -> None:
    assert parse_job_name("projects/p-1/exportJobs/abc") == ("p-1", "abc")
    for bad in ("projects/p/exportJobs/../x", "projects/p/exportJobs/a/b", "p/exportJobs/x", ""):
        with pytest.raises(InvalidArgument):
            parse_job_name(bad)
    assert output_path("p", "abc") == "p/abc.csv"
    with pytest.raises(ValueError, match="unsafe"):
        output_path("..", "abc")
    with pytest.raises(InvalidArgument, match="segment of projects/p"):
        parse_segment("projects/q/segments/s", "p", "segment")


def test_finished_jobs_cannot_be_cancelled() -> None:
    for state in (JobState.PENDING, JobState.RUNNING):
        check_cancellable(job(state=state))
    for state in (JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED):
        with pytest.raises(FailedPrecondition):
            check_cancellable(job(state=state))


def test_attempts_run_out_after_lost_workers_and_retries() -> None:
    assert after_lost_worker(job(attempts=MAX_ATTEMPTS - 1)) is JobState.RUNNING
    assert after_lost_worker(job(attempts=MAX_ATTEMPTS)) is JobState.FAILED
    assert retry_or_fail(job(attempts=1)) is JobState.PENDING
    assert retry_or_fail(job(attempts=MAX_ATTEMPTS)) is JobState.FAILED


def test_running_limits_per_project_and_per_segment() -> None:
    lease = T0 + timedelta(seconds=10)
    running = [job(job_id="r1", state=JobState.RUNNING, lease_expires=lease)]
    assert not may_start(job(job_id="n"), running, 2)  # same segment
    other = job(job_id="n", segment="projects/p/segments/t")
    assert may_start(other, running, 2)
    assert not may_start(other, running, 1)  # the project's limit
    assert may_start(job(job_id="n", project="q"), running, 1)  # another project
