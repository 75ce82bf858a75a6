"""The embedded engine's threads run at a lower priority in serving processes
(`libs.clickhouse.engine_priority`), in a process of their own here: the lowered priority
stays with the threads until the process exits."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

_CHILD = """
import json, os, threading, tempfile
from pathlib import Path
import chdb
from libs.clickhouse.engine_priority import lower_once

def nices():
    python = {t.native_id for t in threading.enumerate()}
    out = {"python": [], "engine": []}
    for tid in map(int, os.listdir("/proc/self/task")):
        name = Path(f"/proc/self/task/{tid}/comm").read_text().strip()
        kind = "python" if tid in python or tid == os.getpid() else "engine"
        out[kind].append((tid, name, os.getpriority(os.PRIO_PROCESS, tid)))
    return out

from concurrent.futures import ThreadPoolExecutor
import grpc

conn = chdb.connect(tempfile.mkdtemp())
conn.query("SELECT sum(number) FROM numbers(1000000)")
server = grpc.server(ThreadPoolExecutor(1))  # gRPC core starts threads of its own
server.add_insecure_port("127.0.0.1:0")
server.start()
helper = threading.Thread(target=threading.Event().wait, args=(5,), daemon=True)
helper.start()
before = nices()
lowered = lower_once(10)
print(json.dumps({"before": before, "after": nices(), "lowered": lowered,
                  "again": lower_once(10), "base": os.getpriority(os.PRIO_PROCESS, 0)}))
"""


def test_engine_threads_are_lowered_and_python_threads_are_not() -> None:
    done = subprocess.run(
        [sys.executable, "-c", _CHILD], cwd=ROOT, capture_output=True, text=True, timeout=120,
        check=True,
    )  # fmt: skip
    got = json.loads(done.stdout.strip().splitlines()[-1])
    assert got["lowered"] > 0
    assert got["again"] == 0  # each thread once
    assert len(got["after"]["python"]) >= 2  # the main thread and the helper
    base = got["base"]  # the process's own nice value (the test run's, inherited)
    assert all(nice == base for _, _, nice in got["after"]["python"])
    grpc_names = ("grpc", "event_engine", "lifeguard", "default-executo")
    at_base = {
        tid for tid, name, nice in got["before"]["engine"]
        if nice == base and not name.startswith(grpc_names)
    }  # fmt: skip
    after = {tid: nice for tid, _, nice in got["after"]["engine"]}
    # each engine thread that ran at the process's priority runs lower now (10 steps, at
    # most 19, or at the value the engine gave it itself meanwhile)
    assert at_base and all(after.get(tid, base + 1) != base for tid in at_base)
    assert min(base + 10, 19) in after.values()
    grpc_threads = [
        nice for _, name, nice in got["after"]["engine"]
        if name.startswith(grpc_names)
    ]  # fmt: skip
    assert grpc_threads and all(nice == base for nice in grpc_threads)


def test_the_nice_value_is_configured_within_its_range() -> None:
    from libs.common.config import Config, ConfigError

    assert Config.from_env({}).chdb_thread_nice == 10
    assert Config.from_env({"SEGMENTS_CHDB_THREAD_NICE": "0"}).chdb_thread_nice == 0
    for bad in ("-1", "20", "ten"):
        try:
            Config.from_env({"SEGMENTS_CHDB_THREAD_NICE": bad})
        except ConfigError as exc:
            assert "SEGMENTS_CHDB_THREAD_NICE" in str(exc)
        else:
            raise AssertionError(f"{bad} accepted")
