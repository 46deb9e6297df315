"""The first guess of the thread tuner: how much CPU other processes use, from /proc/stat."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from agents.cpu_use import MIN_INTERVAL, OtherCpuUse, machine_busy_seconds, starting_count


@pytest.mark.parametrize(("others", "cores", "expected"), [
    (0.0, 2, 2), (0.2, 2, 2),  # a shell or a logger is not a busy neighbour
    (0.5, 2, 1), (1.0, 2, 1), (3.0, 2, 1),  # a busy process: two threads on two cores would collapse
    (1.0, 8, 7), (None, 2, 1),  # unknown: the count that never collapses
])
def test_the_start_is_the_most_threads_that_fit_beside_the_others(others, cores, expected) -> None:
    candidates = (1, cores - 1) if cores > 2 else (1, 2)
    assert starting_count(candidates, others, cores) == expected


def test_other_processes_are_the_machine_s_busy_time_less_this_process_s() -> None:
    clock = {"busy": 100.0, "own": 5.0, "wall": 0.0}
    use = OtherCpuUse(lambda: clock["busy"], lambda: clock["own"], lambda: clock["wall"])
    clock.update(busy=102.5, own=6.0, wall=1.0)  # 2.5 core-seconds in a second, 1.0 of them ours
    assert use.cores() == pytest.approx(1.5)
    clock.update(wall=MIN_INTERVAL / 2)
    assert use.cores() is None  # too short to count ticks of 10 ms


def test_without_proc_stat_it_cannot_tell(tmp_path: Path) -> None:
    assert machine_busy_seconds(tmp_path / "absent") is None
    (tmp_path / "stat").write_text("not a stat file\n")
    assert machine_busy_seconds(tmp_path / "stat") is None
    use = OtherCpuUse(lambda: None)
    assert use.cores() is None


def test_proc_stat_fields_count_everything_but_idle_and_iowait(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr("agents.cpu_use.os.sysconf", lambda name: 100)
    stat = tmp_path / "stat"
    # user nice system idle iowait irq softirq steal guest guest_nice
    stat.write_text("cpu  100 20 30 9000 500 4 6 40 0 0\ncpu0 1 2 3 4 5 6 7 8 0 0\n")
    assert machine_busy_seconds(stat) == pytest.approx((100 + 20 + 30 + 4 + 6 + 40) / 100)


@pytest.mark.skipif(not Path("/proc/stat").exists(), reason="Linux's /proc/stat")
def test_a_real_busy_neighbour_is_seen_and_this_process_s_own_work_is_not() -> None:
    busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.3)  # the interpreter has started and spins
        use = OtherCpuUse()
        time.sleep(0.6)
        seen_with_neighbour = use.cores()
    finally:
        busy.kill()
        busy.wait()
    assert seen_with_neighbour is not None and seen_with_neighbour > 0.6
    machine_before, wall_before = machine_busy_seconds(), time.monotonic()
    own = OtherCpuUse()
    end = time.monotonic() + 0.6
    while time.monotonic() < end:  # this process spins a core itself; that is not another process
        pass
    others = own.cores()
    machine = (machine_busy_seconds() - machine_before) / (time.monotonic() - wall_before)
    assert others is not None and others < machine - 0.3  # ours (up to a core, less on a busy machine) is left out
