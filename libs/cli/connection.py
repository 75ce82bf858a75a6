"""Where the client commands connect and as whom: the options every command takes (server
address, API key, TLS, project, timeout, output), the channel and stubs, and the resource names
built from bare ids.

Each option falls back to its environment variable (`libs.common.config.ClientSettings`):
`SEGMENTS_ADDRESS`, `SEGMENTS_API_KEY` or `SEGMENTS_API_KEY_FILE`, `SEGMENTS_PROJECT`,
`SEGMENTS_TLS_CA_FILE`, `SEGMENTS_TLS_CERT_FILE`, `SEGMENTS_TLS_KEY_FILE`.
"""

from __future__ import annotations

import argparse
import re
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc

from libs.cli.errors import UsageError
from libs.common.config import ClientSettings
from segments.v1 import definition_service_pb2_grpc as definition_grpc
from segments.v1 import evaluator_service_pb2_grpc as evaluator_grpc
from segments.v1 import export_service_pb2_grpc as export_grpc
from segments.v1 import reporting_service_pb2_grpc as reporting_grpc

DEFAULT_TIMEOUT = 60.0
_PROJECT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$")


def common_options() -> argparse.ArgumentParser:
    """The options of every client command (a parent parser: they go after the command)."""
    common = argparse.ArgumentParser(add_help=False)
    group = common.add_argument_group("connection")
    group.add_argument(
        "--address", metavar="HOST:PORT", help="server address (SEGMENTS_ADDRESS; 127.0.0.1:50051)"
    )
    group.add_argument(
        "--key",
        metavar="KEY",
        help="API key (SEGMENTS_API_KEY; prefer the variable or --key-file: options show in ps)",
    )
    group.add_argument(
        "--key-file",
        metavar="FILE",
        type=Path,
        help="file holding the API key (SEGMENTS_API_KEY_FILE)",
    )
    group.add_argument(
        "--project",
        metavar="ID",
        help="project of bare segment and job ids (SEGMENTS_PROJECT)",
    )
    group.add_argument("--tls", action="store_true", help="TLS with the system's trusted CAs")
    group.add_argument(
        "--tls-ca",
        metavar="FILE",
        type=Path,
        help="CA certificate (PEM) of the server; implies TLS (SEGMENTS_TLS_CA_FILE)",
    )
    group.add_argument(
        "--tls-cert",
        metavar="FILE",
        type=Path,
        help="client certificate (PEM) for servers that ask for one (SEGMENTS_TLS_CERT_FILE)",
    )
    group.add_argument(
        "--tls-key",
        metavar="FILE",
        type=Path,
        help="client certificate's private key (PEM) (SEGMENTS_TLS_KEY_FILE)",
    )
    group.add_argument(
        "--timeout",
        metavar="SECONDS",
        type=float,
        default=DEFAULT_TIMEOUT,
        help=f"deadline of each call (default {DEFAULT_TIMEOUT:g})",
    )
    output = common.add_argument_group("output")
    output.add_argument(
        "-o",
        "--output",
        choices=("table", "json"),
        default="table",
        help="table (for people, default) or json (the API's JSON, for scripts)",
    )
    return common


def _read(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise UsageError(f"cannot read the {what} {path}: {exc.strerror}") from exc


@dataclass
class Client:
    """The connection of one command: channel, credentials, stubs and name helpers."""

    address: str
    key: str | None
    project: str | None
    timeout: float
    credentials: grpc.ChannelCredentials | None = None
    _channel: grpc.Channel | None = field(default=None, repr=False)

    @classmethod
    def from_args(cls, args: argparse.Namespace, env: ClientSettings | None = None) -> Client:
        settings = env or ClientSettings.from_env()
        key = args.key or settings.api_key
        key_file = args.key_file or settings.api_key_file
        if not key and key_file is not None:
            key = _read(key_file, "API key file").decode("utf-8", "replace").strip()
            if not key:
                raise UsageError(f"the API key file {key_file} is empty")
        if args.timeout is not None and args.timeout <= 0:
            raise UsageError("--timeout must be a positive number of seconds")
        ca = args.tls_ca or settings.tls_ca_file
        cert = args.tls_cert or settings.tls_cert_file
        private = args.tls_key or settings.tls_key_file
        credentials = None
        if args.tls or ca is not None:
            if (cert is None) != (private is None):
                raise UsageError("--tls-cert and --tls-key go together")
            credentials = grpc.ssl_channel_credentials(
                root_certificates=_read(ca, "TLS CA file") if ca else None,
                private_key=_read(private, "TLS key file") if private else None,
                certificate_chain=_read(cert, "TLS certificate file") if cert else None,
            )
        elif cert is not None and (args.tls_cert or args.tls_key):
            raise UsageError("--tls-cert needs --tls or --tls-ca")
        return cls(
            address=args.address or settings.address,
            key=key,
            project=args.project or settings.project,
            timeout=args.timeout,
            credentials=credentials,
        )

    # --- the channel and stubs ----------------------------------------------------------------

    @property
    def channel(self) -> grpc.Channel:
        if self._channel is None:
            if self.credentials is not None:
                self._channel = grpc.secure_channel(self.address, self.credentials)
            else:
                self._channel = grpc.insecure_channel(self.address)
        return self._channel

    def close(self) -> None:
        if self._channel is not None:
            self._channel.close()
            self._channel = None

    @property
    def definitions(self) -> definition_grpc.SegmentDefinitionServiceStub:
        return definition_grpc.SegmentDefinitionServiceStub(self.channel)

    @property
    def evaluator(self) -> evaluator_grpc.SegmentEvaluatorServiceStub:
        return evaluator_grpc.SegmentEvaluatorServiceStub(self.channel)

    @property
    def reporting(self) -> reporting_grpc.SegmentReportingServiceStub:
        return reporting_grpc.SegmentReportingServiceStub(self.channel)

    @property
    def exports(self) -> export_grpc.SegmentExportServiceStub:
        return export_grpc.SegmentExportServiceStub(self.channel)

    def metadata(self) -> tuple[tuple[str, str], ...]:
        """Metadata of every call: the API key and a fresh request id (quoted in errors)."""
        items = [("x-request-id", f"cli-{uuid.uuid4().hex}")]
        if self.key:
            items.append(("authorization", f"Bearer {self.key}"))
        return tuple(items)

    def call(self, method: Any, request: Any, *, stream: bool = False) -> Any:
        """`method(request)` with the key and the deadline (none for streams: they end by
        themselves, and Ctrl-C cancels them)."""
        timeout = None if stream else self.timeout
        return method(request, metadata=self.metadata(), timeout=timeout)

    # --- resource names -----------------------------------------------------------------------

    def project_name(self, given: str | None = None) -> str:
        """projects/{project} of `given` (an id or a name), else of --project."""
        value = given or self.project
        if not value:
            raise UsageError("no project: pass --project ID or set SEGMENTS_PROJECT")
        value = value.removeprefix("projects/")
        if not _PROJECT_ID.match(value):
            raise UsageError(f"{value!r} is not a project id (letters, digits, '-', '_')")
        return f"projects/{value}"

    def child_name(self, given: str, collection: str) -> str:
        """projects/{project}/{collection}/{id} of `given`: a full name as is, else an id in
        --project."""
        if given.startswith("projects/"):
            return given
        if not given or "/" in given:
            raise UsageError(f"{given!r} is neither an id nor projects/.../{collection}/...")
        return f"{self.project_name()}/{collection}/{given}"

    def segment_name(self, given: str) -> str:
        return self.child_name(given, "segments")
