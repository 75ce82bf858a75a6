"""OpenTelemetry traces of a Segments process: a server span for every gRPC call (its parent
taken from the caller's `traceparent`), a client span for every peer call (which passes
`traceparent` on), and spans for store work (ClickHouse statements, SQL transactions and
statements). Log lines written inside a span carry its `trace_id` and `span_id`
(`libs.common.logging`).

Off by default: until `enable()` (or `configure()` with `SEGMENTS_OTLP_ENDPOINT` set) runs,
`enabled()` is False and every helper here returns at once without creating anything.
Spans are exported over OTLP/gRPC in batches; tests pass an in-memory exporter to `enable()`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    SimpleSpanProcessor,
    SpanExporter,
)
from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased
from opentelemetry.trace import Span, SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from libs.common.config import Config

__all__ = [
    "Span",
    "SpanKind",
    "configure",
    "disable",
    "enable",
    "enabled",
    "extract_parent",
    "inject",
    "mark_error",
    "span",
    "start_span",
]

_PROPAGATOR = TraceContextTextMapPropagator()
_provider: TracerProvider | None = None
_tracer: trace.Tracer | None = None


def enabled() -> bool:
    return _tracer is not None


def enable(
    exporter: SpanExporter,
    *,
    service_name: str = "segments",
    batch: bool = True,
    sample_ratio: float = 1.0,
) -> None:
    """Starts recording spans into `exporter` (replacing any earlier exporter).

    `batch=False` hands each span to the exporter as it ends (tests); `sample_ratio` keeps that
    share of new traces, and a call whose caller sampled its trace is always kept.
    """
    global _provider, _tracer
    disable()
    provider = TracerProvider(
        resource=Resource.create({"service.name": service_name}),
        sampler=ParentBased(TraceIdRatioBased(sample_ratio)),
    )
    processor: SpanProcessor = (
        BatchSpanProcessor(exporter) if batch else SimpleSpanProcessor(exporter)
    )
    provider.add_span_processor(processor)
    _provider = provider
    _tracer = provider.get_tracer("segments")


def disable() -> None:
    """Stops recording; spans not yet exported are flushed first."""
    global _provider, _tracer
    provider, _provider, _tracer = _provider, None, None
    if provider is not None:
        provider.shutdown()


def configure(config: Config, service_name: str) -> None:
    """Exports spans over OTLP to `config.otlp_endpoint` when it is set and tracing is not on
    yet (the server bootstrap calls this; a process traces to one place)."""
    if config.otlp_endpoint is None or enabled():
        return
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

    enable(
        OTLPSpanExporter(endpoint=config.otlp_endpoint),
        service_name=service_name,
        sample_ratio=config.trace_sample_ratio,
    )


def start_span(
    name: str,
    *,
    kind: SpanKind = SpanKind.INTERNAL,
    parent: otel_context.Context | None = None,
    attributes: Mapping[str, str | int | float | bool] | None = None,
) -> Span | None:
    """A started span (not made current), or None when tracing is off."""
    if _tracer is None:
        return None
    return _tracer.start_span(name, context=parent, kind=kind, attributes=attributes)


@contextmanager
def activated(current: Span | None) -> Iterator[None]:
    """Makes `current` the current span for the block (nothing when None)."""
    if current is None:
        yield
        return
    token = otel_context.attach(trace.set_span_in_context(current))
    try:
        yield
    finally:
        otel_context.detach(token)


@contextmanager
def span(
    name: str,
    *,
    kind: SpanKind = SpanKind.INTERNAL,
    attributes: Mapping[str, str | int | float | bool] | None = None,
) -> Iterator[Span | None]:
    """A child span of the current one around the block, ended when it ends; an exception
    marks it failed. Yields None when tracing is off."""
    if _tracer is None:
        yield None
        return
    current = _tracer.start_span(name, kind=kind, attributes=attributes)
    try:
        with activated(current):
            yield current
    except BaseException as exc:
        mark_error(current, exc)
        raise
    finally:
        current.end()


def mark_error(current: Span | None, exc: BaseException | str) -> None:
    """Records a failure on `current` (nothing when None)."""
    if current is None:
        return
    if isinstance(exc, BaseException):
        current.record_exception(exc)
        current.set_status(Status(StatusCode.ERROR, type(exc).__name__))
    else:
        current.set_status(Status(StatusCode.ERROR, exc))


def extract_parent(metadata: Iterable[Any] | None) -> otel_context.Context | None:
    """The caller's trace context from gRPC metadata (`traceparent`), or None."""
    if _tracer is None or not metadata:
        return None
    carrier = {
        str(key): value.decode("ascii", "replace") if isinstance(value, bytes) else str(value)
        for key, value in metadata
        if key in ("traceparent", "tracestate")
    }
    if not carrier:
        return None
    return _PROPAGATOR.extract(carrier)


def inject() -> tuple[tuple[str, str], ...]:
    """Metadata carrying the current span's context to a callee (empty when tracing is off)."""
    if _tracer is None:
        return ()
    carrier: dict[str, str] = {}
    _PROPAGATOR.inject(carrier)
    return tuple(carrier.items())
