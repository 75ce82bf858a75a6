"""Incremental RFC 4180 CSV reading for custom-list uploads (pure; memory bounded by one row).

Records are numbered from 1 in file order (a header row is record 1). Quoted fields may hold
commas, doubled quotes and line breaks; rows end with CRLF or LF. A UTF-8 byte-order mark at
the start of the file is skipped. A malformed record (stray
quote, text after a closing quote, unterminated quote, invalid UTF-8) is reported with its
number and reading resumes at the next line.
"""

from __future__ import annotations

import codecs
import enum
from dataclasses import dataclass

MAX_FIELD = 4096


@dataclass(frozen=True)
class CsvRecord:
    number: int
    fields: list[str]
    error: str | None = None


class _State(enum.Enum):
    FIELD_START = 0
    UNQUOTED = 1
    QUOTED = 2
    QUOTE_IN_QUOTED = 3
    SKIP = 4


class CsvReader:
    def __init__(self) -> None:
        # "utf-8-sig": a byte-order mark at the start is not part of the first field
        self._decoder = codecs.getincrementaldecoder("utf-8-sig")(errors="replace")
        self._state = _State.FIELD_START
        self._field: list[str] = []
        self._fields: list[str] = []
        self._error: str | None = None
        self._number = 0
        self._after_cr = False
        self._started = False

    def feed(self, data: bytes) -> list[CsvRecord]:
        return self._consume(self._decoder.decode(data))

    def finish(self) -> list[CsvRecord]:
        out = self._consume(self._decoder.decode(b"", final=True))
        if self._state is _State.QUOTED:
            self._fail("unterminated quoted field")
        if self._started or self._fields or self._field:
            out.extend(self._end_record())
        return out

    def _fail(self, reason: str) -> None:
        if self._error is None:
            self._error = reason
        self._state = _State.SKIP

    def _end_field(self) -> None:
        value = "".join(self._field)
        if "\ufffd" in value:
            self._fail("not valid UTF-8")
        self._fields.append(value)
        self._field = []

    def _end_record(self) -> list[CsvRecord]:
        if self._state is not _State.SKIP:
            self._end_field()
        fields, error = self._fields, self._error
        self._fields, self._field, self._error = [], [], None
        self._state = _State.FIELD_START
        self._started = False
        if error is None and fields == [""]:
            return []  # blank line
        self._number += 1
        return [CsvRecord(self._number, fields if error is None else [], error)]

    def _consume(self, text: str) -> list[CsvRecord]:
        out: list[CsvRecord] = []
        for ch in text:
            if self._after_cr:
                self._after_cr = False
                if ch == "\n":
                    continue
            state = self._state
            if ch in "\r\n" and state is not _State.QUOTED:
                self._after_cr = ch == "\r"
                out.extend(self._end_record())
                continue
            self._started = True
            if state is _State.SKIP:
                continue
            if state is _State.FIELD_START:
                if ch == '"':
                    self._state = _State.QUOTED
                elif ch == ",":
                    self._end_field()
                else:
                    self._field.append(ch)
                    self._state = _State.UNQUOTED
            elif state is _State.UNQUOTED:
                if ch == ",":
                    self._end_field()
                    self._state = _State.FIELD_START
                elif ch == '"':
                    self._fail("quote inside an unquoted field")
                else:
                    self._field.append(ch)
            elif state is _State.QUOTED:
                if ch == '"':
                    self._state = _State.QUOTE_IN_QUOTED
                else:
                    self._field.append(ch)
            elif ch == '"':  # QUOTE_IN_QUOTED: a doubled quote
                self._field.append('"')
                self._state = _State.QUOTED
            elif ch == ",":
                self._end_field()
                self._state = _State.FIELD_START
            else:
                self._fail("text after a closing quote")
            if len(self._field) > MAX_FIELD:
                self._fail(f"field longer than {MAX_FIELD} characters")
        return out
