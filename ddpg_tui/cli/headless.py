"""Headless training: the engine's events drawn as a rich progress bar."""

from __future__ import annotations

import signal
import sys
import threading
import time
from pathlib import Path
from types import FrameType

from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from agents.checkpoint import CheckpointError
from agents.config import ConfigError
from agents.controls import Controls
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
from agents.run_files import RunLockedError
from agents.trainer import Trainer
from ddpg_tui.channel.location import ChannelError
from ddpg_tui.channel.server import ChannelServer
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
from ddpg_tui.ui import lifecycle


def steps_text(step: int, total: int) -> str:
    return f"{step:,}/{total:,}"


def eval_text(mean: float, std: float) -> str:
    """One format for an evaluation everywhere: in the bar, the lines and the closing words."""
    return f"{mean:,.1f} ± {std:,.1f}"


def clock_text(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}"


class ProgressView:
    """Folds events into a progress display; every line worth keeping is printed above it.

    On a terminal that is a live rich bar. Piped (CI logs, `| tee`), a bar cannot redraw
    and gets cut, so it prints a plain progress line every `PLAIN_EVERY_SECONDS` instead.
    """

    PLAIN_EVERY_SECONDS = 30.0

    def __init__(self, console: Console, total: int) -> None:
        self.console = console
        self.live = console.is_terminal
        self.progress = Progress(
            TextColumn("[bold]{task.fields[state]:<10}"),
            BarColumn(),
            TextColumn("{task.fields[steps]}"),
            TextColumn("return {task.fields[last_return]}"),
            TextColumn("eval {task.fields[eval]}"),
            TextColumn("{task.fields[sps]} steps/s"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=console,
            refresh_per_second=4,
            disable=not self.live,
        )
        self.task = self.progress.add_task(
            "train", total=total, state="starting", steps=steps_text(0, total), last_return="-", eval="-", sps="-"
        )
        self._last_plain = float("-inf")
        self._latest: StepStats | None = None
        self._fields = {"state": "starting", "last_return": "-", "eval": "-"}
        self._closing_line_due = False  # a terminal state came: print the next progress as the closing line

    def __call__(self, event: Event) -> None:
        update = self._update
        match event:
            case StepStats():
                self._latest = event
                update(completed=event.step, total=event.total_steps, steps=steps_text(event.step, event.total_steps),
                       sps=f"{event.steps_per_second:,.0f}" if event.steps_per_second else "-")
                self._plain_line(force=self._closing_line_due)
            case EpisodeEnd():
                update(last_return=f"{event.episode_return:,.1f}")
            case EvalResult():
                update(eval=eval_text(event.mean, event.std))
                best = " (best)" if event.best else ""
                self.console.print(f"step {event.step:>9,}  eval {eval_text(event.mean, event.std)}{best}",
                                   highlight=False)
            case StateChanged():
                update(state=event.state.value)
                if event.state in (TrainerState.FINISHED, TrainerState.STOPPED, TrainerState.ERROR):
                    # The trainer's last StepStats comes after this event when the total is not
                    # a multiple of STATS_EVERY: the closing line waits for it, to show the last step.
                    self._closing_line_due = True
                    if self._latest is not None and self._latest.step >= event.step:
                        self._plain_line(force=True)
            case Saved() if event.reason in ("final", "interrupted"):
                self.console.print(f"saved {event.path}", highlight=False)
            case ConfigChanged():
                changes = ", ".join(f"{key}={value}" for key, value in event.changes.items())
                self.console.print(f"step {event.step:>9,}  set {changes}", highlight=False)
            case Notice():
                prefix = "[yellow]warning:[/] " if event.level == "warning" else ""
                self.console.print(f"{prefix}{escape(event.message)}", highlight=False)
            case TrainingError():
                self.console.print(f"[red]error:[/] {escape(event.message)}", highlight=False)

    def show(self, field: str, text: str) -> None:
        """Set the bar's `last_return` or `eval` field, for a front-end that folds those events itself
        (a population shows the median over its members)."""
        self._update(**{field: text})

    def _update(self, **fields: object) -> None:
        self._fields.update({k: v for k, v in fields.items() if isinstance(v, str)})
        self.progress.update(self.task, **fields)

    def _plain_line(self, force: bool = False) -> None:
        if self.live or self._latest is None:
            return
        now = time.monotonic()
        if not force and now - self._last_plain < self.PLAIN_EVERY_SECONDS:
            return
        self._last_plain = now
        self._closing_line_due = False
        p = self._latest
        eta = (p.total_steps - p.step) / p.steps_per_second if p.steps_per_second else None
        self.console.print(
            f"{self._fields['state']:<10} {steps_text(p.step, p.total_steps)}  return {self._fields['last_return']}  "
            f"eval {self._fields['eval']}  {p.steps_per_second:,.0f} steps/s  elapsed {clock_text(p.elapsed)}  "
            f"eta {clock_text(eta) if eta is not None else '-'}", highlight=False, soft_wrap=True)


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
    controls, record_evaluations = Controls(), threading.Event()
    channel = ChannelServer(run_dir, controls, env_id=request.env_id or "", record_evaluations=record_evaluations)

    def sink(event: Event) -> None:
        view(event)
        channel.publish(event)

    try:
        check_writable(run_dir)
        trainer = Trainer(request.config, sink, run_dir, resume_from=request.resume_from,
                          total_steps=request.total_steps, save_replay_buffer=request.save_replay_buffer,
                          env_id=request.env_id, front_end="headless", controls=controls,
                          record_evaluations=record_evaluations)
    except (EnvError, ConfigError, CheckpointError, RunDirError, RunLockedError) as error:
        request.discard_unused_run_dir()
        print(f"ddpg-tui: error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    channel.env_id = trainer.config.env_id
    try:  # after the Trainer took the run's lock: the socket and control.json are this process's alone
        channel.start(trainer.step)
    except (ChannelError, OSError) as error:  # the run goes on, only without attaching
        console.print(f"[yellow]warning:[/] no control channel, 'ddpg-tui attach' will not reach this run: "
                      f"{escape(str(error))}", highlight=False)

    received: list[int] = []

    def on_signal(signum: int, frame: FrameType | None) -> None:
        lifecycle.on_signal_received(signum)
        if received:  # a second Ctrl+C (or signal): end now, without the final save
            lifecycle.end_process(lifecycle.exit_code(signum))
        received.append(signum)
        # Stop first: on a closed terminal the print below would fail, and the save must not.
        trainer.controls.stop()
        lifecycle.end_after(lambda: False, lifecycle.exit_code(signum))  # the stop and its save are bounded
        lifecycle.say(console.print, "stopping: saving a checkpoint first (Ctrl+C again to abort)")

    previous = {sig: signal.signal(sig, on_signal) for sig in SIGNAL_EXIT_CODES}
    total = trainer.config.total_steps
    if request.resume_from is not None:
        console.print(f"resuming {run_dir} at step {trainer.step:,} of {total:,} ({trainer.config.env_id})")
    else:
        console.print(f"training {trainer.config.env_id} for {total:,} steps → {run_dir}")
    if not trainer.config.threads:
        console.print(f"torch threads: {trainer.threads} (auto; --set threads=N to choose)"
                      if trainer.thread_tuner is None else
                      f"torch threads: {' or '.join(map(str, trainer.thread_tuner.candidates))}, "
                      "whichever trains faster here, timed as it trains (--set threads=N to fix)", highlight=False)
    try:
        with view.progress:
            outcome = trainer.run()
    finally:
        channel.close()
        lifecycle.keep_handlers_if_signalled(previous, received)

    for line in closing_lines(outcome):
        lifecycle.say(lambda text: console.print(text, highlight=False, soft_wrap=True), line)
    if outcome.state == TrainerState.ERROR:
        return lifecycle.end_if_signalled(received, EXIT_FAILED)
    if received:
        return lifecycle.end_if_signalled(received, SIGNAL_EXIT_CODES.get(received[0], EXIT_SIGINT))
    return EXIT_OK
