"""The client commands of `segments` (everything but `serve` and `demo`): their registration in
the command-line parser and their dispatch, with one place that turns failures into messages
and exit codes (`libs.cli.errors`)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any

import grpc

from libs.cli.connection import Client, common_options
from libs.cli.errors import EXIT_USAGE, UsageError, exit_code, render_rpc_error
from libs.cli.output import Output

#: What a command runs: (client, output, parsed arguments) -> exit code (None: 0).
Handler = Callable[[Client, Output, argparse.Namespace], int | None]

GROUPS = (
    "libs.cli.cmd_segments",
    "libs.cli.cmd_eval",
    "libs.cli.cmd_snapshots",
    "libs.cli.cmd_ingest",
    "libs.cli.cmd_reports",
    "libs.cli.cmd_exports",
    "libs.cli.cmd_projects",
    "libs.cli.cmd_keys",
)

EXIT_CODES_HELP = """exit codes: 0 done; 1 server error or unreachable (or a job that failed);
2 usage error (nothing sent); 3 not found; 4 refused as given (invalid, precondition, exists,
stale etag; rows rejected); 5 unauthenticated or not allowed"""


class Commands:
    """Adds the leaf commands of one group, each with the common options and examples."""

    def __init__(self, group: Any, common: argparse.ArgumentParser) -> None:
        self._group = group
        self._common = common

    def add(
        self, name: str, handler: Handler, summary: str, examples: str = ""
    ) -> argparse.ArgumentParser:
        epilog = f"examples:\n{examples.rstrip()}\n\n{EXIT_CODES_HELP}" if examples else None
        parser: argparse.ArgumentParser = self._group.add_parser(
            name,
            help=summary,
            description=summary,
            parents=[self._common],
            epilog=epilog,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        parser.set_defaults(handler=handler)
        return parser


def add_client_commands(commands: Any) -> None:
    """Registers every client command group under the `segments` parser's sub-commands."""
    import importlib

    common = common_options()
    for module_name in GROUPS:
        module = importlib.import_module(module_name)
        group_parser = commands.add_parser(
            module.NAME, help=module.SUMMARY, description=module.SUMMARY
        )
        group = group_parser.add_subparsers(dest="action", required=True, metavar="COMMAND")
        module.register(Commands(group, common))


def run_client_command(args: argparse.Namespace) -> int:
    """Runs a parsed client command; returns its exit code."""
    out = Output(args.output)
    client: Client | None = None
    try:
        client = Client.from_args(args)
        result = args.handler(client, out, args)
        return int(result or 0)
    except UsageError as exc:
        print(f"segments: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except grpc.RpcError as exc:
        print(render_rpc_error(exc, as_json=out.json), file=sys.stderr)
        return exit_code(exc.code())
    except KeyboardInterrupt:
        print("segments: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # output piped into a reader that stopped (head)
        return 0
    finally:
        if client is not None:
            client.close()
