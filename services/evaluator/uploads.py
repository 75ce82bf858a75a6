"""Custom-list uploads: stream a CSV, match identities in batches, replace the list.

The members go to a new version of the list, which becomes the list in one write once the
whole upload is read; an upload that fails part-way (a broken stream, a lost connection)
leaves the previous list in place, whole."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime

from libs.common.errors import FieldViolation, InvalidArgument
from libs.model.definition import IdentityKind
from services.evaluator.application import Evaluator
from services.evaluator.domain.csv_reader import CsvReader, CsvRecord
from services.evaluator.domain.names import check_user_id
from services.evaluator.domain.records import RowError, normalise_email

BATCH = 5000
MAX_REPORTED = 1000
#: Malformed rows named in the error refusing an upload without a valid row.
MAX_VIOLATIONS = 50
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
_PHONE = re.compile(r"\+[1-9][0-9]{6,14}")


@dataclass
class UploadReport:
    row_count: int = 0
    matched_count: int = 0
    unmatched_count: int = 0
    malformed_count: int = 0
    unmatched_rows: list[int] = field(default_factory=list)
    malformed_rows: list[RowError] = field(default_factory=list)

    def malformed(self, row: int, description: str) -> None:
        self.malformed_count += 1
        if len(self.malformed_rows) < MAX_REPORTED:
            self.malformed_rows.append(RowError(row, "identity", description))

    def unmatched(self, row: int) -> None:
        self.unmatched_count += 1
        if len(self.unmatched_rows) < MAX_REPORTED:
            self.unmatched_rows.append(row)


def _no_valid_row(report: UploadReport) -> InvalidArgument:
    what = (
        "has no data row"
        if report.row_count == 0
        else f"has no valid row ({report.malformed_count} malformed)"
    )
    return InvalidArgument(
        f"the upload {what}; the list is unchanged (set header.allow_empty to empty it)",
        violations=[
            FieldViolation(f"rows[{e.index}].{e.field}", e.description)
            for e in report.malformed_rows[:MAX_VIOLATIONS]
        ]
        or [FieldViolation("chunk", "no data row")],
        reason="LIST_UPLOAD_EMPTY",
        metadata={
            "row_count": str(report.row_count),
            "malformed_count": str(report.malformed_count),
        },
    )


def identity_of(value: str, kind: IdentityKind) -> tuple[str | None, str | None]:
    """(normalised identity, None) or (None, why it is malformed)."""
    value = value.strip()
    if kind is IdentityKind.EMAIL:
        return (normalise_email(value), None) if _EMAIL.fullmatch(value) else (
            None, "not an e-mail address"
        )  # fmt: skip
    if kind is IdentityKind.PHONE:
        phone = re.sub(r"[\s\-().]", "", value)
        return (phone, None) if _PHONE.fullmatch(phone) else (
            None, "not a phone number in E.164 form"
        )  # fmt: skip
    problem = check_user_id(value)
    return (None, f"user id {problem}") if problem else (value, None)


async def upload_custom_list(
    evaluator: Evaluator,
    segment: str,
    has_header_row: bool,
    identity_column: int,
    chunks: AsyncIterator[bytes],
    *,
    allow_empty: bool = False,
) -> UploadReport:
    """Reads the whole upload, then makes its members the list. An upload without a valid
    row leaves the list as it was and is refused with the row report, unless `allow_empty`
    asks for the list to be emptied."""
    name, kind = await evaluator.identity_kind(segment)
    if identity_column < 0:
        raise InvalidArgument.field("header.identity_column", "must be 0 or more")
    report = UploadReport()
    reader = CsvReader()
    pending: list[tuple[int, str]] = []

    async with evaluator.locks(f"list:{name.name}"):
        version = await evaluator.lists.next_upload_version(name.project, name.name)

        async def flush() -> None:
            if not pending:
                return
            identities = list(dict.fromkeys(i for _, i in pending))
            if kind is IdentityKind.USER_ID:
                known = await evaluator.profiles.known_users(name.project, identities)
                matches = {i: [i] for i in known}
            elif kind is IdentityKind.EMAIL:
                matches = await evaluator.profiles.users_by_email(name.project, identities)
            else:
                matches = await evaluator.profiles.users_by_phone(name.project, identities)
            members: set[str] = set()
            for row, identity in pending:
                if identity in matches:
                    report.matched_count += 1
                    members.update(matches[identity])
                else:
                    report.unmatched(row)
            await evaluator.lists.write_upload(name.project, name.name, version, sorted(members))
            pending.clear()

        async def take(records: list[CsvRecord]) -> None:
            for record in records:
                if has_header_row and record.number == 1:
                    continue
                report.row_count += 1
                if record.error is not None:
                    report.malformed(record.number, record.error)
                    continue
                if identity_column >= len(record.fields):
                    report.malformed(
                        record.number,
                        f"row has {len(record.fields)} columns, no column {identity_column}",
                    )
                    continue
                identity, problem = identity_of(record.fields[identity_column], kind)
                if identity is None:
                    report.malformed(record.number, problem or "malformed")
                    continue
                pending.append((record.number, identity))
                if len(pending) >= BATCH:
                    await flush()

        async for chunk in chunks:
            await take(reader.feed(chunk))
        await take(reader.finish())
        await flush()
        if report.row_count == report.malformed_count and not allow_empty:
            raise _no_valid_row(report)
        await evaluator.lists.finish_upload(name.project, name.name, version, datetime.now(UTC))
    return report
