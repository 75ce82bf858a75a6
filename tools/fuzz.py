"""The long fuzz run: every RPC of the four services, many times over (docs/robustness.md).

    python -m tools.fuzz [--cases 100000] [--seed 1] [--log fuzz.log]

Starts all four services in this process (`segments serve all`, embedded stores in a
temporary directory), seeds the fuzzed project (tests/support/fuzz/), then sends generated,
mutated and random requests to every method in rounds until `--cases` calls were made,
checking after every 50 calls that the server is healthy and answers. Prints the count of
calls by method kind and status code, every finding (INTERNAL or UNKNOWN, an error without
ErrorInfo, a server that stopped answering), and the distinct unhandled exceptions of the
server's log. Exits 1 when there was a finding.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
import zlib
from collections import Counter
from pathlib import Path

import grpc
from google.protobuf.descriptor import MethodDescriptor
from grpc_health.v1 import health_pb2, health_pb2_grpc

from libs.common.config import Config
from libs.common.logging import configure_logging
from libs.common.server import RunningServer
from segments.v1 import definition_service_pb2 as dpb
from segments.v1 import definition_service_pb2_grpc as dpb_grpc
from services.cli import all_in_one_config, build_services
from tests.support import fuzz
from tests.support.auth import ADMIN_KEY, authorized_channel


async def _alive(channel: grpc.aio.Channel) -> None:
    health = health_pb2_grpc.HealthStub(channel)
    reply = await health.Check(health_pb2.HealthCheckRequest(service=""), timeout=30)
    if reply.status != health_pb2.HealthCheckResponse.SERVING:
        raise RuntimeError(f"health says {reply.status}")
    definitions = dpb_grpc.SegmentDefinitionServiceStub(channel)
    await definitions.GetProject(dpb.GetProjectRequest(name=f"projects/{fuzz.PROJECT}"), timeout=30)


def _round_cases(method: MethodDescriptor, round_no: int, seed: int) -> list[fuzz.Case]:
    base = seed * 1_000_003 + round_no * 7919 + zlib.crc32(fuzz.method_path(method).encode())
    cases = fuzz.draw(fuzz.valid_cases(method), 30, base)
    cases += fuzz.exact_cases(method)
    cases += fuzz.draw(fuzz.template_cases(method), 15, base + 2)
    cases += fuzz.draw(fuzz.byte_cases(method), 15, base + 1)
    if round_no == 0:
        cases += fuzz.nested_cases(method)
    return cases


async def run(cases_wanted: int, seed: int, log_path: Path) -> int:
    with tempfile.TemporaryDirectory(prefix="segments-fuzz-") as data, log_path.open("w") as log:
        configure_logging("INFO", stream=log)
        config = Config(
            host="127.0.0.1",
            port=0,
            data_dir=Path(data),
            shutdown_grace_seconds=2.0,
            bootstrap_admin_key=ADMIN_KEY,
            service_key=ADMIN_KEY,
            # one caller sends everything: the per-caller limit of expensive calls is not
            # what is tested here
            max_concurrent_expensive_calls=64,
        )
        config = all_in_one_config(config, None, 0)
        server = RunningServer(build_services("all", config), config)
        await server.start()
        started = time.monotonic()
        sent = 0
        kinds: Counter[str] = Counter()
        codes: Counter[str] = Counter()
        findings: list[fuzz.Finding] = []
        try:
            async with authorized_channel(server.address) as channel:
                await fuzz.seed_project(channel)
                methods = fuzz.all_methods()
                round_no = 0
                while sent < cases_wanted:
                    for method in methods:
                        cases = _round_cases(method, round_no, seed)
                        kinds.update(
                            f"{'stream' if method.client_streaming else 'unary'}-{c.kind}"
                            for c in cases
                        )
                        count, found = await fuzz.run_cases(
                            channel,
                            method,
                            cases,
                            alive=lambda: _alive(channel),
                            every=50,
                            codes=codes,
                        )
                        sent += count
                        findings += found
                        if "Delete" in method.name:
                            await fuzz.seed_project(channel)
                    round_no += 1
                    rate = sent / (time.monotonic() - started)
                    print(
                        f"round {round_no}: {sent} calls, {len(findings)} findings, "
                        f"{rate:.0f} calls/s",
                        file=sys.stderr,
                        flush=True,
                    )
        finally:
            await server.stop()
            configure_logging("INFO")
    elapsed = time.monotonic() - started
    print(f"calls: {sent} in {elapsed:.0f} s, seed {seed}")
    for kind, count in sorted(kinds.items()):
        print(f"  {kind}: {count}")
    print("status codes of the answers:")
    for code, count in codes.most_common():
        print(f"  {code}: {count}")
    grouped = Counter((f.method, f.kind, f.problem[:160]) for f in findings)
    print(f"findings: {len(findings)}")
    for (path, kind, problem), count in grouped.most_common():
        print(f"  {count} x {path} [{kind}] {problem}")
    exceptions = _unhandled(log_path)
    print(f"distinct unhandled exceptions in the server log: {len(exceptions)}")
    for (path, last), count in exceptions.most_common():
        print(f"  {count} x {path}: {last}")
    return 1 if findings or exceptions else 0


def _events(log_path: Path) -> list[dict[str, object]]:
    events = []
    for line in log_path.read_text().splitlines():
        try:
            events.append(json.loads(line))
        except ValueError:
            continue
    return events


def _unhandled(log_path: Path) -> Counter[tuple[str, str]]:
    found: Counter[tuple[str, str]] = Counter()
    for event in _events(log_path):
        if event.get("level") in ("error", "critical") and event.get("event") != "rpc":
            text = str(event.get("exception", "")).strip().splitlines()
            last = text[-1] if text else str(event.get("event"))
            found[(str(event.get("method", event.get("event"))), last[:200])] += 1
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.fuzz", description=__doc__)
    parser.add_argument("--cases", type=int, default=100_000, help="calls to make (at least)")
    parser.add_argument("--seed", type=int, default=1, help="seed of the generated requests")
    parser.add_argument("--log", type=Path, default=Path("fuzz.log"), help="the server's log")
    args = parser.parse_args(argv)
    return asyncio.run(run(args.cases, args.seed, args.log))


if __name__ == "__main__":
    sys.exit(main())
