"""Wiring of the evaluator service: stores, domain and gRPC servicer."""

from __future__ import annotations

from libs.common.config import Config
from libs.common.placeholder import PlaceholderService
from libs.common.service import Service
from segments.v1 import evaluator_service_pb2_grpc as pb_grpc


def build_service(config: Config) -> Service:
    """Every RPC answers UNIMPLEMENTED until its behaviour lands."""
    return PlaceholderService(
        name="segments.v1.SegmentEvaluatorService",
        servicer_base=pb_grpc.SegmentEvaluatorServiceServicer,
        add_to_server=pb_grpc.add_SegmentEvaluatorServiceServicer_to_server,
    )
