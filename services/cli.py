"""The `segments` command: run the services, or load the demo data set; every other command
is a client of a running server (`libs/cli`).

segments serve all|definition|evaluator|reporting|export [--host H] [--port P]
segments demo [--serve] [--host H] [--port P]
segments segments|eval|snapshots|ingest|reports|exports|projects|keys COMMAND ... (--help)
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import socket
import sys
from collections.abc import Sequence
from dataclasses import replace

from libs.cli.app import add_client_commands, run_client_command
from libs.common.config import SERVICE_NAMES, Config, ConfigError
from libs.common.logging import configure_logging, get_logger
from libs.common.server import RunningServer, ServerError, serve
from libs.common.service import Service

_log = get_logger("segments.cli")


def build_services(which: str, config: Config) -> list[Service]:
    """The services of `segments serve <which>`: one of SERVICE_NAMES, or "all"."""
    names = SERVICE_NAMES if which == "all" else (which,)
    services: list[Service] = []
    for name in names:
        module = importlib.import_module(f"services.{name}.service")
        services.append(module.build_service(config))
    return services


def default_port(which: str, config: Config) -> int:
    return config.port if which == "all" else config.port_for(which)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="segments", description="Segments: audience segmentation services over gRPC."
    )
    commands = parser.add_subparsers(dest="command", required=True)

    serve_cmd = commands.add_parser("serve", help="run one service, or all four in one process")
    serve_cmd.add_argument("service", choices=["all", *SERVICE_NAMES])
    serve_cmd.add_argument("--host", help="listen address (default SEGMENTS_HOST)")
    serve_cmd.add_argument(
        "--port",
        type=int,
        help="port; 0 picks a free one (default SEGMENTS_PORT for all, else the service's port)",
    )

    demo_cmd = commands.add_parser(
        "demo", help="start all services in-process and load the demo data set through the API"
    )
    demo_cmd.add_argument("--serve", action="store_true", help="keep serving after loading")
    demo_cmd.add_argument("--host", help="listen address (default SEGMENTS_HOST)")
    demo_cmd.add_argument("--port", type=int, help="port (default SEGMENTS_PORT)")
    add_client_commands(commands)
    return parser


def free_port(host: str) -> int:
    """A port nobody listens on right now (the kernel's choice)."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


def all_in_one_config(config: Config, host: str | None, port: int | None) -> Config:
    """`config` for all four services in one process on `host:port`.

    The services reach each other through `config.host:config.port` (unless a peer address
    is configured), so the port must be known before they are built: 0 is resolved here.
    """
    host = host or config.host
    port = config.port if port is None else port
    if port == 0:
        port = free_port(host)
    return replace(config, host=host, port=port)


async def _run_serve(which: str, config: Config, host: str | None, port: int | None) -> None:
    if which == "all":
        config = all_in_one_config(config, host, port)
        host, port = config.host, config.port
    services = build_services(which, config)
    await serve(
        services,
        config,
        host=host or config.host,
        port=default_port(which, config) if port is None else port,
        on_started=lambda server: print(
            f"segments: serving {which} on {server.address}", file=sys.stderr, flush=True
        ),
    )


async def _run_demo(config: Config, host: str | None, port: int | None, keep: bool) -> None:
    from services.demo import load_demo

    config = all_in_one_config(config, host, port)
    host, port = config.host, config.port
    services = build_services("all", config)

    key_file = config.data_dir / "demo.key"

    async def loaded(server: RunningServer) -> None:
        await load_demo(server.address, key_file)
        print(
            f"segments: demo data loaded; serving all services on {server.address}. Every call "
            f"needs an API key; {key_file} holds one with admin on projects/demo:\n"
            f'  grpcurl -plaintext -H "authorization: Bearer $(cat {key_file})" '
            f'-d \'{{"name": "projects/demo"}}\' {server.address} '
            "segments.v1.SegmentDefinitionService/GetProject\n"
            "Ctrl-C stops.",
            file=sys.stderr,
            flush=True,
        )

    if keep:
        await serve(services, config, host=host, port=port, on_started=loaded)
        return
    server = RunningServer(services, config, host=host, port=port)
    await server.start()
    try:
        await load_demo(server.address, key_file)
        print(f"segments: demo data loaded; the demo's API key is in {key_file}", file=sys.stderr)
    finally:
        await server.stop()


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if getattr(args, "handler", None) is not None:
        return run_client_command(args)
    try:
        config = Config.from_env()
    except ConfigError as exc:
        print(f"segments: configuration error: {exc}", file=sys.stderr)
        return 2
    config.data_dir.mkdir(parents=True, exist_ok=True)
    if args.command == "demo":
        # the demo's terminal shows its steps; the services' JSON logs go to a file
        log_file = config.data_dir / "demo.log"
        configure_logging(
            config.log_level, stream=log_file.open("a", encoding="utf-8", buffering=1)
        )
        print(f"segments: the services' logs (JSON lines) go to {log_file}", file=sys.stderr)
    else:
        configure_logging(config.log_level)
    try:
        if args.command == "serve":
            asyncio.run(_run_serve(args.service, config, args.host, args.port))
        else:
            asyncio.run(_run_demo(config, args.host, args.port, args.serve))
    except ServerError as exc:
        _log.error("server_failed", error=str(exc))
        print(f"segments: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:  # pragma: no cover - SIGINT before the handler is installed
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
