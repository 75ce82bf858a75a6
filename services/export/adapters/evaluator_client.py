"""The evaluator, reached over gRPC: a segment's members with fields of their profiles
(StreamAudienceTable), as `MemberTable`s."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import datetime

import grpc
import pyarrow as pa

from libs.common.errors import Internal, Unavailable
from libs.common.peers import open_peer_channel, peer_metadata
from libs.common.status import peer_error
from libs.model.definition_proto import datetime_to_timestamp, timestamp_to_datetime
from segments.v1 import evaluator_service_pb2 as epb
from segments.v1 import evaluator_service_pb2_grpc as epb_grpc
from services.export.domain.ports import MemberChunk, MemberColumn, MemberTable

#: members per chunk asked of the evaluator
CHUNK_ROWS = 20_000


def member_chunk(message: epb.StreamAudienceTableResponse, fields: int) -> MemberChunk:
    """The members of one message (an Arrow IPC stream; see StreamAudienceTableResponse)."""
    try:
        batch = pa.ipc.open_stream(message.arrow_record_batch).read_all()
        return MemberChunk(
            blocked=batch.column("blocked").combine_chunks(),
            columns=[
                MemberColumn(
                    batch.column(f"f{i}").combine_chunks(), batch.column(f"k{i}").combine_chunks()
                )
                for i in range(fields)
            ],
        )
    except (pa.ArrowException, KeyError) as exc:
        raise Internal(f"evaluator: unreadable member chunk: {exc}") from exc


class GrpcMembershipSource:
    """`MembershipSource` over the evaluator's StreamAudienceTable."""

    def __init__(self, address: str, chunk_rows: int = CHUNK_ROWS) -> None:
        self._address = address
        self._chunk_rows = chunk_rows
        self._channel: grpc.aio.Channel | None = None

    def _stub(self) -> epb_grpc.SegmentEvaluatorServiceAsyncStub:
        if self._channel is None:
            self._channel = open_peer_channel(self._address)
        return epb_grpc.SegmentEvaluatorServiceStub(self._channel)

    @asynccontextmanager
    async def members(
        self, segment: str, as_of: datetime, fields: Sequence[str]
    ) -> AsyncIterator[MemberTable]:
        request = epb.StreamAudienceTableRequest(
            segment=segment,
            as_of=datetime_to_timestamp(as_of),
            fields=fields,
            chunk_size=self._chunk_rows,
        )
        call = self._stub().StreamAudienceTable(request, metadata=peer_metadata())
        messages = aiter(call)
        try:
            try:
                first = await anext(messages, None)
            except grpc.aio.AioRpcError as exc:
                raise peer_error(exc, "evaluator") from exc
            if first is None:
                raise Unavailable("evaluator: the member stream ended before it began")
            yield MemberTable(
                first.total_count,
                timestamp_to_datetime(first.as_of),
                self._chunks(messages, len(fields)),
            )
        finally:
            call.cancel()

    @staticmethod
    async def _chunks(
        messages: AsyncIterator[epb.StreamAudienceTableResponse], fields: int
    ) -> AsyncIterator[MemberChunk]:
        try:
            async for message in messages:
                yield member_chunk(message, fields)
        except grpc.aio.AioRpcError as exc:
            raise peer_error(exc, "evaluator") from exc

    async def close(self) -> None:
        if self._channel is not None:
            await self._channel.close(None)
            self._channel = None
