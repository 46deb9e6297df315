"""`ddpg-tui train --seeds 0-7 --headless`: one config's seeds trained as one population, in this process.

The members' networks are stacked and updated in one batched step (agents/population.py), and
each member writes an ordinary run folder, `RUN/seed-K/`, so `eval`, `watch`, `compare`,
`export` and `train --resume` work on any member. The terminal shows one progress bar (the
members step in lockstep) and, at each evaluation, the median over the members with the
interquartile range: what a reader of a seeds plot looks at.
"""

from __future__ import annotations

import signal
import sys
from pathlib import Path
from types import FrameType

import numpy as np
from rich.console import Console
from rich.markup import escape

from agents.checkpoint import CheckpointError
from agents.config import ConfigError
from agents.envs import EnvError
from agents.events import (
    EpisodeEnd,
    EvalResult,
    Event,
    Notice,
    Saved,
    StateChanged,
    StepStats,
    TrainerState,
    TrainingError,
)
from agents.population import PopulationTrainer
from agents.run_files import RunLockedError, existing_run, refuse_if_locked
from ddpg_tui.cli.headless import ProgressView, check_writable
from ddpg_tui.population import closing_lines, member_dirs, quartiles
from ddpg_tui.request import EXIT_BAD_INPUT, EXIT_FAILED, EXIT_OK, TrainingRequest, UsageError
from ddpg_tui.ui import lifecycle

SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def refuse_taken_members(run_dir: Path, seeds: tuple[int, ...]) -> None:
    """A member folder that holds a run, or is being trained, is refused as `--run-dir` on it would be."""
    for folder in member_dirs(run_dir, seeds):
        refuse_if_locked(folder)
        held = existing_run(folder)
        if held is not None:
            raise UsageError(f"{folder} already holds a run (step {held[0]:,}); resume it with --resume {folder}, "
                             "or choose another --run-dir")


class PopulationView:
    """Member events into one bar and one line per evaluation step (median and IQR over the members)."""

    def __init__(self, console: Console, total: int, seeds: tuple[int, ...]) -> None:
        self.console = console
        self.seeds = seeds
        self.bar = ProgressView(console, total)  # fed member 0's progress and the population's state
        self._evals: dict[int, dict[int, EvalResult]] = {}
        self._returns: dict[int, float] = {}  # each member's last episode return

    def __call__(self, k: int, event: Event) -> None:
        match event:
            case EpisodeEnd():
                self._returns[k] = event.episode_return
                self.bar.show("last_return", f"median {float(np.median(list(self._returns.values()))):,.1f}")
            case EvalResult():
                at_step = self._evals.setdefault(event.step, {})
                at_step[k] = event
                if len(at_step) == len(self.seeds):
                    self._print_eval(event.step, [at_step[i].mean for i in range(len(self.seeds))])
                    del self._evals[event.step]
            case Saved() if event.reason in ("final", "interrupted") and k == 0:
                folder = event.path.parent.parent.parent
                self.console.print(f"saved every member's checkpoint under {folder}", highlight=False)
            case Notice() | TrainingError() if k != 0:
                return  # the population says each once, for every member; member 0's copy is enough
            case StepStats() | StateChanged() | Notice() | TrainingError() if k == 0:
                self.bar(event)

    def _print_eval(self, step: int, means: list[float]) -> None:
        median, q1, q3 = quartiles(means)
        self.bar.show("eval", f"median {median:,.1f}")
        self.console.print(f"step {step:>9,}  eval median {median:,.1f} (IQR {q1:,.1f} to {q3:,.1f}) over "
                           f"{len(means)} seeds", highlight=False)


def run_population_headless(request: TrainingRequest, seeds: tuple[int, ...]) -> int:
    assert request.config is not None  # a new population; a resumed one comes through resume_population_headless
    config = request.config
    try:
        check_writable(request.run_dir)
        population = PopulationTrainer(config, list(seeds), member_dirs(request.run_dir, seeds),
                                       threads=config.threads or 1)
    except (EnvError, ConfigError, RunLockedError, ValueError) as error:
        request.discard_unused_run_dir()
        print(f"ddpg-tui: error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    return _train(population, request.run_dir, seeds,
                  f"training {config.env_id} for {config.total_steps:,} steps, seeds {', '.join(map(str, seeds))} "
                  f"as one population → {request.run_dir}/seed-K")


def resume_population_headless(run_dir: Path, members: list[Path], total_steps: int | None) -> int:
    try:
        for member in members:
            refuse_if_locked(member)
        population = PopulationTrainer.resume(members, total_steps=total_steps)
    except (CheckpointError, EnvError, ConfigError, RunLockedError, ValueError) as error:
        print(f"ddpg-tui: error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    seeds = tuple(population.seeds)
    return _train(population, run_dir, seeds,
                  f"resuming the population {run_dir} (seeds {', '.join(map(str, seeds))}) at step "
                  f"{population.step:,} of {population.config.total_steps:,}")


def _train(population: PopulationTrainer, run_dir: Path, seeds: tuple[int, ...], headline: str) -> int:
    console = Console(stderr=False)
    view = PopulationView(console, population.config.total_steps, seeds)
    population.sink = view
    received: list[int] = []

    def on_signal(signum: int, frame: FrameType | None) -> None:
        lifecycle.on_signal_received(signum)
        if received:
            lifecycle.end_process(lifecycle.exit_code(signum))
        received.append(signum)
        population.controls.stop()  # before any output: on a closed terminal a print fails, the save must not
        lifecycle.end_after(lambda: False, lifecycle.exit_code(signum))
        lifecycle.say(console.print, "stopping: saving every member's checkpoint first (Ctrl+C again to abort)")

    previous = {sig: signal.signal(sig, on_signal) for sig in SIGNALS}
    console.print(headline, highlight=False, soft_wrap=True)
    try:
        with view.bar.progress:
            outcome = population.run()
    finally:
        lifecycle.keep_handlers_if_signalled(previous, received)
    for line in closing_lines(outcome, seeds, run_dir):
        lifecycle.say(lambda text: console.print(escape(text), highlight=False, soft_wrap=True), line)
    if outcome.state == TrainerState.ERROR:
        return lifecycle.end_if_signalled(received, EXIT_FAILED)
    if received:
        return lifecycle.end_if_signalled(received, lifecycle.exit_code(received[0]))
    return EXIT_OK
