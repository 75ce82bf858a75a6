"""StreamAudienceTable messages: record batches of the audience table (see
domain.audience_table) as Arrow IPC streams."""

from __future__ import annotations

from collections.abc import Iterator

import pyarrow as pa

from segments.v1 import evaluator_service_pb2 as pb

#: A message stays under about this size (a client accepts 4 MiB by default); one member
#: always fits, since user ids and property values are bounded.
MAX_CHUNK_BYTES = 3 * 1024 * 1024


def _ipc(batch: pa.RecordBatch) -> bytes:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, batch.schema) as writer:
        writer.write_batch(batch)
    data: bytes = sink.getvalue().to_pybytes()
    return data


def table_chunks(
    batch: pa.RecordBatch, max_bytes: int = MAX_CHUNK_BYTES
) -> Iterator[pb.StreamAudienceTableResponse]:
    """One record batch as messages, split in halves until each is at most `max_bytes`."""
    data = _ipc(batch)
    if batch.num_rows > 1 and len(data) > max_bytes:
        half = batch.num_rows // 2
        yield from table_chunks(batch.slice(0, half), max_bytes)
        yield from table_chunks(batch.slice(half), max_bytes)
        return
    yield pb.StreamAudienceTableResponse(arrow_record_batch=data)
