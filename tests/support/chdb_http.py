"""ClickHouse's HTTP interface served from the embedded chDB engine, for tests.

clickhouse-connect talks to this server exactly as it would to a ClickHouse server: query text
in the body or the `query=` URL parameter (INSERT data then follows in the body), `database=`,
`param_<name>=` values (in the URL or, for large ones, a multipart form body), settings as URL
parameters, and the result in the requested format with the `X-ClickHouse-*` headers the client
reads. Errors answer HTTP 500 with the engine's exception text.
"""

from __future__ import annotations

import contextlib
import email.parser
import email.policy
import itertools
import json
import re
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from libs.clickhouse.chdb_adapter import ChdbEngine

_CONTROL = {
    "query",
    "database",
    "default_format",
    "session_id",
    "session_timeout",
    "session_check",
    "query_id",
    "compress",
    "decompress",
    "enable_http_compression",
    "wait_end_of_query",
    "send_progress_in_http_headers",
    "http_headers_progress_interval_ms",
    "client_protocol_version",
    "user",
    "password",
    "quota_key",
    "role",
    "buffer_size",
}
_SAFE_VALUE = re.compile(r"^[A-Za-z0-9_.\-]*$")
_TRAILING_FORMAT = re.compile(r"\bFORMAT\s+([A-Za-z0-9_]+)\s*;?\s*$", re.IGNORECASE)
_CODE = re.compile(r"Code: (\d+)")
_STREAMABLE = re.compile(r"^\s*(SELECT|WITH)\b", re.IGNORECASE)
_SUMMARY = json.dumps(
    {
        k: "0"
        for k in (
            "read_rows",
            "read_bytes",
            "written_rows",
            "written_bytes",
            "total_rows_to_read",
            "result_rows",
            "result_bytes",
            "elapsed_ns",
        )
    }
)


def _form_fields(content_type: str, body: bytes) -> dict[str, str]:
    if content_type.startswith("application/x-www-form-urlencoded"):
        return dict(parse_qsl(body.decode(), keep_blank_values=True))
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + body
    )
    fields: dict[str, str] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True)
        if isinstance(name, str) and isinstance(payload, bytes):
            fields[name] = payload.decode()
    return fields


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        return None

    def do_GET(self) -> None:
        if urlsplit(self.path).path in ("/ping", "/") and "query=" not in self.path:
            self._reply(200, b"Ok.\n", "text/plain")
            return
        self._handle(b"")

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            body = self._read_chunked()
        else:
            body = self.rfile.read(length) if length else b""
        self._handle(body)

    def _read_chunked(self) -> bytes:
        parts: list[bytes] = []
        while True:
            size = int(self.rfile.readline().strip().split(b";")[0], 16)
            if size == 0:
                self.rfile.readline()
                return b"".join(parts)
            parts.append(self.rfile.read(size))
            self.rfile.readline()

    def _reply(self, status: int, body: bytes, content_type: str, **headers: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for key, value in headers.items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(body)

    def _handle(self, body: bytes) -> None:
        params = dict(parse_qsl(urlsplit(self.path).query, keep_blank_values=True))
        content_type = self.headers.get("Content-Type", "")
        if content_type.startswith(("multipart/form-data", "application/x-www-form-urlencoded")):
            params.update(_form_fields(content_type, body))
            body = b""
        if "query" in params:
            sql = params["query"] + ("\n" + body.decode() if body else "")
        else:
            sql = body.decode()
        database = params.get("database") or "default"
        bound = {k[len("param_") :]: v for k, v in params.items() if k.startswith("param_")}
        settings = {
            k: v
            for k, v in params.items()
            if k not in _CONTROL and not k.startswith("param_") and _SAFE_VALUE.match(v)
        }
        match = _TRAILING_FORMAT.search(sql)
        fmt = match.group(1) if match else params.get("default_format") or "TabSeparated"
        query_id = params.get("query_id") or f"q{next(self.server.counter)}"
        headers = {
            "X-ClickHouse-Format": fmt,
            "X-ClickHouse-Timezone": "UTC",
            "X-ClickHouse-Server-Display-Name": "chdb-http-fixture",
            "X-ClickHouse-Query-Id": query_id,
            "X-ClickHouse-Summary": _SUMMARY,
        }
        content = "application/octet-stream" if fmt == "Native" else "text/plain; charset=UTF-8"
        engine = self.server.engine
        try:
            if _STREAMABLE.match(sql):
                chunks: Iterator[bytes] = engine.stream(database, sql, fmt, bound, settings)
                first = next(chunks, b"")
            else:
                first = engine.execute(database, sql, fmt, bound, settings)
                chunks = iter(())
        except Exception as exc:
            text = str(exc)
            code = _CODE.search(text)
            self._reply(
                500,
                (text + "\n").encode(),
                "text/plain; charset=UTF-8",
                **{"X-ClickHouse-Exception-Code": code.group(1) if code else "1000"},
            )
            return
        self.send_response(200)
        self.send_header("Content-Type", content)
        self.send_header("Transfer-Encoding", "chunked")
        for key, value in headers.items():
            self.send_header(key, value)
        self.end_headers()
        try:
            for chunk in itertools.chain([first], chunks):
                if chunk:
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        except Exception as exc:  # mid-stream failure: ClickHouse appends the exception text
            failure = f"\nCode: 1000. DB::Exception: {exc}\n".encode()
            self.wfile.write(b"%x\r\n%s\r\n" % (len(failure), failure))
        finally:
            close = getattr(chunks, "close", None)
            if close is not None:
                close()
        self.wfile.write(b"0\r\n\r\n")


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, engine: ChdbEngine, port: int) -> None:
        super().__init__(("127.0.0.1", port), _Handler)
        self.engine = engine
        self.counter = itertools.count(1)
        self.connections: set[socket.socket] = set()
        self.connections_lock = threading.Lock()

    def process_request(self, request: Any, client_address: Any) -> None:
        with self.connections_lock:
            self.connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self.connections_lock:
            self.connections.discard(request)
        super().shutdown_request(request)

    def drop_connections(self) -> None:
        """Closes every open client connection, as a server process that died would."""
        with self.connections_lock:
            open_now = list(self.connections)
        for connection in open_now:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)


class ChdbHttpServer:
    """A threaded HTTP server on 127.0.0.1 (`port`, default a free one) in front of a chDB
    engine. Another one on the port of a stopped one stands for a restarted server."""

    def __init__(self, engine: ChdbEngine, port: int = 0) -> None:
        self._server = _Server(engine, port)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> ChdbHttpServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._server.drop_connections()
        self._thread.join(timeout=5)
