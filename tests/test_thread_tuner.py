"""The thread tuner keeps the faster count, notices a busy machine, and costs little when it tries."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
import torch

from agents.config import DDPGConfig
from agents.thread_tuner import MAX_HOLD, WINDOW_SECONDS, ThreadTuner
from agents.trainer import Trainer

IDLE = {1: 110.0, 2: 150.0}  # steps/s measured on the 2-core machine (see agents/thread_tuner.py)
LOADED = {1: 76.0, 2: 2.0}


Rates = Callable[[float], dict[int, float]]


def simulate(rates_at: Rates, seconds: float, start: int = 1) -> tuple[ThreadTuner, dict[int, float], int]:
    """Run a tuner, first timing `start` threads, on a machine whose steps/s by count follow `rates_at(time)`.

    Returns the tuner, the time spent at each count, and the steps done.
    """
    tuner = ThreadTuner((1, 2), current=start)
    time_at = {1: 0.0, 2: 0.0}
    now, step = 0.0, 0
    tuner.observe(step, now)
    while now < seconds:
        duration = 1.0 / rates_at(now)[tuner.current]
        time_at[tuner.current] += duration
        now += duration
        step += 1
        tuner.observe(step, now)
    return tuner, time_at, step


def test_on_an_idle_machine_it_keeps_the_faster_two_threads() -> None:
    tuner, time_at, _ = simulate(lambda now: IDLE, 300)
    assert tuner.kept == 2
    assert time_at[1] / 300 < 0.05  # the scheduled tries of 1 thread cost little


def test_beside_a_busy_process_it_keeps_one_thread_and_tries_two_rarely() -> None:
    tuner, time_at, steps = simulate(lambda now: LOADED, 600)
    assert tuner.kept == 1
    # Each try of 2 threads lasts one window and does almost nothing; the holds between tries double.
    assert time_at[2] / 600 < 2.5 / MAX_HOLD
    assert steps > 0.9 * 600 * LOADED[1]


def test_a_losing_try_ends_early_so_a_short_busy_run_loses_little() -> None:
    # The case: a few thousand steps beside a busy process. Whole-window tries of 2 threads
    # (at 1/7 of the speed) cost about a third of such a run; a try judged after a quarter window costs little.
    # Pendulum's steps/s in benchmarks/threads_under_load.py beside a busy loop: 1 thread 500, 2 threads 72.
    seconds, pendulum_loaded = 5.0, {1: 500.0, 2: 72.0}
    _, time_at, steps = simulate(lambda now: pendulum_loaded, seconds)
    assert time_at[2] < 0.1 * seconds
    assert steps > 0.93 * seconds * pendulum_loaded[1]


def test_a_short_idle_run_keeps_the_faster_count_for_nearly_all_of_it() -> None:
    # Lunar's steps/s on the idle machine in the same benchmark: 1 thread 161, 2 threads 232.
    seconds, lunar_idle = 10.0, {1: 161.0, 2: 232.0}
    tuner, _, steps = simulate(lambda now: lunar_idle, seconds)
    assert tuner.kept == 2
    assert steps > 0.95 * seconds * lunar_idle[2]


def test_a_try_that_is_only_a_little_slower_is_judged_on_its_whole_window() -> None:
    tuner = ThreadTuner((1, 2), current=1)
    tuner.observe(0, 0.0)
    assert tuner.observe(100, 1.0).threads == 2  # 1 thread: 100 steps/s; now 2 threads are tried
    assert tuner.observe(190, 1.9) is None  # 2 threads at 90/s: slower, but not clearly; the window goes on
    switch = tuner.observe(200, 2.01)
    assert switch is not None and switch.threads == 1 and switch.reason == "kept the fastest"


def test_a_process_started_beside_it_is_noticed_within_a_few_windows() -> None:
    tuner, _, steps = simulate(lambda now: IDLE if now < 100 else LOADED, 400)
    assert tuner.kept == 1
    best = 100 * IDLE[2] + 300 * LOADED[1]
    assert steps > 0.9 * best


def test_when_the_other_process_ends_it_goes_back_to_two_threads() -> None:
    tuner, _, steps = simulate(lambda now: LOADED if now < 100 else IDLE, 400)
    assert tuner.kept == 2
    best = 100 * LOADED[1] + 300 * IDLE[2]
    assert steps > 0.85 * best


def test_the_trainer_switches_threads_by_the_tuner_and_records_each_switch(tmp_path, monkeypatch) -> None:
    # A tuner that measures two made-up rates: 2 threads faster. The trainer must set torch's count,
    # record a "threads" row, and say once which count it kept.
    def fake_observe(self: ThreadTuner, step: int, elapsed: float):
        rates = {1: 100.0, 2: 200.0}
        return ThreadTuner._window_done(self, rates[self.current]) if step % 50 == 0 else None

    monkeypatch.setattr(ThreadTuner, "observe", fake_observe)
    monkeypatch.setattr("agents.trainer.default_threads", lambda front_end: 2)
    monkeypatch.setattr("agents.trainer.OtherCpuUse", lambda: OthersUsed(1.0))  # a busy neighbour: start at 1
    before = torch.get_num_threads()
    events = []
    try:
        config = DDPGConfig(env_id="Pendulum-v1", total_steps=700, learning_starts=100, eval_every=0,
                            save_every=0, eval_episodes=1, hidden_sizes=(8,), batch_size=8, threads=0)
        trainer = Trainer(config, events.append, tmp_path / "run", front_end="headless")
        assert trainer.threads == 1  # it starts where a busy machine cannot hurt
        trainer.run()
        assert trainer.thread_tuner is not None and trainer.thread_tuner.kept == 2
        assert torch.get_num_threads() == trainer.threads  # the count in use is the one torch has
    finally:
        torch.set_num_threads(before)
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    switches = [row for row in rows if row["kind"] == "threads"]
    assert [(row["old"], row["new"]) for row in switches][:3] == [(1, 2), (2, 1), (1, 2)]  # a later try, lost
    assert switches[-1]["new"] == trainer.threads
    notices = [event for event in events if type(event).__name__ == "Notice" and "torch threads" in event.message]
    assert len(notices) == 1 and "1 -> 2" in notices[0].message


class OthersUsed:
    """Stands in for agents.cpu_use.OtherCpuUse: other processes kept this many cores busy."""

    def __init__(self, cores: float | None) -> None:
        self._cores = cores

    def cores(self) -> float | None:
        return self._cores


@pytest.mark.parametrize(("others", "starts_at"), [(0.05, 2), (1.0, 1), (None, 1)])  # None: no /proc/stat
def test_the_first_comparison_starts_from_what_fits_beside_other_processes(tmp_path, monkeypatch, others,
                                                                           starts_at) -> None:
    # Idle, the first window runs 2 threads, so only the try of 1 is spent on the likely loser.
    monkeypatch.setattr("agents.trainer.default_threads", lambda front_end: 2)
    monkeypatch.setattr("agents.trainer.OtherCpuUse", lambda: OthersUsed(others))
    before = torch.get_num_threads()
    try:
        config = DDPGConfig(env_id="Pendulum-v1", total_steps=150, learning_starts=100, eval_every=0,
                            save_every=0, eval_episodes=1, hidden_sizes=(8,), batch_size=8, threads=0)
        trainer = Trainer(config, None, tmp_path / "run", front_end="headless")
        trainer.run()
    finally:
        torch.set_num_threads(before)
    assert trainer.thread_tuner is not None and trainer.thread_tuner.started
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    at_first_update = [(row["old"], row["new"], row["reason"]) for row in rows
                       if row["kind"] == "threads" and row["step"] == 101]
    if starts_at == 2:
        assert at_first_update == [(1, 2, "other processes used 0.05 cores before training")]
    else:
        assert at_first_update == []  # it stays on the 1 thread it started with


def test_the_start_can_be_chosen_only_before_timing_begins() -> None:
    tuner = ThreadTuner((1, 2), current=1)
    tuner.start_from(2)
    assert (tuner.kept, tuner.current) == (2, 2)
    with pytest.raises(ValueError, match="not one of the candidates"):
        tuner.start_from(3)
    tuner.observe(0, 0.0)
    assert tuner.observe(200, 1.0).threads == 1  # the first comparison tries the other count
    with pytest.raises(RuntimeError):
        tuner.start_from(1)


def test_starting_from_the_likely_winner_makes_the_first_comparison_cheap() -> None:
    # Lunar idle (1 thread 161 steps/s, 2 threads 232): starting at 1 spends a whole window on it;
    # starting at 2, the try of 1 is cut after a quarter window (161/232 < EARLY_RATIO).
    lunar_idle = {1: 161.0, 2: 232.0}
    at_one = simulate(lambda now: lunar_idle, 10.0)[2]
    at_two = simulate(lambda now: lunar_idle, 10.0, start=2)[2]
    assert at_two > at_one + 0.5 * WINDOW_SECONDS * (lunar_idle[2] - lunar_idle[1])
    assert at_two > 0.98 * 10.0 * lunar_idle[2]


def test_a_fixed_thread_count_is_never_tuned(tmp_path) -> None:
    config = DDPGConfig(env_id="Pendulum-v1", total_steps=10, learning_starts=5, threads=1)
    trainer = Trainer(config, None, None, front_end="headless")
    assert trainer.thread_tuner is None and trainer.threads == 1
