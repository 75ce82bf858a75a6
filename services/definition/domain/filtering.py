"""A subset of AIP-160 filters: `field op value` comparisons joined by AND.

Operators `=`, `!=`, `<`, `<=`, `>`, `>=`; AND (also implied by juxtaposition); parentheses
for grouping. OR, NOT and functions are refused. Values are bare words or quoted strings.
Each listing declares its fields and their types; an unknown field, a wrong operator or a
bad value is INVALID_ARGUMENT on the `filter` field, naming the culprit.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

from libs.common.errors import InvalidArgument

FilterValue = str | bool | datetime

_TOKEN = re.compile(
    r"""\s*(?:
        (?P<paren>[()])
      | (?P<op><=|>=|!=|=|<|>|:)
      | "(?P<dq>(?:[^"\\]|\\.)*)"
      | '(?P<sq>(?:[^'\\]|\\.)*)'
      | (?P<word>[^\s()=<>!:"']+)
    )""",
    re.VERBOSE,
)
_EQUALITY = frozenset({"=", "!="})
_ORDERING = frozenset({"=", "!=", "<", "<=", ">", ">="})


class FieldType(enum.Enum):
    STRING = "string"
    ENUM = "enum"
    BOOL = "bool"
    TIMESTAMP = "timestamp"


@dataclass(frozen=True)
class FieldSpec:
    type: FieldType
    operators: frozenset[str] = _EQUALITY
    #: For ENUM fields: accepted values (short form), and a prefix also accepted.
    values: frozenset[str] = field(default_factory=frozenset)
    prefix: str = ""


@dataclass(frozen=True)
class Clause:
    field: str
    operator: str
    value: FilterValue


@dataclass(frozen=True)
class _Token:
    kind: str  # paren | op | string | word
    text: str


def _tokens(text: str, path: str) -> list[_Token]:
    out: list[_Token] = []
    pos = 0
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        match = _TOKEN.match(text, pos)
        if match is None or match.end() == pos:
            raise InvalidArgument.field(path, f"cannot parse the filter at position {pos}")
        pos = match.end()
        if match.group("paren"):
            out.append(_Token("paren", match.group("paren")))
        elif match.group("op"):
            out.append(_Token("op", match.group("op")))
        elif match.group("dq") is not None or match.group("sq") is not None:
            raw = match.group("dq") if match.group("dq") is not None else match.group("sq")
            out.append(_Token("string", re.sub(r"\\(.)", r"\1", raw)))
        else:
            out.append(_Token("word", match.group("word")))
    return out


class _Parser:
    def __init__(self, tokens: list[_Token], fields: Mapping[str, FieldSpec], path: str) -> None:
        self.tokens = tokens
        self.pos = 0
        self.fields = fields
        self.path = path
        self.clauses: list[Clause] = []

    def fail(self, description: str) -> InvalidArgument:
        return InvalidArgument.field(self.path, description)

    def peek(self) -> _Token | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self) -> _Token:
        token = self.peek()
        if token is None:
            raise self.fail("the filter ends too early")
        self.pos += 1
        return token

    def expression(self, depth: int) -> None:
        self.term(depth)
        while True:
            token = self.peek()
            if token is None or (token.kind == "paren" and token.text == ")"):
                return
            if token.kind == "word" and token.text == "AND":
                self.pos += 1
            elif token.kind == "word" and token.text in ("OR", "NOT"):
                raise self.fail(f"{token.text} is not supported; join comparisons with AND")
            self.term(depth)

    def term(self, depth: int) -> None:
        token = self.take()
        if token.kind == "paren" and token.text == "(":
            if depth > 20:
                raise self.fail("too many nested parentheses")
            self.expression(depth + 1)
            closing = self.take()
            if closing.text != ")":
                raise self.fail("a parenthesis is not closed")
            return
        if token.kind != "word" or token.text in ("AND", "OR", "NOT") or token.text == "-":
            raise self.fail(f"expected a field name, got {token.text!r}")
        name = token.text
        spec = self.fields.get(name)
        if spec is None:
            known = ", ".join(sorted(self.fields))
            raise self.fail(f"unknown field {name!r}; filterable fields: {known}")
        op = self.take()
        if op.kind != "op" or op.text == ":":
            raise self.fail(f"expected a comparison operator after {name!r}")
        if op.text not in spec.operators:
            allowed = " ".join(sorted(spec.operators))
            raise self.fail(f"field {name!r} takes the operators {allowed}, not {op.text!r}")
        value = self.take()
        if value.kind not in ("word", "string"):
            raise self.fail(f"expected a value after {name} {op.text}")
        self.clauses.append(Clause(name, op.text, self.convert(name, spec, value.text)))

    def convert(self, name: str, spec: FieldSpec, raw: str) -> FilterValue:
        if spec.type == FieldType.STRING:
            return raw
        if spec.type == FieldType.BOOL:
            if raw.lower() in ("true", "false"):
                return raw.lower() == "true"
            raise self.fail(f"field {name!r} takes true or false, got {raw!r}")
        if spec.type == FieldType.ENUM:
            short = raw.upper().removeprefix(spec.prefix)
            if short in spec.values:
                return short
            allowed = ", ".join(sorted(spec.values))
            raise self.fail(f"field {name!r} takes one of {allowed}, got {raw!r}")
        try:
            moment = datetime.fromisoformat(raw)
            moment.astimezone(UTC)  # within what a UTC datetime holds
        except (ValueError, OverflowError):
            moment = None
        if moment is None or moment.tzinfo is None:
            raise self.fail(
                f"field {name!r} takes an RFC 3339 time with offset, such as "
                f'"2026-01-01T00:00:00Z", got {raw!r}'
            )
        return moment


def parse_filter(text: str, fields: Mapping[str, FieldSpec], path: str = "filter") -> list[Clause]:
    """The comparisons of `text` (all must hold); [] for an empty filter."""
    if len(text) > 2_000:
        raise InvalidArgument.field(path, "at most 2,000 characters")
    tokens = _tokens(text, path)
    if not tokens:
        return []
    parser = _Parser(tokens, fields, path)
    parser.expression(0)
    if parser.peek() is not None:
        raise parser.fail(f"unexpected {parser.peek().text!r}")  # type: ignore[union-attr]
    return parser.clauses


SEGMENT_FILTER_FIELDS: Mapping[str, FieldSpec] = {
    "type": FieldSpec(
        FieldType.ENUM,
        values=frozenset({"PAST_BEHAVIOR", "LIVE", "CUSTOM_LIST", "PARTNER", "SYSTEM"}),
        prefix="SEGMENT_TYPE_",
    ),
    "has_goals": FieldSpec(FieldType.BOOL),
    "creator": FieldSpec(FieldType.STRING),
    "updater": FieldSpec(FieldType.STRING),
    "display_name": FieldSpec(FieldType.STRING),
    "segment_id": FieldSpec(FieldType.STRING),
    "create_time": FieldSpec(FieldType.TIMESTAMP, operators=_ORDERING),
    "update_time": FieldSpec(FieldType.TIMESTAMP, operators=_ORDERING),
}

USAGE_FILTER_FIELDS: Mapping[str, FieldSpec] = {
    "kind": FieldSpec(
        FieldType.ENUM,
        values=frozenset({"CAMPAIGN", "JOURNEY", "GOAL", "INTENT_GOAL"}),
        prefix="USAGE_KIND_",
    ),
    "status": FieldSpec(
        FieldType.ENUM,
        values=frozenset({"DRAFT", "SCHEDULED", "ACTIVE", "STOPPED", "COMPLETED"}),
        prefix="USAGE_STATUS_",
    ),
}
