"""The CSV of an export: RFC 4180 (fields separated by commas, rows ended by CRLF, a field
quoted when it holds a comma, a double quote, CR or LF, quotes inside doubled), UTF-8, a header
row, and spreadsheet formulas neutralised.

Neutralising: a text cell (header names included) that begins with `=`, `+`, `-`, `@`, a tab,
a carriage return, or the full-width forms of the first four (U+FF1D, U+FF0B, U+FF0D, U+FF20)
is prefixed with an apostrophe, which spreadsheets read as "this is text" and do not show.
Number cells are left as they are (a negative number stays a number).

`neutralise` and `quote` state the rules cell by cell (the header uses them). Members come
as Arrow columns, and `encode_chunk` applies the same rules to whole columns with Arrow's
compute functions (native code, no Python object per cell): a column is first searched as
one buffer, so a column holding no special character is passed through untouched.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc

from services.export.domain.ports import CellKind, MemberChunk

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r", "\uff1d", "\uff0b", "\uff0d", "\uff20")
NEUTRALISER = "'"
BYTE_ORDER_MARK = "\ufeff"
ROW_END = "\r\n"
_NEEDS_QUOTES = re.compile('[",\r\n]')
_QUOTED_BYTES = (b'"', b",", b"\r", b"\n")
_PREFIX_BYTES = tuple(p.encode() for p in FORMULA_PREFIXES)
_PREFIX_SET = pa.array(FORMULA_PREFIXES, pa.string())


def neutralise(text: str) -> str:
    """A text cell that a spreadsheet would read as a formula, made inert."""
    return NEUTRALISER + text if text.startswith(FORMULA_PREFIXES) else text


def quote(text: str) -> str:
    """A field as RFC 4180 writes it: quoted (inner quotes doubled) when it must be."""
    if _NEEDS_QUOTES.search(text):
        return '"' + text.replace('"', '""') + '"'
    return text


def text_cell(text: str) -> str:
    return quote(neutralise(text))


def header_row(fields: Sequence[str], byte_order_mark: bool = False) -> str:
    """The header line (with the byte-order mark first when asked for)."""
    cells = [text_cell(f) for f in fields]
    line = ('""' if cells == [""] else ",".join(cells)) + ROW_END
    return BYTE_ORDER_MARK + line if byte_order_mark else line


def _buffer(values: pa.Array) -> pa.Buffer:
    """The characters of every cell of a string column, back to back (no copy)."""
    if len(values) == 0 or values.buffers()[2] is None:
        return pa.py_buffer(b"")
    _, offsets, data = values.buffers()[:3]
    positions = memoryview(offsets).cast("i")
    start, end = positions[values.offset], positions[values.offset + len(values)]
    return data.slice(start, end - start)


def column_cells(values: pa.Array, kinds: pa.Array) -> pa.Array:
    """The CSV fields of one column: `values` (text), `kinds` (the CellKind of each value)."""
    text = pc.not_equal(kinds, CellKind.NUMBER)
    data = _buffer(values).to_pybytes()
    if any(p in data for p in _PREFIX_BYTES):
        first = pc.utf8_slice_codeunits(values, 0, 1)
        risky = pc.and_(pc.is_in(first, value_set=_PREFIX_SET), text)
        if pc.any(risky).as_py():
            values = pc.if_else(risky, pc.binary_join_element_wise(NEUTRALISER, values, ""), values)
    if any(c in data for c in _QUOTED_BYTES):
        special = pc.match_substring_regex(values, '[",\r\n]')
        doubled = pc.replace_substring(values, '"', '""')
        values = pc.if_else(special, pc.binary_join_element_wise('"', doubled, '"', ""), values)
    return values


@dataclass(frozen=True)
class EncodedChunk:
    """The CSV lines of a chunk's members who are not blocked, and how many were left out."""

    data: bytes
    exported: int
    blocked: int


def encode_chunk(chunk: MemberChunk) -> EncodedChunk:
    """One chunk of members as CSV rows (each ended by CRLF); blocked members are left out."""
    rows = len(chunk.blocked)
    blocked = int(pc.sum(chunk.blocked).as_py() or 0)
    exported = rows - blocked
    if not exported or not chunk.columns:
        return EncodedChunk(b"", 0, blocked)
    keep = pc.equal(chunk.blocked, 0) if blocked else None
    cells: list[pa.Array] = []
    for column in chunk.columns:
        values, kinds = column.values, column.kinds
        if keep is not None:
            values, kinds = values.filter(keep), kinds.filter(keep)
        cells.append(column_cells(values, kinds))
    if len(cells) == 1:  # one empty field would make an empty line, which readers skip
        cells[0] = pc.if_else(pc.equal(cells[0], ""), '""', cells[0])
    cells[-1] = pc.binary_join_element_wise(cells[-1], ROW_END, "")
    lines = pc.binary_join_element_wise(*cells, ",") if len(cells) > 1 else cells[0]
    return EncodedChunk(_buffer(lines).to_pybytes(), exported, blocked)
