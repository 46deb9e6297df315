"""Headless training: the engine's events drawn as a rich progress bar."""

from __future__ import annotations

import signal
import sys
from pathlib import Path
from types import FrameType

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from agents.checkpoint import CheckpointError
from agents.config import ConfigError
from agents.envs import EnvError
from agents.events import (
    ConfigChanged,
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
from agents.trainer import Trainer
from ddpg_tui.request import (
    EXIT_BAD_INPUT,
    EXIT_FAILED,
    EXIT_OK,
    EXIT_SIGHUP,
    EXIT_SIGINT,
    EXIT_SIGTERM,
    TrainingRequest,
    closing_lines,
)


class ProgressView:
    """Folds events into one progress task; every line worth keeping is printed above it."""

    def __init__(self, console: Console, total: int) -> None:
        self.console = console
        self.progress = Progress(
            TextColumn("[bold]{task.fields[state]:<10}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("return {task.fields[last_return]}"),
            TextColumn("eval {task.fields[eval]}"),
            TextColumn("{task.fields[sps]} steps/s"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=console,
            refresh_per_second=4,
        )
        self.task = self.progress.add_task(
            "train", total=total, state="starting", last_return="-", eval="-", sps="-"
        )

    def __call__(self, event: Event) -> None:
        update = self.progress.update
        match event:
            case StepStats():
                update(self.task, completed=event.step, total=event.total_steps,
                       sps=f"{event.steps_per_second:,.0f}" if event.steps_per_second else "-")
            case EpisodeEnd():
                update(self.task, completed=event.step, last_return=f"{event.episode_return:,.1f}")
            case EvalResult():
                update(self.task, eval=f"{event.mean:,.1f}±{event.std:,.1f}")
                best = " (best)" if event.best else ""
                self.console.print(f"step {event.step:>9,}  eval {event.mean:9.1f} ± {event.std:.1f}{best}")
            case StateChanged():
                update(self.task, state=event.state.value)
            case Saved() if event.reason in ("final", "interrupted"):
                self.console.print(f"saved {event.path}")
            case ConfigChanged():
                self.console.print(f"step {event.step:>9,}  set {event.changes}")
            case Notice():
                self.console.print(f"[yellow]warning:[/] {event.message}")
            case TrainingError():
                self.console.print(f"[red]error:[/] {event.message}")


class RunDirError(ValueError):
    pass


def check_writable(run_dir: Path) -> None:
    """Refuse a run folder we cannot write before training, rather than lose the run."""
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        probe = run_dir / ".write-test"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as error:
        raise RunDirError(f"run folder {run_dir} is not writable ({error.strerror or error}); "
                          "choose another with --run-dir") from None


SIGNAL_EXIT_CODES = {signal.SIGINT: EXIT_SIGINT, signal.SIGTERM: EXIT_SIGTERM, signal.SIGHUP: EXIT_SIGHUP}


def run_headless(request: TrainingRequest) -> int:
    console = Console(stderr=False)
    view = ProgressView(console, request.config.total_steps if request.config else 0)
    run_dir = request.run_dir
    try:
        check_writable(run_dir)
        trainer = Trainer(request.config, view, run_dir, resume_from=request.resume_from,
                          total_steps=request.total_steps, save_replay_buffer=request.save_replay_buffer,
                          env_id=request.env_id, front_end="headless")
    except (EnvError, ConfigError, CheckpointError, RunDirError) as error:
        request.discard_unused_run_dir()
        print(f"ddpg-tui: error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT

    received: list[int] = []

    def on_signal(signum: int, frame: FrameType | None) -> None:
        if received:  # a second Ctrl+C: stop now, without the final save
            raise KeyboardInterrupt
        received.append(signum)
        console.print("stopping: saving a checkpoint first (Ctrl+C again to abort)")
        trainer.controls.stop()

    previous = {sig: signal.signal(sig, on_signal) for sig in SIGNAL_EXIT_CODES}
    total = trainer.config.total_steps
    if request.resume_from is not None:
        console.print(f"resuming {run_dir} at step {trainer.step:,} of {total:,} ({trainer.config.env_id})")
    else:
        console.print(f"training {trainer.config.env_id} for {total:,} steps → {run_dir}")
    if not trainer.config.threads:
        console.print(f"torch threads: {trainer.threads} (auto: every core for a headless run; --set threads=N "
                      "to choose)", highlight=False)
    try:
        with view.progress:
            outcome = trainer.run()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)

    for line in closing_lines(outcome):
        console.print(line, highlight=False, soft_wrap=True)
    if outcome.state == TrainerState.ERROR:
        return EXIT_FAILED
    if received:
        return SIGNAL_EXIT_CODES.get(received[0], EXIT_SIGINT)
    return EXIT_OK
