"""`python -m services.healthcheck [ADDRESS] [SERVICE]`: exit 0 when the service is SERVING.

Used by the container health checks (no grpc_health_probe binary needed). ADDRESS defaults to
127.0.0.1 and the port of the service named by SEGMENTS_SERVICE (or SEGMENTS_PORT). With
SEGMENTS_TLS_CA_FILE it speaks TLS (presenting SEGMENTS_TLS_CERT_FILE when set, for mTLS).
"""

from __future__ import annotations

import sys

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from libs.common.config import Config
from libs.common.tls import channel_credentials


def check(
    address: str,
    service: str = "",
    timeout: float = 3.0,
    credentials: grpc.ChannelCredentials | None = None,
) -> bool:
    """Whether `service` answers SERVING at `address` (over TLS with `credentials`)."""
    channel = (
        grpc.secure_channel(address, credentials)
        if credentials is not None
        else grpc.insecure_channel(address)
    )
    with channel:
        try:
            response = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=service), timeout=timeout
            )
        except grpc.RpcError:
            return False
    return bool(response.status == health_pb2.HealthCheckResponse.SERVING)


def main(argv: list[str] | None = None) -> int:
    import os

    args = sys.argv[1:] if argv is None else argv
    config = Config.from_env()
    which = os.environ.get("SEGMENTS_SERVICE", "all")
    port = config.port if which == "all" else config.port_for(which)
    address = args[0] if args else f"127.0.0.1:{port}"
    service = args[1] if len(args) > 1 else ""
    return 0 if check(address, service, credentials=channel_credentials(config)) else 1


if __name__ == "__main__":
    sys.exit(main())
