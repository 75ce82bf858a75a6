"""Ordering, page sizes and page tokens of the listings.

A page token is keyset-based: it carries the sort key value and the id of the last item
returned, plus a fingerprint of the request (parent, filter, search, order). The next page
starts strictly after that (key, id) pair, so rows inserted or deleted between calls never
cause duplicates or gaps among the others, and a token used with another request is refused.
"""

from __future__ import annotations

import base64
import binascii
import enum
import hashlib
import json
from dataclasses import dataclass
from datetime import datetime

from libs.common.errors import InvalidArgument

SortKey = str | int | datetime


class SortField(enum.Enum):
    DISPLAY_NAME = "display_name"
    CREATE_TIME = "create_time"
    UPDATE_TIME = "update_time"
    ENGAGEMENT_COUNT = "engagement_count"
    DEPENDENT_SEGMENT_COUNT = "dependent_segment_count"


@dataclass(frozen=True)
class OrderBy:
    field: SortField
    descending: bool

    def canonical(self) -> str:
        return f"{self.field.value}{' desc' if self.descending else ''}"


DEFAULT_ORDER = OrderBy(SortField.CREATE_TIME, descending=True)


def parse_order_by(text: str, path: str = "order_by") -> OrderBy:
    """`field [asc|desc]`, one of the SortField values; empty means "create_time desc"."""
    words = text.split()
    if not words:
        return DEFAULT_ORDER
    allowed = ", ".join(f.value for f in SortField)
    try:
        sort_field = SortField(words[0])
    except ValueError:
        raise InvalidArgument.field(
            path, f"cannot order by {words[0]!r}; one of {allowed}, optionally with ' desc'"
        ) from None
    if len(words) == 1:
        return OrderBy(sort_field, descending=False)
    if len(words) == 2 and words[1].lower() in ("asc", "desc"):
        return OrderBy(sort_field, descending=words[1].lower() == "desc")
    raise InvalidArgument.field(path, f"expected one of {allowed}, optionally with ' desc'")


def resolve_page_size(requested: int, cap: int, path: str = "page_size") -> int:
    """0 means the cap; above the cap is clamped (AIP-158); negative is refused."""
    if requested < 0:
        raise InvalidArgument.field(path, "must not be negative")
    return cap if requested == 0 else min(requested, cap)


@dataclass(frozen=True)
class Cursor:
    """The position after the last item of a page: its sort key and id."""

    key: SortKey
    last_id: str


def fingerprint(*parts: str) -> str:
    """A short digest of the request fields a page token is bound to."""
    digest = hashlib.sha256("\x1f".join(parts).encode("utf-8")).hexdigest()
    return digest[:16]


def encode_page_token(request_fingerprint: str, cursor: Cursor) -> str:
    key = cursor.key
    if isinstance(key, datetime):
        encoded: dict[str, object] = {"t": "time", "v": key.isoformat()}
    elif isinstance(key, int):
        encoded = {"t": "int", "v": key}
    else:
        encoded = {"t": "str", "v": key}
    payload = {"f": request_fingerprint, "k": encoded, "id": cursor.last_id}
    raw = json.dumps(payload, separators=(",", ":"), sort_keys=True).encode("utf-8")
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def decode_page_token(token: str, request_fingerprint: str, path: str = "page_token") -> Cursor:
    """The cursor of `token`; refused when malformed or issued for another request."""
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        payload = json.loads(raw)
        kind, value = payload["k"]["t"], payload["k"]["v"]
        key: SortKey
        if kind == "time":
            key = datetime.fromisoformat(value)
        elif (kind, type(value)) in (("int", int), ("str", str)):
            key = value
        else:
            raise ValueError(kind)
        last_id = payload["id"]
        issued_for = payload["f"]
        if not isinstance(last_id, str) or not isinstance(issued_for, str):
            raise ValueError("id")
    except (ValueError, KeyError, TypeError, binascii.Error, json.JSONDecodeError):
        raise InvalidArgument.field(path, "not a page token issued by this service") from None
    if issued_for != request_fingerprint:
        raise InvalidArgument.field(
            path, "was issued for a different request (parent, filter, search or order_by)"
        )
    return Cursor(key, last_id)
