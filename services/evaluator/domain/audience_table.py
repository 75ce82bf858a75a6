"""A segment's members as a table for exports (StreamAudienceTable): the SQL, and the rules of
the requested fields. Pure: property names are bound parameters, never SQL text.

Shape (one evaluation of the members, joined with their profiles):

    SELECT m.user_id, p.blocked, <per field i: its text AS f<i>, its kind AS k<i>>
    FROM (<members>) AS m
    LEFT JOIN (<each member's profile as of the instant>) AS p ON p.user_id = m.user_id
    ORDER BY m.user_id

Profiles are read as they were at the evaluated instant, as the compiler reads them: the
current state (`profiles FINAL`) when no profile of the project changed since, else each
user's latest version at or before it (`profile_versions`). A member with no profile has
empty fields and is not blocked (join_use_nulls = 0 gives the column defaults). A property
lives in the map of its ingested type, so its kind is the map that holds it; values are
rendered as text by the engine.
"""

from __future__ import annotations

from collections.abc import Sequence

from libs.common.errors import FieldViolation, InvalidArgument
from services.evaluator.domain.compiler import CompiledQuery, EvaluationContext
from services.evaluator.domain.compiler_predicates import to_ms
from services.evaluator.domain.records import valid_property_name

#: Fields every profile has; any other field name is a profile property.
BUILTIN_FIELDS = ("user_id", "display_name", "email", "phone")
MAX_FIELDS = 200

# AudienceCellKind numbers
MISSING, TEXT, NUMBER, BOOLEAN, TIME = 0, 1, 2, 3, 4

_MEMBERS = "tbl_m"
_PROFILES = "tbl_p"


def field_violations(fields: Sequence[str], path: str = "fields") -> list[FieldViolation]:
    """What is wrong with a field list: empty, too long, a duplicate, a name no property can
    have."""
    if not fields:
        return [FieldViolation(path, "name at least one field")]
    if len(fields) > MAX_FIELDS:
        return [FieldViolation(path, f"at most {MAX_FIELDS} fields")]
    found: list[FieldViolation] = []
    seen: set[str] = set()
    for i, name in enumerate(fields):
        if name in seen:
            found.append(FieldViolation(f"{path}[{i}]", f"{name!r} is listed twice"))
        elif name not in BUILTIN_FIELDS and not valid_property_name(name):
            found.append(
                FieldViolation(
                    f"{path}[{i}]",
                    "a field is user_id, display_name, email, phone or a property name "
                    "(1-128 letters, digits, spaces, '_-.:$')",
                )
            )
        seen.add(name)
    return found


def check_fields(fields: Sequence[str], path: str = "fields") -> None:
    violations = field_violations(fields, path)
    if violations:
        raise InvalidArgument(
            f"{violations[0].field}: {violations[0].description}", violations=violations
        )


def _property_text(key: str) -> str:
    p = _PROFILES
    return (
        f"multiIf(mapContains({p}.str_props, {key}), {p}.str_props[{key}], "
        f"mapContains({p}.num_props, {key}), toString({p}.num_props[{key}]), "
        f"mapContains({p}.bool_props, {key}), if({p}.bool_props[{key}] = 1, 'true', 'false'), "
        f"mapContains({p}.time_props, {key}), "
        f"concat(replaceOne(toString({p}.time_props[{key}]), ' ', 'T'), 'Z'), '')"
    )


def _property_kind(key: str) -> str:
    p = _PROFILES
    return (
        f"toUInt8(multiIf(mapContains({p}.str_props, {key}), {TEXT}, "
        f"mapContains({p}.num_props, {key}), {NUMBER}, "
        f"mapContains({p}.bool_props, {key}), {BOOLEAN}, "
        f"mapContains({p}.time_props, {key}), {TIME}, {MISSING}))"
    )


_PROFILE_COLUMNS = (
    "blocked", "display_name", "email", "phone", "str_props", "num_props", "bool_props",
    "time_props",
)  # fmt: skip


def _profiles(from_versions: bool) -> str:
    """Each user's profile as of the instant: one row per user with a profile."""
    if not from_versions:
        columns = ", ".join(_PROFILE_COLUMNS)
        return (
            f"SELECT user_id, {columns} FROM profiles FINAL "  # noqa: S608
            "WHERE project = {tbl_project:String}"
        )
    latest = ", ".join(f"argMax({c}, update_time) AS {c}" for c in _PROFILE_COLUMNS)
    return (
        f"SELECT user_id, {latest} FROM profile_versions "  # noqa: S608
        "WHERE project = {tbl_project:String} "
        "AND update_time <= fromUnixTimestamp64Milli({tbl_as_of:Int64}, 'UTC') GROUP BY user_id"
    )


def audience_table_query(
    members: CompiledQuery,
    ctx: EvaluationContext,
    fields: Sequence[str],
) -> CompiledQuery:
    """The members of `members` (one `user_id` column) with `fields` of their profiles as of
    `ctx.as_of`: columns user_id, blocked, then f<i> (text) and k<i> (AudienceCellKind) per
    field."""
    check_fields(fields)
    params: dict[str, object] = dict(members.params)
    params["tbl_project"] = ctx.project
    if ctx.profiles_as_of:
        params["tbl_as_of"] = to_ms(ctx.as_of, "floor")
    select = [f"{_MEMBERS}.user_id AS user_id", f"{_PROFILES}.blocked AS blocked"]
    for i, name in enumerate(fields):
        if name == "user_id":
            text, kind = f"{_MEMBERS}.user_id", f"toUInt8({TEXT})"
        elif name in BUILTIN_FIELDS:
            text = f"{_PROFILES}.{name}"
            kind = f"if({text} = '', toUInt8({MISSING}), toUInt8({TEXT}))"
        else:
            key = f"{{tbl_f{i}:String}}"
            params[f"tbl_f{i}"] = name
            text, kind = _property_text(key), _property_kind(key)
        select += [f"{text} AS f{i}", f"{kind} AS k{i}"]
    sql = (
        f"SELECT {', '.join(select)} FROM ({members.sql}) AS {_MEMBERS} "  # noqa: S608
        f"LEFT JOIN ({_profiles(ctx.profiles_as_of)}) "
        f"AS {_PROFILES} ON {_PROFILES}.user_id = {_MEMBERS}.user_id "
        f"ORDER BY {_MEMBERS}.user_id SETTINGS join_use_nulls = 0"
    )
    return CompiledQuery(sql, dict(params))


def count_query(members: CompiledQuery) -> CompiledQuery:
    return CompiledQuery(
        "SELECT count() FROM (" + members.sql + ")",  # noqa: S608
        dict(members.params),
    )
