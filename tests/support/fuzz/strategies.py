"""The fuzz cases of a method: requests generated from its input descriptor.

Four kinds of input per method:

* "valid": messages drawn by hypothesis from the method's input descriptor, fields filled
  with plausible values (resource names of the fuzzed project, known enum values, sane
  numbers) as often as with hostile ones (extreme numbers, empty, huge, unicode and control
  character strings, unknown enum numbers, extreme timestamps);
* "template": requests known to succeed against the seeded project, as they are and with
  one field (anywhere in the message) replaced by a hostile value;
* "nested": for methods whose input holds a condition tree, trees nested beyond the
  decoder's limit (and just below it), encoded by hand;
* "bytes": raw bytes, random or a generated message with bytes flipped, cut or inserted.

Every call is sent as raw bytes (identity serializers; `calls`). `check_outcome` says what
is wrong with an answer: INTERNAL or UNKNOWN, or an error status without an `ErrorInfo`. The same
engine runs in the test suite (tests/robustness/test_fuzz.py) and as the long run
(`python -m tools.fuzz`).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from google.protobuf import json_format
from google.protobuf.descriptor import Descriptor, FieldDescriptor, MethodDescriptor
from google.protobuf.message import Message
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import seed as hypothesis_seed
from hypothesis import strategies as st

from .messages import (
    DOOMED_PROJECT,
    MAX_DEPTH,
    PROJECT,
    Builder,
    is_repeated,
    message_class,
    nested_type,
)


@dataclass(frozen=True)
class Case:
    """One call: the request bytes (one per message for client-streaming methods)."""

    kind: str  # "valid", "template", "nested", "bytes"
    messages: tuple[bytes, ...]


#: Requests known to succeed, by method name (JSON form), recorded by `seed_project`: the
#: "template" inputs are these with one field replaced by a hostile value (or none).
TEMPLATES: dict[str, list[dict[str, Any]]] = {}


def _spots(message: Message) -> list[tuple[Message, FieldDescriptor]]:
    """Every field set in `message` and the messages inside it: where a mutation may go."""
    found: list[tuple[Message, FieldDescriptor]] = []
    for fd, value in message.ListFields():
        found.append((message, fd))
        if fd.type == FieldDescriptor.TYPE_MESSAGE and not nested_type(fd).GetOptions().map_entry:
            for inner in value if is_repeated(fd) else [value]:
                found += _spots(inner)
    return found


def _assign(message: Message, fd: FieldDescriptor, value: Any) -> None:
    try:
        if fd.type == FieldDescriptor.TYPE_MESSAGE and nested_type(fd).GetOptions().map_entry:
            target = getattr(message, fd.name)
            target.clear()
            target.update(value)
        elif is_repeated(fd):
            del getattr(message, fd.name)[:]
            getattr(message, fd.name).extend(value)
        elif fd.type == FieldDescriptor.TYPE_MESSAGE:
            getattr(message, fd.name).CopyFrom(value)
        else:
            setattr(message, fd.name, value)
    except (ValueError, TypeError):  # a value the message refuses to hold
        message.ClearField(fd.name)


def _templated(method: MethodDescriptor, project: str) -> st.SearchStrategy[Message] | None:
    templates = TEMPLATES.get(method.name)
    if not templates:
        return None
    cls = message_class(method.input_type)
    hostile = Builder(project, hostile=True)

    @st.composite
    def mutated(draw: st.DrawFn) -> Message:
        message = json_format.ParseDict(draw(st.sampled_from(templates)), cls())
        spots = _spots(message)
        if spots:
            target, fd = draw(st.sampled_from(spots))
            value = hostile._value(fd, MAX_DEPTH - 1)
            if value is not None:
                _assign(target, fd, draw(value))
        return message

    return mutated()


def _requests_for(method: MethodDescriptor, project: str) -> st.SearchStrategy[Message]:
    message = st.one_of(
        Builder(project, hostile=False).message(method.input_type),
        Builder(project, hostile=True).message(method.input_type),
    )
    if method.name == "DeleteProject":
        cls = message_class(method.input_type)
        doomed = st.sampled_from([f"projects/{DOOMED_PROJECT}", "projects/nope", "", "x"])
        return doomed.map(lambda n: cls(name=n))
    return message


def valid_cases(method: MethodDescriptor, project: str = PROJECT) -> st.SearchStrategy[Case]:
    requests = _requests_for(method, project)
    if method.client_streaming:
        lists = st.lists(requests, min_size=0, max_size=3)
        return lists.map(lambda ms: Case("valid", tuple(m.SerializeToString() for m in ms)))
    return requests.map(lambda m: Case("valid", (m.SerializeToString(),)))


def template_cases(method: MethodDescriptor, project: str = PROJECT) -> st.SearchStrategy[Case]:
    """Requests known to succeed (`TEMPLATES`), each with one field made hostile; no case at
    all for a method without templates."""
    templated = _templated(method, project)
    if templated is None or method.client_streaming:
        return st.nothing()
    return templated.map(lambda m: Case("template", (m.SerializeToString(),)))


def exact_cases(method: MethodDescriptor) -> list[Case]:
    """The requests known to succeed (`TEMPLATES`), as they are."""
    cls = message_class(method.input_type)
    return [
        Case("template", (json_format.ParseDict(t, cls()).SerializeToString(),))
        for t in TEMPLATES.get(method.name, ())
    ]


def _mutate(data: bytes, rnd: random.Random) -> bytes:
    if not data:
        return bytes(rnd.randrange(256) for _ in range(rnd.randrange(1, 16)))
    buf = bytearray(data)
    for _ in range(rnd.randrange(1, 4)):
        choice = rnd.randrange(4)
        if choice == 0 and buf:
            buf[rnd.randrange(len(buf))] = rnd.randrange(256)
        elif choice == 1 and buf:
            del buf[rnd.randrange(len(buf)) :]
        elif choice == 2:
            at = rnd.randrange(len(buf) + 1)
            buf[at:at] = bytes(rnd.randrange(256) for _ in range(rnd.randrange(1, 8)))
        else:
            buf += rnd.choice([b"\xff", b"\x0a\xff\xff\xff\xff\x0f", b"\x12\x02\xc3\x28", b"\x80"])
    return bytes(buf)


def byte_cases(method: MethodDescriptor, project: str = PROJECT) -> st.SearchStrategy[Case]:
    raw = st.binary(max_size=200)
    mutated = st.tuples(_requests_for(method, project), st.randoms(use_true_random=False)).map(
        lambda p: _mutate(p[0].SerializeToString(), p[1])
    )
    one = st.one_of(raw, mutated)
    if method.client_streaming:
        return st.lists(one, min_size=1, max_size=3).map(lambda ms: Case("bytes", tuple(ms)))
    return one.map(lambda m: Case("bytes", (m,)))


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if not value:
            out.append(byte)
            return bytes(out)
        out.append(byte | 0x80)


def _length_delimited(number: int, payload: bytes) -> bytes:
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def nested_node(depth: int) -> bytes:
    """A condition tree `depth` NOT groups deep around one leaf, encoded by hand."""
    from segments.v1 import definition_model_pb2 as dm

    node = dm.Node(did_event=dm.DidEventCondition(event=dm.EventSpec(event_name="e")))
    data = node.SerializeToString()
    for _ in range(depth):
        data = _varint(1 << 3) + _varint(dm.BOOLEAN_OPERATOR_NOT) + _length_delimited(2, data)
    return data


def node_paths(descriptor: Descriptor, limit: int = 5) -> list[tuple[int, ...]]:
    """Field-number paths from `descriptor` to a condition tree (segments.v1.Node)."""
    found: list[tuple[int, ...]] = []

    def walk(d: Descriptor, path: tuple[int, ...], seen: frozenset[str]) -> None:
        for fd in d.fields:
            if fd.type != FieldDescriptor.TYPE_MESSAGE or nested_type(fd).GetOptions().map_entry:
                continue
            here = (*path, fd.number)
            inner = nested_type(fd)
            if inner.full_name == "segments.v1.Node":
                found.append(here)
            elif len(here) < limit and inner.full_name not in seen:
                walk(inner, here, seen | {inner.full_name})

    walk(descriptor, (), frozenset({descriptor.full_name}))
    return found


def nested_cases(method: MethodDescriptor, project: str = PROJECT) -> list[Case]:
    """For a method whose input holds a condition tree: trees 95 to 140 levels deep."""
    paths = node_paths(method.input_type)
    cases = []
    for path in paths:
        for depth in (60, 95, 97, 101, 140):
            data = nested_node(depth)
            for number in reversed(path):
                data = _length_delimited(number, data)
            if "parent" in method.input_type.fields_by_name:
                data = _length_delimited(1, f"projects/{project}".encode()) + data
            cases.append(Case("nested", (data,)))
    return cases


def draw(strategy: st.SearchStrategy[Case], count: int, seed: int) -> list[Case]:
    """`count` examples of `strategy` (hypothesis generation only: no shrinking, no database;
    none of an empty strategy)."""
    drawn: list[Case] = []
    if strategy.is_empty:
        return drawn

    @hypothesis_seed(seed)
    @settings(
        max_examples=count,
        database=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
        deadline=None,
    )
    @given(strategy)
    def collect(case: Case) -> None:
        drawn.append(case)

    collect()
    return drawn
