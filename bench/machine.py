"""What the machine did during a measurement, from /proc/stat: the share of its CPU time that
was busy, and the share stolen by the host of a virtual machine (time this machine's cores
were ready to run but did not). A latency measured while much is stolen says more about the
host than about the code."""

from __future__ import annotations

from pathlib import Path

_STAT = Path("/proc/stat")


def _cpu_times() -> list[int] | None:
    try:
        first = _STAT.read_text().splitlines()[0].split()
    except OSError:
        return None
    # cpu user nice system idle iowait irq softirq steal guest guest_nice
    return [int(v) for v in first[1:9]] if first and first[0] == "cpu" else None


class CpuShare:
    """The machine's CPU time from construction to `shares()`."""

    def __init__(self) -> None:
        self._start = _cpu_times()

    def shares(self) -> dict[str, float]:
        """busy and steal, in % of all the cores' time (empty where /proc/stat is absent)."""
        end = _cpu_times()
        if self._start is None or end is None:
            return {}
        delta = [b - a for a, b in zip(self._start, end, strict=True)]
        total = sum(delta) or 1
        idle = delta[3] + delta[4]
        steal = delta[7]
        return {
            "machine_busy_pct": round(100 * (total - idle - steal) / total, 1),
            "machine_steal_pct": round(100 * steal / total, 1),
        }
