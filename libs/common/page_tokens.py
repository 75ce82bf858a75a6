"""Opaque page tokens of every List RPC (AIP-158), bound to the request that produced them.

A token is keyset-based: it carries the sort key value and the id of the last item returned,
plus a fingerprint of the request (the RPC, parent, filter, search, order: whatever selects
and orders the items). The next page starts strictly after that (key, id) pair, so rows
inserted or deleted between calls never cause duplicates or gaps among the others. A token
that is not one, or was issued for another request, is INVALID_ARGUMENT on `page_token`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from dataclasses import dataclass
from datetime import datetime

from libs.common.errors import InvalidArgument

SortKey = str | int | datetime
#: Longer than any token this service issues (the longest sort keys are names and times).
MAX_TOKEN_LENGTH = 4_096


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
    if len(token) > MAX_TOKEN_LENGTH:
        raise InvalidArgument.field(path, "not a page token issued by this service")
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
