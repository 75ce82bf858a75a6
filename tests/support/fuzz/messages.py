"""Hypothesis strategies of request messages, built from the message descriptors: plausible
values (names of the fuzzed project's resources, known enum values, recent times, small
numbers) and hostile ones (extreme numbers, empty, huge, unicode and control-character
strings, unknown enum numbers, out-of-range timestamps and durations)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import grpc
from google.protobuf import descriptor_pool, message_factory
from google.protobuf.descriptor import Descriptor, FieldDescriptor, MethodDescriptor
from google.protobuf.message import Message
from hypothesis import strategies as st

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
class Builder:
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
            entry = nested_type(fd)
            if entry.GetOptions().map_entry:
                keys = _scalar(entry.fields_by_name["key"], self.project, self.hostile)
                value_fd = entry.fields_by_name["value"]
                if value_fd.type == FieldDescriptor.TYPE_MESSAGE:
                    if depth >= MAX_DEPTH:
                        return None
                    values = self.message(nested_type(value_fd), depth + 1)
                else:
                    values = _scalar(value_fd, self.project, self.hostile)
                return st.dictionaries(keys, values, max_size=3)
            if depth >= MAX_DEPTH:
                return None
            single = self.message(entry, depth + 1)
        else:
            single = _scalar(fd, self.project, self.hostile)
        if is_repeated(fd):
            return st.lists(single, max_size=3)
        return single


def _enum(fd: FieldDescriptor) -> Any:
    assert fd.enum_type is not None
    return fd.enum_type


def nested_type(fd: FieldDescriptor) -> Descriptor:
    assert fd.message_type is not None
    return fd.message_type


def _keyed(name: str) -> Callable[[Any], dict[str, Any]]:
    return lambda value: {name: value}


def is_repeated(fd: FieldDescriptor) -> bool:
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
