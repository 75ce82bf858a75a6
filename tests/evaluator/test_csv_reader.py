"""RFC 4180 reading across arbitrary chunk boundaries."""

from __future__ import annotations

from services.evaluator.domain.csv_reader import CsvReader, CsvRecord

DATA = b'id,note\r\n"a,1","say ""hi"""\r\nb,"multi\nline"\r\n\r\nc,x"y\r\n"d,unterminated\ne,ok\n'


def read(data: bytes, size: int) -> list[CsvRecord]:
    reader = CsvReader()
    out: list[CsvRecord] = []
    for i in range(0, len(data), size):
        out.extend(reader.feed(data[i : i + size]))
    out.extend(reader.finish())
    return out


def test_same_records_whatever_the_chunking() -> None:
    whole = read(DATA, len(DATA))
    assert [r.fields for r in whole[:3]] == [["id", "note"], ["a,1", 'say "hi"'],
                                             ["b", "multi\nline"]]  # fmt: skip
    assert whole[3].number == 4 and whole[3].error == "quote inside an unquoted field"
    for size in (1, 2, 3, 7):
        assert read(DATA, size) == whole


def test_unterminated_quote_at_end_and_bad_utf8() -> None:
    records = read(b'ok\n"open', 3)
    assert records[1].error == "unterminated quoted field"
    records = read("é\n".encode()[:1] + b"\nfine\n", 1)
    assert records[0].error == "not valid UTF-8"
    assert records[1].fields == ["fine"]
