"""The embedded engine's threads at a lower CPU priority than the process's own.

In a serving process with the embedded engine (chDB), the engine's threads (query pipelines,
inserts, background merges) and the event loop share the machine's cores. When they are
busy, the event loop, which answers calls and hands live entries to their streams, waited
behind the engine's work: at 1,000 events a second on two cores, entry latency p99 fell from
129 and 85 ms to 82 and 57 ms with the engine's threads 10 nice steps lower (one run each,
docs/benchmarks.md).
The engine's work is not refused anything: it takes what the loop leaves, and all of it
when the loop is idle.

Threads of the engine are told apart as the threads that Python did not start and that are
not gRPC's; ClickHouse starts its pool threads as work needs them, so a watcher thread looks
again every few seconds. Raising a thread's nice value needs no privilege; threads with a
priority of their own already (the engine sets some itself) are left as they are.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

_TASKS = Path("/proc/self/task")
#: names of gRPC core's own threads (a thread name holds at most 15 characters)
_GRPC_THREADS = ("grpc", "event_engine", "lifeguard", "default-executo", "resolver-execu")
LOOK_AGAIN_SECONDS = 2.0

_started = False
_start_lock = threading.Lock()


def lower_engine_threads(nice: int) -> None:
    """Runs the embedded engine's threads `nice` (1 to 19) steps below the process's own
    priority from now until the process exits; 0 leaves them alone. Idempotent: the first
    call of a process decides."""
    global _started
    if nice <= 0 or not _TASKS.is_dir():
        return
    with _start_lock:
        if _started:
            return
        _started = True
    lower_once(nice)
    threading.Thread(target=_watch, args=(nice,), name="engine-nice", daemon=True).start()


def _watch(nice: int) -> None:
    while True:
        time.sleep(LOOK_AGAIN_SECONDS)
        lower_once(nice)


def lower_once(nice: int) -> int:
    """Lowers by `nice` the priority of the engine threads that run at the process's own
    (never past 19, the lowest); how many."""
    base = os.getpriority(os.PRIO_PROCESS, os.getpid())
    python_threads = {t.native_id for t in threading.enumerate()}
    lowered = 0
    try:
        tasks = [int(t) for t in os.listdir(_TASKS)]
    except OSError:
        return 0
    for tid in tasks:
        if tid in python_threads or tid == os.getpid():
            continue
        try:
            name = (_TASKS / str(tid) / "comm").read_text().strip()
            if name.startswith(_GRPC_THREADS) or os.getpriority(os.PRIO_PROCESS, tid) != base:
                continue
            os.setpriority(os.PRIO_PROCESS, tid, min(base + nice, 19))
            lowered += 1
        except OSError:  # the thread ended meanwhile, or the system refuses: leave it
            continue
    return lowered
