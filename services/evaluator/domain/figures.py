"""A segment's figures as of an instant (ComputeSegmentFigures): member count, members
reachable on each channel, and a stable sample, in one evaluation of the members joined with
their profiles. Pure: every value is a bound parameter, never SQL text.

Shape:

    SELECT count(), countIf(<reachable on channel 1>), ..., groupArraySorted(100)(
        (MD5(m.user_id), m.user_id))
    FROM (<members>) AS m
    LEFT JOIN (<each member's profile as of the instant>) AS p ON p.user_id = m.user_id

Reachability on a channel: the profile has the channel's address or token (e-mail and SMS
fall back to the profile's email and phone), is neither unsubscribed nor blocked on that
channel, and the user is not blocked (a blocked user is blocked on every channel). Blocked
users still count in the size. A member without a profile is reachable nowhere.

The sample is the members first in MD5(user_id) byte order (then user id): a stable hash
order that any reader can recompute (`sample_key`), not a random sort of everyone.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from services.evaluator.domain.compiler import CompiledQuery, EvaluationContext
from services.evaluator.domain.compiler_predicates import to_ms

#: Channels as the profile maps key them (the Channel enum names without CHANNEL_).
CHANNELS = ("MOBILE_PUSH", "WEB_PUSH", "EMAIL", "SMS", "WHATSAPP", "IN_APP")
#: The address a channel falls back to when the profile names none for it.
FALLBACK_ADDRESS = {"EMAIL": "email", "SMS": "phone"}
#: Members kept in the sample the query returns (callers take a prefix).
MAX_SAMPLE = 100

_M = "fig_m"
_P = "fig_p"
_PROFILE_COLUMNS = (
    "blocked", "email", "phone", "channel_address", "channel_unsubscribed", "channel_blocked",
)  # fmt: skip


@dataclass(frozen=True)
class ChannelProfile:
    """What reachability reads of a profile (a pure mirror of the SQL rule)."""

    blocked: bool = False
    email: str = ""
    phone: str = ""
    address: Mapping[str, str] = field(default_factory=dict)
    unsubscribed: Mapping[str, bool] = field(default_factory=dict)
    channel_blocked: Mapping[str, bool] = field(default_factory=dict)


def reachable(profile: ChannelProfile | None, channel: str) -> bool:
    """Whether a member with `profile` (None: no profile) is reachable on `channel`."""
    if profile is None or profile.blocked:
        return False
    address = profile.address.get(channel, "")
    fallback = FALLBACK_ADDRESS.get(channel)
    if not address and fallback is not None:
        address = getattr(profile, fallback)
    return (
        bool(address)
        and not profile.unsubscribed.get(channel, False)
        and not (profile.channel_blocked.get(channel, False))
    )


def sample_key(user_id: str) -> tuple[bytes, str]:
    """The order of the sample: MD5 of the user id's UTF-8 bytes, then the user id."""
    return hashlib.md5(user_id.encode(), usedforsecurity=False).digest(), user_id


def stable_sample(user_ids: Iterable[str], size: int) -> list[str]:
    """The first `size` of `user_ids` in sample order (what the query returns)."""
    return sorted(set(user_ids), key=sample_key)[:size]


@dataclass(frozen=True)
class Figures:
    user_count: int
    reachable: dict[str, int]  # by channel
    sample: list[str]  # in sample order


def reachable_condition(prefix: str, channel: str, key: str) -> str:
    """The reachability rule on `channel` over a profile's columns (`prefix`: "" or "alias."),
    `key` being the channel's bound name."""
    address = f"{prefix}channel_address[{key}]"
    fallback = FALLBACK_ADDRESS.get(channel)
    if fallback is not None:
        address = f"if({address} != '', {address}, {prefix}{fallback})"
    return (
        f"{prefix}blocked = 0 AND {address} != '' AND {prefix}channel_unsubscribed[{key}] = 0 "
        f"AND {prefix}channel_blocked[{key}] = 0"
    )


def _reachable_sql(channel: str) -> str:
    return reachable_condition(f"{_P}.", channel, f"{{fig_ch_{channel}:String}}")


def _profiles(from_versions: bool) -> str:
    if not from_versions:
        return (
            f"SELECT user_id, {', '.join(_PROFILE_COLUMNS)} FROM profiles FINAL "  # noqa: S608
            "WHERE project = {fig_project:String}"
        )
    latest = ", ".join(f"argMax({c}, update_time) AS {c}" for c in _PROFILE_COLUMNS)
    return (
        f"SELECT user_id, {latest} FROM profile_versions "  # noqa: S608
        "WHERE project = {fig_project:String} "
        "AND update_time <= fromUnixTimestamp64Milli({fig_as_of:Int64}, 'UTC') GROUP BY user_id"
    )


def figures_query(members: CompiledQuery, ctx: EvaluationContext) -> CompiledQuery:
    """One row: count, reachable count per channel of CHANNELS (in order), and the sample as
    an array of (hex md5, user_id) tuples."""
    params: dict[str, object] = dict(members.params)
    params["fig_project"] = ctx.project
    if ctx.profiles_as_of:
        params["fig_as_of"] = to_ms(ctx.as_of, "floor")
    for channel in CHANNELS:
        params[f"fig_ch_{channel}"] = channel
    columns = ["count()"]
    columns += [f"countIf({_reachable_sql(c)})" for c in CHANNELS]
    columns.append(f"groupArraySorted({MAX_SAMPLE})((hex(MD5({_M}.user_id)), {_M}.user_id))")
    sql = (
        f"SELECT {', '.join(columns)} FROM ({members.sql}) AS {_M} "  # noqa: S608
        f"LEFT JOIN ({_profiles(ctx.profiles_as_of)}) AS {_P} ON {_P}.user_id = {_M}.user_id "
        "SETTINGS join_use_nulls = 0"
    )
    return CompiledQuery(sql, params)


def figures_from_row(row: Sequence[Any]) -> Figures:
    """The figures of `figures_query`'s one row."""
    reach = {c: int(row[1 + i]) for i, c in enumerate(CHANNELS)}
    return Figures(int(row[0]), reach, [str(pair[1]) for pair in row[1 + len(CHANNELS)]])


def ids_members(ids_param: str) -> str:
    """Members given as a bound array of user ids (`ids_param`'s placeholder name)."""
    return f"SELECT DISTINCT arrayJoin({{{ids_param}:Array(String)}}) AS user_id"


def shared_figures_query(
    shared: CompiledQuery, segment_count: int, ctx: EvaluationContext
) -> CompiledQuery:
    """Over `compiler_shared`'s query (columns user_id, m0..m<n-1>): one row per segment with
    members, `seg` (1-based position) then its count, reachable count per channel of CHANNELS
    and sample (as `figures_query`). Each member's profile is read once for every segment;
    each membership becomes a row of one grouping by segment (a few aggregates over the
    memberships, not a few per segment over every user)."""
    params: dict[str, object] = dict(shared.params)
    params["fig_project"] = ctx.project
    if ctx.profiles_as_of:
        params["fig_as_of"] = to_ms(ctx.as_of, "floor")
    for channel in CHANNELS:
        params[f"fig_ch_{channel}"] = channel
    flags = ", ".join(f"{_M}.m{i}" for i in range(segment_count))
    reach = [f"toUInt8({_reachable_sql(c)}) AS r_{c}" for c in CHANNELS]
    inner = (
        f"SELECT {_M}.user_id AS user_id, [{flags}] AS ms, {', '.join(reach)} "  # noqa: S608
        f"FROM ({shared.sql}) AS {_M} "
        f"LEFT JOIN ({_profiles(ctx.profiles_as_of)}) AS {_P} ON {_P}.user_id = {_M}.user_id"
    )
    columns = ["seg", "count()"]
    columns += [f"countIf(r_{c} = 1)" for c in CHANNELS]
    columns.append(f"groupArraySorted({MAX_SAMPLE})((hex(MD5(user_id)), user_id))")
    sql = (
        f"SELECT {', '.join(columns)} FROM ({inner}) "  # noqa: S608
        "ARRAY JOIN arrayFilter(i -> ms[i] = 1, arrayEnumerate(ms)) AS seg "
        "GROUP BY seg SETTINGS join_use_nulls = 0"
    )
    return CompiledQuery(sql, params)


def shared_figures_from_rows(rows: Sequence[Sequence[Any]], segment_count: int) -> list[Figures]:
    """The figures of each segment, in order (a segment without members has no row)."""
    found = {int(row[0]): figures_from_row(row[1:]) for row in rows}
    empty = Figures(0, dict.fromkeys(CHANNELS, 0), [])
    return [found.get(i + 1, empty) for i in range(segment_count)]
