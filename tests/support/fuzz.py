"""Fuzzing every RPC of the four services: requests generated from the message descriptors.

Three kinds of input per method:

* "valid": messages drawn by hypothesis from the method's input descriptor, fields filled
  with plausible values (resource names of the fuzzed project, known enum values, sane
  numbers) as often as with hostile ones (extreme numbers, empty, huge, unicode and control
  character strings, unknown enum numbers, extreme timestamps);
* "template": requests known to succeed against the seeded project, half of them with one
  field (anywhere in the message) replaced by a hostile value;
* "nested": for methods whose input holds a condition tree, trees nested beyond the
  decoder's limit (and just below it), encoded by hand;
* "bytes": raw bytes, random or a generated message with bytes flipped, cut or inserted.

Every call is sent as raw bytes (identity serializers). `check_outcome` says what is wrong
with an answer: INTERNAL or UNKNOWN, or an error status without an `ErrorInfo`. The same
engine runs in the test suite (tests/robustness/test_fuzz.py) and as the long run
(`python -m tools.fuzz`).
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import grpc
from google.protobuf import descriptor_pool, json_format, message_factory
from google.protobuf.descriptor import Descriptor, FieldDescriptor, MethodDescriptor
from google.protobuf.message import Message
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import seed as hypothesis_seed
from hypothesis import strategies as st

from libs.common.status import call_status

# the generated modules register the services in the default pool
from segments.v1 import (  # noqa: F401
    definition_service_pb2,
    evaluator_service_pb2,
    export_service_pb2,
    reporting_service_pb2,
)

SERVICES = (
    "segments.v1.SegmentDefinitionService",
    "segments.v1.SegmentEvaluatorService",
    "segments.v1.SegmentReportingService",
    "segments.v1.SegmentExportService",
)
PROJECT = "fuzz"
#: A project the fuzzed DeleteProject calls may delete.
DOOMED_PROJECT = "fuzz-doomed"
#: Segments the fuzz set-up creates in PROJECT (see tests/robustness and tools/fuzz.py).
SEGMENT_IDS = ("buyers", "listed", "partnered", "live-buyers", "nobody")
#: How deep generated messages nest (the "nested" inputs go far deeper, by hand).
MAX_DEPTH = 4
#: How long a response stream may stay silent before the call is cancelled (a watch waits).
STREAM_IDLE_SECONDS = 0.3
#: Codes that are never an acceptable answer.
FORBIDDEN = (grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN)
#: Codes the client or transport produce on their own, without a status from the service.
TRANSPORT_CODES = (grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.CANCELLED)


def all_methods() -> list[MethodDescriptor]:
    pool = descriptor_pool.Default()
    return [m for s in SERVICES for m in pool.FindServiceByName(s).methods]


def method_path(method: MethodDescriptor) -> str:
    return f"/{method.containing_service.full_name}/{method.name}"


def message_class(descriptor: Descriptor) -> type[Message]:
    cls: type[Message] = message_factory.GetMessageClass(descriptor)
    return cls


# --- values -------------------------------------------------------------------------------------

_INT_RANGES = {
    FieldDescriptor.TYPE_INT32: (-(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_SINT32: (-(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_SFIXED32: (-(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_INT64: (-(2**63), 2**63 - 1),
    FieldDescriptor.TYPE_SINT64: (-(2**63), 2**63 - 1),
    FieldDescriptor.TYPE_SFIXED64: (-(2**63), 2**63 - 1),
    FieldDescriptor.TYPE_UINT32: (0, 2**32 - 1),
    FieldDescriptor.TYPE_FIXED32: (0, 2**32 - 1),
    FieldDescriptor.TYPE_UINT64: (0, 2**64 - 1),
    FieldDescriptor.TYPE_FIXED64: (0, 2**64 - 1),
}

#: Strings nobody means, for every string field.
_HOSTILE_TEXT = st.one_of(
    st.just(""),
    st.text(max_size=40),
    st.text(st.characters(codec="utf-8", categories=["Cc", "Zs", "Mn", "So"]), max_size=20),
    st.sampled_from(
        [
            "\x00",
            "a\x00b",
            "\u202eevil",
            "ﬁ",
            "²",
            "٣",
            "\U0001d7d8",
            "'; DROP TABLE segments; --",
            "{x:String}",
            "%s%n",
            "../../etc/passwd",
            " ",
            "\t\n",
            "🙂" * 50,
        ]
    ),
    st.integers(1_000, 70_000).map(lambda n: "x" * n),
)


def _resource_names(project: str) -> list[str]:
    base = f"projects/{project}"
    segments = [f"{base}/segments/{s}" for s in SEGMENT_IDS]
    return [
        base,
        f"projects/{DOOMED_PROJECT}",
        "projects/nope",
        *segments,
        f"{base}/segments/missing",
        f"{base}/segments/buyers/snapshots/1",
        f"{base}/segments/buyers/snapshots/0",
        f"{base}/segments/buyers/snapshots/999999999999",
        f"{base}/segments/buyers/usages/u1",
        f"{base}/profiles/u1",
        f"{base}/profiles/",
        f"{base}/exportJobs/j1",
        f"{base}/dailyRuns/2026-01-01",
        f"{base}/dailyRuns/2026-13-45",
        "apiKeys/00000000beef",
        "apiKeys/",
        "projects/-/segments/-",
    ]


def _hinted_text(name: str, project: str) -> st.SearchStrategy[str]:
    """Plausible values of a string field, by its name."""
    names = _resource_names(project)
    if name in ("parent", "name", "segment", "segments", "included_segments", "excluded_segments"):
        return st.sampled_from(names)
    if name.endswith("_id") or name.endswith("_ids") or name == "user_ids":
        return st.sampled_from(["u1", "u2", "buyers", "new-one", "a" * 63, "x-1"])
    if "event" in name or "property" in name or name in ("key", "label"):
        return st.sampled_from(["purchase", "view", "country", "plan", "amount", "$os"])
    if "time_zone" in name:
        return st.sampled_from(["UTC", "Europe/Paris", "Mars/Base", "+01:00"])
    if name == "filter":
        return st.sampled_from(['kind = "PAST_BEHAVIOR"', "state = ACTIVE", "(", 'x = "'])
    if name in ("page_token", "etag"):
        return st.sampled_from(["", "1", "abc", "²", "-1", "9" * 30])
    return st.sampled_from(["", "a", "fuzz", "purchase", "u1", "country", "FR"])


def _plausible(fd: FieldDescriptor, project: str) -> st.SearchStrategy[Any]:
    """Values a careful client would send."""
    t = fd.type
    if t in _INT_RANGES:
        low = _INT_RANGES[t][0]
        return st.integers(max(low, 0), 100)
    if t == FieldDescriptor.TYPE_BOOL:
        return st.booleans()
    if t in (FieldDescriptor.TYPE_DOUBLE, FieldDescriptor.TYPE_FLOAT):
        return st.sampled_from([0.0, 1.0, 2.5, 100.0])
    if t == FieldDescriptor.TYPE_STRING:
        return _hinted_text(fd.name, project)
    if t == FieldDescriptor.TYPE_BYTES:
        return st.sampled_from([b"user_id\nu1\nu2\n", b"u1\nu3\n", b""])
    if t == FieldDescriptor.TYPE_ENUM:
        return st.sampled_from([v.number for v in _enum(fd).values])
    raise AssertionError(f"unexpected field type {t} of {fd.full_name}")


def _scalar(fd: FieldDescriptor, project: str, hostile: bool = True) -> st.SearchStrategy[Any]:
    if not hostile:
        return _plausible(fd, project)
    t = fd.type
    if t in _INT_RANGES:
        low, high = _INT_RANGES[t]
        edges = sorted({low, high, 0, 1, -1 if low < 0 else 2, 10, 1000, 10_001, 100_000})
        return st.one_of(
            st.sampled_from([v for v in edges if low <= v <= high]), st.integers(low, high)
        )
    if t == FieldDescriptor.TYPE_BOOL:
        return st.booleans()
    if t in (FieldDescriptor.TYPE_DOUBLE, FieldDescriptor.TYPE_FLOAT):
        if t == FieldDescriptor.TYPE_FLOAT:
            return st.one_of(st.sampled_from([0.0, 1.0, -1.0, 0.5, 3e38]), st.floats(width=32))
        return st.one_of(st.sampled_from([0.0, 1.0, -1.0, 0.5, 1e308]), st.floats())
    if t == FieldDescriptor.TYPE_STRING:
        return st.one_of(_hinted_text(fd.name, project), _HOSTILE_TEXT)
    if t == FieldDescriptor.TYPE_BYTES:
        return st.one_of(
            st.binary(max_size=64),
            st.sampled_from(
                [
                    b"user_id\nu1\nu2\n",
                    b"\xef\xbb\xbfuser_id\r\nu1\r\n",
                    b"u1,u2\n\x00\n",
                    b"\xff\xfe\n",
                    b"",
                ]
            ),
        )
    if t == FieldDescriptor.TYPE_ENUM:
        known = [v.number for v in _enum(fd).values]
        return st.one_of(st.sampled_from(known), st.integers(-3, 1_000))
    raise AssertionError(f"unexpected field type {t} of {fd.full_name}")


def _timestamp(cls: type[Message], hostile: bool) -> st.SearchStrategy[Message]:
    if not hostile:
        recent = st.integers(1_700_000_000, 1_900_000_000)
        return st.builds(lambda s, n: cls(seconds=s, nanos=n), recent, st.integers(0, 10**9 - 1))
    seconds = st.one_of(
        st.sampled_from(
            [0, 1_700_000_000, 1_800_000_000, -62_135_596_800, 253_402_300_799, 9_300_000_000]
        ),
        st.integers(-(2**63), 2**63 - 1),
        st.integers(0, 4_000_000_000),
    )
    nanos = st.one_of(
        st.just(0), st.sampled_from([-1, 999_999_999, 10**9]), st.integers(-(2**31), 2**31 - 1)
    )
    return st.builds(lambda s, n: cls(seconds=s, nanos=n), seconds, nanos)


def _duration(cls: type[Message], hostile: bool) -> st.SearchStrategy[Message]:
    if not hostile:
        return st.integers(1, 86_400 * 30).map(lambda s: cls(seconds=s))
    seconds = st.one_of(
        st.sampled_from([0, 1, 60, 86_400, -1, 315_576_000_000, 315_576_000_001]),
        st.integers(-(2**63), 2**63 - 1),
    )
    nanos = st.one_of(st.just(0), st.sampled_from([-1, 999_999_999, 10**9]))
    return st.builds(lambda s, n: cls(seconds=s, nanos=n), seconds, nanos)


def _field_mask(cls: type[Message], target: Descriptor | None) -> st.SearchStrategy[Message]:
    names = [f.name for f in target.fields] if target is not None else []
    paths = st.lists(st.sampled_from([*names, "definition.past_behavior", "nope", "", "*"]))
    return paths.map(lambda p: cls(paths=p))


@dataclass
class _Builder:
    project: str
    #: Hostile values as often as plausible ones; else plausible values only.
    hostile: bool
    cache: dict[tuple[str, int], st.SearchStrategy[Any]] = field(default_factory=dict)

    def message(self, descriptor: Descriptor, depth: int = 0) -> st.SearchStrategy[Message]:
        key = (descriptor.full_name, depth)
        found = self.cache.get(key)
        if found is None:
            found = st.deferred(lambda: self._message(descriptor, depth))
            self.cache[key] = found
        return found

    def _message(self, descriptor: Descriptor, depth: int) -> st.SearchStrategy[Message]:
        cls = message_class(descriptor)
        name = descriptor.full_name
        if name == "google.protobuf.Timestamp":
            return _timestamp(cls, self.hostile)
        if name == "google.protobuf.Duration":
            return _duration(cls, self.hostile)
        if name == "google.protobuf.FieldMask":
            target = descriptor.containing_type
            return _field_mask(cls, target)
        plain: dict[str, st.SearchStrategy[Any]] = {}
        for fd in descriptor.fields:
            if fd.containing_oneof is not None and not _is_synthetic(fd):
                continue
            value = self._value(fd, depth)
            if value is not None:
                plain[fd.name] = st.one_of(st.none(), value)
        oneofs: list[st.SearchStrategy[dict[str, Any]]] = []
        for oneof in descriptor.oneofs:
            if all(_is_synthetic(fd) for fd in oneof.fields):
                continue
            choices: list[st.SearchStrategy[dict[str, Any]]] = [st.just({})]
            for fd in oneof.fields:
                value = self._value(fd, depth)
                if value is not None:
                    choices.append(value.map(_keyed(fd.name)))
            oneofs.append(st.one_of(choices))
        parts = st.tuples(st.fixed_dictionaries(plain), st.tuples(*oneofs))
        return parts.map(lambda p: _build(cls, p[0], p[1]))

    def _value(self, fd: FieldDescriptor, depth: int) -> st.SearchStrategy[Any] | None:
        if fd.type == FieldDescriptor.TYPE_MESSAGE:
            entry = _nested(fd)
            if entry.GetOptions().map_entry:
                keys = _scalar(entry.fields_by_name["key"], self.project, self.hostile)
                value_fd = entry.fields_by_name["value"]
                if value_fd.type == FieldDescriptor.TYPE_MESSAGE:
                    if depth >= MAX_DEPTH:
                        return None
                    values = self.message(_nested(value_fd), depth + 1)
                else:
                    values = _scalar(value_fd, self.project, self.hostile)
                return st.dictionaries(keys, values, max_size=3)
            if depth >= MAX_DEPTH:
                return None
            single = self.message(entry, depth + 1)
        else:
            single = _scalar(fd, self.project, self.hostile)
        if _is_repeated(fd):
            return st.lists(single, max_size=3)
        return single


def _enum(fd: FieldDescriptor) -> Any:
    assert fd.enum_type is not None
    return fd.enum_type


def _nested(fd: FieldDescriptor) -> Descriptor:
    assert fd.message_type is not None
    return fd.message_type


def _keyed(name: str) -> Callable[[Any], dict[str, Any]]:
    return lambda value: {name: value}


def _is_repeated(fd: FieldDescriptor) -> bool:
    return bool(fd.is_repeated)


def _is_synthetic(fd: FieldDescriptor) -> bool:
    """A proto3 `optional` field (its oneof is synthetic)."""
    oneof = fd.containing_oneof
    return oneof is not None and len(oneof.fields) == 1 and oneof.name == f"_{fd.name}"


def _build(cls: type[Message], plain: dict[str, Any], chosen: Iterable[dict[str, Any]]) -> Message:
    values = {k: v for k, v in plain.items() if v is not None}
    for one in chosen:
        values.update(one)
    try:
        return cls(**values)
    except (ValueError, TypeError):  # a value the message refuses to hold (not to send)
        return cls()


# --- inputs -------------------------------------------------------------------------------------


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
        if fd.type == FieldDescriptor.TYPE_MESSAGE and not _nested(fd).GetOptions().map_entry:
            for inner in value if _is_repeated(fd) else [value]:
                found += _spots(inner)
    return found


def _assign(message: Message, fd: FieldDescriptor, value: Any) -> None:
    try:
        if fd.type == FieldDescriptor.TYPE_MESSAGE and _nested(fd).GetOptions().map_entry:
            target = getattr(message, fd.name)
            target.clear()
            target.update(value)
        elif _is_repeated(fd):
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
    hostile = _Builder(project, hostile=True)

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
        _Builder(project, hostile=False).message(method.input_type),
        _Builder(project, hostile=True).message(method.input_type),
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
            if fd.type != FieldDescriptor.TYPE_MESSAGE or _nested(fd).GetOptions().map_entry:
                continue
            here = (*path, fd.number)
            inner = _nested(fd)
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


# --- calls --------------------------------------------------------------------------------------


def _identity(data: bytes) -> bytes:
    return data


@dataclass(frozen=True)
class Outcome:
    code: grpc.StatusCode
    details: str
    error_info: bool


async def _messages(parts: tuple[bytes, ...]) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


async def _drain(call: Any, idle_seconds: float, limit: int) -> None:
    """Reads a response stream until it ends, `limit` messages, or `idle_seconds` without one
    (a stream that waits for news), then cancels it."""
    try:
        for _ in range(limit):
            message = await asyncio.wait_for(call.read(), idle_seconds)
            if message is grpc.aio.EOF:  # type: ignore[attr-defined]
                return
    except TimeoutError:
        pass
    call.cancel()


async def invoke(
    channel: grpc.aio.Channel, method: MethodDescriptor, case: Case, deadline: float = 20.0
) -> Outcome:
    """Sends `case` to `method` and says how it ended."""
    path = method_path(method)
    try:
        if method.client_streaming and method.server_streaming:
            call: Any = channel.stream_stream(path, _identity, _identity)(
                _messages(case.messages), timeout=deadline
            )
            await _drain(call, STREAM_IDLE_SECONDS, 50)
            await call.code()
        elif method.client_streaming:
            await channel.stream_unary(path, _identity, _identity)(
                _messages(case.messages), timeout=deadline
            )
        elif method.server_streaming:
            call = channel.unary_stream(path, _identity, _identity)(
                case.messages[0], timeout=deadline
            )
            await _drain(call, STREAM_IDLE_SECONDS, 50)
            code = await call.code()
            if code not in (grpc.StatusCode.OK, grpc.StatusCode.CANCELLED):
                failure = grpc.aio.AioRpcError(
                    code,
                    await call.initial_metadata(),
                    await call.trailing_metadata(),
                    await call.details(),
                    None,
                )
                return _failed(failure)
        else:
            await channel.unary_unary(path, _identity, _identity)(
                case.messages[0], timeout=deadline
            )
    except grpc.aio.AioRpcError as exc:
        return _failed(exc)
    return Outcome(grpc.StatusCode.OK, "", False)


def _failed(exc: grpc.aio.AioRpcError) -> Outcome:
    try:
        status = call_status(exc)
    except ValueError:  # the status details disagree with the call's code or message
        return Outcome(exc.code(), f"mismatched status details: {exc.details()}", False)
    info = False
    for detail in status.details if status is not None else ():
        if detail.TypeName() == "google.rpc.ErrorInfo":
            info = True
    return Outcome(exc.code(), exc.details() or "", info)


def check_outcome(outcome: Outcome) -> str | None:
    """What is wrong with an answer, or None."""
    if outcome.code in FORBIDDEN:
        return f"{outcome.code.name}: {outcome.details}"
    if outcome.code is grpc.StatusCode.OK or outcome.code in TRANSPORT_CODES:
        return None
    if not outcome.error_info:
        return f"{outcome.code.name} without ErrorInfo: {outcome.details}"
    return None


@dataclass(frozen=True)
class Finding:
    method: str
    kind: str
    problem: str
    request: str  # hex of the first 300 bytes of each message

    def __str__(self) -> str:
        return f"{self.method} [{self.kind}] {self.problem}\n    request: {self.request}"


async def run_cases(
    channel: grpc.aio.Channel,
    method: MethodDescriptor,
    cases: Iterable[Case],
    *,
    alive: Callable[[], Any] | None = None,
    every: int = 50,
    codes: Counter[str] | None = None,
    parallel: int = 1,
) -> tuple[int, list[Finding]]:
    """Sends the cases, `parallel` at a time; returns the number sent and the findings.
    `alive()` (a coroutine function raising when the server no longer answers properly) runs
    after about every `every` cases and at the end; `codes` counts the answers' status
    codes."""
    findings: list[Finding] = []
    pending = list(cases)
    sent = 0
    checked = 0
    for start in range(0, len(pending), parallel):
        batch = pending[start : start + parallel]
        outcomes = await asyncio.gather(*(invoke(channel, method, case) for case in batch))
        for case, outcome in zip(batch, outcomes, strict=True):
            sent += 1
            if codes is not None:
                codes[outcome.code.name] += 1
            problem = check_outcome(outcome)
            if problem is not None:
                request = " | ".join(m[:300].hex() for m in case.messages)
                findings.append(Finding(method_path(method), case.kind, problem[:500], request))
        if alive is not None and sent - checked >= every:
            checked = sent
            await alive()
    if alive is not None:
        await alive()
    return sent, findings


# --- the fuzzed project -------------------------------------------------------------------------


async def seed_project(channel: grpc.aio.Channel, project: str = PROJECT) -> None:
    """The project the requests name, with one segment of each kind, a few profiles and
    events, and the project fuzzed DeleteProject calls may delete."""
    from datetime import UTC, datetime, timedelta

    from google.protobuf.timestamp_pb2 import Timestamp

    from segments.v1 import definition_model_pb2 as dm
    from segments.v1 import definition_service_pb2 as dpb
    from segments.v1 import definition_service_pb2_grpc as dpb_grpc
    from segments.v1 import evaluator_service_pb2 as epb
    from segments.v1 import evaluator_service_pb2_grpc as epb_grpc
    from segments.v1 import segment_pb2
    from tests.support.auth import create_project

    await create_project(channel, project)
    await create_project(channel, DOOMED_PROJECT)
    definitions = dpb_grpc.SegmentDefinitionServiceStub(channel)
    purchase = dm.EventSpec(event_name="purchase")
    all_time = dm.TimeWindow(all_time=dm.AllTime())
    did = dm.Node(did_event=dm.DidEventCondition(event=purchase, window=all_time))
    kinds = {
        "buyers": dm.Definition(past_behavior=dm.PastBehaviorQuery(root=did)),
        "listed": dm.Definition(
            custom_list=dm.CustomListDefinition(identity_kind=dm.IDENTITY_KIND_USER_ID)
        ),
        "partnered": dm.Definition(
            partner=dm.PartnerDefinition(partner="amplitude", external_cohort_id="c1")
        ),
        "live-buyers": dm.Definition(
            live=dm.LiveDefinition(trigger=dm.LiveTrigger(single_action=purchase))
        ),
        "nobody": dm.Definition(
            past_behavior=dm.PastBehaviorQuery(
                root=dm.Node(
                    did_event=dm.DidEventCondition(
                        event=dm.EventSpec(event_name="never"), window=all_time
                    )
                )
            )
        ),
    }
    for segment_id, definition in kinds.items():
        try:
            await definitions.CreateSegment(
                dpb.CreateSegmentRequest(
                    parent=f"projects/{project}",
                    segment_id=segment_id,
                    segment=segment_pb2.Segment(display_name=segment_id, definition=definition),
                ),
                timeout=30,
            )
        except grpc.aio.AioRpcError as exc:
            if exc.code() is not grpc.StatusCode.ALREADY_EXISTS:
                raise
    evaluator = epb_grpc.SegmentEvaluatorServiceStub(channel)
    now = datetime.now(UTC)
    events = []
    for i in range(20):
        when = Timestamp()
        when.FromDatetime(now - timedelta(days=i))
        events.append(
            epb.Event(
                event_id=f"seed-{i}",
                user_id=f"u{i % 5}",
                event_name="purchase" if i % 2 else "view",
                event_time=when,
            )
        )

    async def batches() -> AsyncIterator[epb.IngestEventsRequest]:
        yield epb.IngestEventsRequest(parent=f"projects/{project}", events=events)

    await evaluator.IngestEvents(batches(), timeout=60)
    await _record_templates(channel, project, kinds)


async def _record_templates(channel: grpc.aio.Channel, project: str, kinds: dict[str, Any]) -> None:
    """Requests that succeed against the seeded project (`TEMPLATES`), and the resources
    they need (profiles, a snapshot, an export job, a usage)."""
    from google.protobuf.json_format import MessageToDict

    from segments.v1 import evaluator_service_pb2 as epb
    from segments.v1 import evaluator_service_pb2_grpc as epb_grpc
    from segments.v1 import export_service_pb2 as xpb
    from segments.v1 import export_service_pb2_grpc as xpb_grpc

    parent = f"projects/{project}"
    buyers = f"{parent}/segments/buyers"
    evaluator = epb_grpc.SegmentEvaluatorServiceStub(channel)
    profiles = [{"userId": f"u{i}", "email": f"u{i}@example.com"} for i in range(5)]
    upsert = {"parent": parent, "profiles": profiles}
    await evaluator.UpsertProfiles(
        json_format.ParseDict(upsert, epb.UpsertProfilesRequest()), timeout=60
    )
    snapshot = await evaluator.CreateSnapshot(epb.CreateSnapshotRequest(parent=buyers), timeout=60)
    exports = xpb_grpc.SegmentExportServiceStub(channel)
    job = await exports.CreateExportJob(
        xpb.CreateExportJobRequest(
            parent=parent, export_job=xpb.ExportJob(segment=buyers, fields=["user_id", "email"])
        ),
        timeout=60,
    )
    definitions = [MessageToDict(d) for d in kinds.values() if d.WhichOneof("kind") != "live"]
    past = [d for d in definitions if "pastBehavior" in d]
    TEMPLATES.update(
        {
            "ValidateDefinition": [{"parent": parent, "definition": d} for d in definitions],
            "EstimateDefinition": [{"parent": parent, "definition": d} for d in past],
            "CreateSegment": [
                {"parent": parent, "segment": {"displayName": "made", "definition": d}}
                for d in definitions
            ],
            "UpdateSegment": [
                {
                    "segment": {"name": buyers, "displayName": "Buyers", "description": "x"},
                    "updateMask": "displayName,description",
                }
            ],
            "CountSegment": [{"segment": buyers, "sampleSize": 5}],
            "ExplainSegment": [{"segment": buyers}],
            "StreamAudience": [{"segment": buyers}],
            "StreamAudienceTable": [{"segment": buyers}],
            "CheckMembership": [{"segment": buyers, "userIds": ["u1", "u2", "nobody"]}],
            "CreateSnapshot": [{"parent": buyers}],
            "GetSnapshot": [{"name": snapshot.name}],
            "ListSnapshots": [{"parent": buyers}],
            "ListSnapshotChanges": [{"parent": buyers, "fromVersion": "1"}],
            "GetProfile": [{"name": f"{parent}/profiles/u1"}],
            "UpsertProfiles": [upsert],
            "SetTestUsers": [{"parent": parent, "userIds": ["u1"], "testUser": True}],
            "CreateExportJob": [
                {"parent": parent, "exportJob": {"segment": buyers, "fields": ["user_id"]}}
            ],
            "GetExportJob": [{"name": job.name}],
            "CancelExportJob": [{"name": job.name}],
            "StreamExportJob": [{"name": job.name}],
            "RegisterSegmentUsage": [
                {
                    "parent": buyers,
                    "usage": {"kind": 1, "externalId": "c1", "displayName": "C", "status": 1},
                }
            ],
            "GetSegment": [{"name": buyers}],
            "ListSegments": [{"parent": parent, "pageSize": 2}],
            "GetSegmentDependencies": [{"name": buyers}],
            "ListDependentSegments": [{"parent": buyers}],
            "GetProject": [{"name": parent}],
        }
    )
    inputs = {m.name: m.input_type for m in all_methods()}
    for name, requests in TEMPLATES.items():
        for request in requests:  # a template that does not parse is a mistake here
            json_format.ParseDict(request, message_class(inputs[name])())
