"""How much of the machine other processes used over an interval: the thread tuner's first guess.

The tuner (agents/thread_tuner.py) must start from one thread count and try the other. Starting
from the losing one costs its whole first window, a few percent of a run of a few thousand steps.
So the trainer measures, over its own start-up and warm-up, the CPU time the whole machine spent
(Linux's /proc/stat) minus its own process's (time.process_time): what is left is other
processes. Cores to spare for every thread means more threads are the likely winner; a busy
neighbour means one. The tuner's comparison still decides; this only picks where it starts.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

PROC_STAT = Path("/proc/stat")
MIN_INTERVAL = 0.2  # seconds of wall time: /proc/stat counts in ticks of 10 ms
SPARE = 0.25  # cores of slack: a shell, a terminal or a logger is not a busy neighbour


def machine_busy_seconds(stat: Path = PROC_STAT) -> float | None:
    """CPU seconds every core has spent not idle since boot, or None where /proc/stat is not there."""
    try:
        fields = stat.read_text().split("\n", 1)[0].split()
    except OSError:
        return None
    if not fields or fields[0] != "cpu" or len(fields) < 8:
        return None
    user, nice, system, _idle, _iowait, irq, softirq, *rest = (int(value) for value in fields[1:])
    steal = rest[0] if rest else 0  # a hypervisor's other guests: busy, as far as this run is concerned
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


class OtherCpuUse:
    """Started once; `cores()` then says how many cores other processes kept busy since, on average."""

    def __init__(self, busy: Callable[[], float | None] = machine_busy_seconds,
                 own: Callable[[], float] = time.process_time, wall: Callable[[], float] = time.monotonic) -> None:
        self._busy, self._own, self._wall = busy, own, wall
        self._start = (busy(), own(), wall())

    def cores(self) -> float | None:
        """None when it cannot tell: no /proc/stat, or too short an interval to count."""
        busy_then, own_then, wall_then = self._start
        busy_now, own_now, wall_now = self._busy(), self._own(), self._wall()
        interval = wall_now - wall_then
        if busy_then is None or busy_now is None or interval < MIN_INTERVAL:
            return None
        return max(0.0, (busy_now - busy_then) - (own_now - own_then)) / interval


def starting_count(candidates: tuple[int, ...], others: float | None, cores: int) -> int:
    """The most threads that fit beside what other processes use; the fewest when that is unknown."""
    if others is None:
        return min(candidates)
    fitting = [count for count in candidates if count + others <= cores + SPARE]
    return max(fitting) if fitting else min(candidates)
