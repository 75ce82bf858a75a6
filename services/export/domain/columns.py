"""The columns of an export: which field names a job may ask for."""

from __future__ import annotations

import re
from collections.abc import Sequence

from libs.common.errors import FieldViolation, InvalidArgument

#: Fields every profile has; any other name is a profile property (an empty column for the
#: members who lack it, and for everyone when no profile has it).
BUILTIN_FIELDS = ("user_id", "display_name", "email", "phone")
MAX_FIELDS = 200
#: Names a profile property can have (properties are ingested under this rule).
_PROPERTY_NAME = re.compile(r"[A-Za-z0-9 _\-.:$]{1,128}")


def check_fields(fields: Sequence[str], path: str) -> tuple[str, ...]:
    """The columns, in the caller's order; InvalidArgument naming each bad entry when the list
    is empty or too long, or an entry is empty, repeated or no possible property name."""
    if not 1 <= len(fields) <= MAX_FIELDS:
        raise InvalidArgument.field(path, f"name 1 to {MAX_FIELDS} fields")
    violations: list[FieldViolation] = []
    for i, name in enumerate(fields):
        where = f"{path}[{i}]"
        if not name:
            violations.append(FieldViolation(where, "a field name must not be empty"))
        elif name in fields[:i]:
            violations.append(
                FieldViolation(where, f"{name!r} is already column {fields.index(name) + 1}")
            )
        elif name not in BUILTIN_FIELDS and not _PROPERTY_NAME.fullmatch(name):
            violations.append(
                FieldViolation(
                    where,
                    "must be user_id, display_name, email, phone or a property name "
                    "(1-128 letters, digits, spaces and '_-.:$')",
                )
            )
    if violations:
        head = violations[0]
        raise InvalidArgument(f"{head.field}: {head.description}", violations=violations)
    return tuple(fields)
