"""A config's seeds taking turns in one process: each seed an ordinary `Trainer` in a thread of its own,
which trains only while it holds the turn and hands it back at each evaluation.

Why turns by default, and not the population trainer (`agents/population.py`, which trains a
config's seeds together as stacked networks in one process): turns keep each seed the very run
`train --seed k` makes, bit for bit, while a population member agrees with it only to float
rounding, which grows over a run. `sweep --seeds-together` picks the population instead
(`population_trial.py`): on a quiet machine 2.7× the steps/s on pendulum's 64×64 nets with 8
seeds and 1.18× on lunar-lander's 256×256 with 4 (benchmarks/README.md).

Why a thread per seed: `Trainer.run()` trains to its end. Parked in its own event sink at an
evaluation, a trainer waits at that step with nothing in the Trainer changed (the wait falls
inside the evaluation, which its training clock leaves out). Only the holder of the turn runs,
so all of the trial's CPUs (its torch threads) go to one seed at a time.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from agents.events import (
    EpisodeEnd,
    EvalResult,
    Event,
    Notice,
    Saved,
    StateChanged,
    StepStats,
    TrainingError,
    UpdateStats,
)
from ddpg_tui.sweeps.board import STARTING, TrialReport


class SeedReporter:
    """One seed's events, folded into what its next `TrialReport` says (written by its thread, read by the trial's)."""

    def __init__(self, identity: dict[str, Any], total_steps: int) -> None:
        self.identity = identity
        self._lock = threading.Lock()
        self.state = STARTING
        self.step = self.episodes = 0
        self.total_steps = total_steps
        self.steps_per_second = self.train_seconds = 0.0
        self.evals: list[tuple[int, float, float]] = []
        self.best: tuple[float, int] | None = None
        self.resumed_from = 0
        self.saved: tuple[int, str] | None = None  # (step, save_id) of its last latest.pt
        self.message = ""
        self._episodes: list[tuple[int, float]] = []
        self._losses: list[tuple[int, float, float]] = []

    def __call__(self, event: Event) -> None:
        with self._lock:
            self.step = max(self.step, event.step)
            match event:
                case StepStats():
                    self.total_steps, self.episodes = event.total_steps, event.episode
                    self.train_seconds = event.elapsed
                    if event.steps_per_second:
                        self.steps_per_second = event.steps_per_second
                case EpisodeEnd():
                    self._episodes.append((event.step, event.episode_return))
                case UpdateStats():
                    self._losses.append((event.updates, event.critic_loss, event.actor_loss))
                case EvalResult():
                    self._add_eval(event.step, event.mean, event.std)
                case Saved() if event.reason != "best":  # best.pt alone is no point to resume from
                    self.saved = (event.step, event.save_id)
                case StateChanged():
                    self.state = event.state.value
                    if event.message:
                        self.message = event.message
                case Notice() | TrainingError():
                    self.message = event.message

    def add_eval(self, step: int, mean: float, std: float) -> None:
        with self._lock:
            self._add_eval(step, mean, std)

    def _add_eval(self, step: int, mean: float, std: float) -> None:
        self.evals.append((step, mean, std))
        if self.best is None or mean > self.best[0]:
            self.best = (mean, step)

    def set(self, **values: Any) -> None:
        with self._lock:
            for key, value in values.items():
                setattr(self, key, value)

    def curve(self) -> tuple[tuple[int, float, float], ...]:
        with self._lock:
            return tuple(self.evals)

    @property
    def last_eval_step(self) -> int:
        with self._lock:
            return self.evals[-1][0] if self.evals else 0

    def report(self) -> TrialReport:
        """The seed's report now; the episodes and losses in it are not sent again."""
        with self._lock:
            last = self.evals[-1] if self.evals else None
            report = TrialReport(
                **self.identity, state=self.state, step=self.step, total_steps=self.total_steps,
                episodes=self.episodes, steps_per_second=self.steps_per_second, train_seconds=self.train_seconds,
                eval_step=last[0] if last else 0,
                eval_mean=last[1] if last else float("nan"), eval_std=last[2] if last else float("nan"),
                best_eval=self.best[0] if self.best else float("nan"), best_step=self.best[1] if self.best else 0,
                evals=tuple(self.evals), new_episodes=tuple(self._episodes), new_losses=tuple(self._losses),
                resumed_from=self.resumed_from, checkpoint_step=self.saved[0] if self.saved else 0,
                message=self.message)
            self._episodes, self._losses = [], []
            return report


class SeedRun:
    """One seed of a config's trial: its run folder, its trainer once built, and its turn."""

    def __init__(self, index: int, seed: int, name: str, run_dir: Path, reporter: SeedReporter) -> None:
        self.index, self.seed, self.name, self.run_dir = index, seed, name, run_dir
        self.reporter = reporter
        self.trainer: Any = None  # agents.trainer.Trainer, built by the trial
        self.outcome: Any = None  # its TrainingOutcome, once its run has ended
        self.final_state = ""  # set when it cannot run at all: finished already, or an error
        self._lock = threading.Lock()
        self._turn = threading.Event()
        self._handed_back = threading.Event()
        self._thread: threading.Thread | None = None
        self._stopping = False

    @property
    def runnable(self) -> bool:
        return self.trainer is not None and self.outcome is None and not self._stopping

    @property
    def started(self) -> bool:
        return self._thread is not None

    def sink(self, event: Event) -> None:
        """The trainer's sink: fold the event, and at an evaluation before the end hand the turn back and wait."""
        self.reporter(event)
        if isinstance(event, EvalResult) and event.step < self.trainer.config.total_steps:
            with self._lock:
                if self._stopping:
                    return
                self._turn.clear()
                self._handed_back.set()
            self._turn.wait()  # the trial always sets it again: the next turn, or a stop

    def take_turn(self) -> None:
        """Let it train on to its next evaluation (or its end); `wait_turn` says when it has handed back."""
        self._handed_back.clear()
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, daemon=True, name=f"seed-{self.seed}")
            self._thread.start()
        else:
            self._turn.set()

    def wait_turn(self, timeout: float) -> bool:
        return self._handed_back.wait(timeout)

    def _run(self) -> None:
        try:
            self.outcome = self.trainer.run()  # never raises for errors inside training
        finally:
            self._handed_back.set()

    def stop(self, save: bool = True) -> None:
        """End its run (saving first, with `save`); a parked one is let go to do it."""
        with self._lock:
            self._stopping = True
            if self.trainer is not None and self.outcome is None:
                self.trainer.controls.stop(save=save)
            self._turn.set()
        if self.trainer is not None and self._thread is None and self.outcome is None:
            self._discard()

    def _discard(self) -> None:
        """A trainer built but never run: let go of its folder and its envs (run() would have)."""
        trainer = self.trainer
        if trainer.run_lock is not None:
            trainer.run_lock.release()
        trainer.env.close()
        trainer.eval_env.close()

    def join(self, deadline: float) -> bool:
        """Wait until its thread has ended or the monotonic `deadline` has passed; True if it ended."""
        if self._thread is None:
            return True
        self._thread.join(max(0.0, deadline - time.monotonic()))
        return not self._thread.is_alive()


def next_turn(seeds: list[SeedRun]) -> SeedRun | None:
    """The runnable seed that is furthest behind (round-robin, and a resumed laggard catches up first)."""
    runnable = [s for s in seeds if s.runnable]
    return min(runnable, key=lambda s: (s.reporter.last_eval_step, s.index)) if runnable else None


def wait_for_turn(seed: SeedRun, every: float, on_wait: Callable[[], bool]) -> bool:
    """Wait until `seed` hands the turn back, calling `on_wait` every `every` s; False if it asked to stop."""
    while not seed.wait_turn(every):
        if not on_wait():
            return False
    return True
