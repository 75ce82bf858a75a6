"""Ordering and page sizes of the listings; their page tokens are `libs.common.page_tokens`
(keyset-based, bound to the request: parent, filter, search, order)."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from libs.common.errors import InvalidArgument
from libs.common.page_tokens import (
    Cursor,
    SortKey,
    decode_page_token,
    encode_page_token,
    fingerprint,
)

__all__ = [
    "Cursor",
    "OrderBy",
    "SortField",
    "SortKey",
    "decode_page_token",
    "encode_page_token",
    "fingerprint",
    "parse_order_by",
    "resolve_page_size",
]


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
