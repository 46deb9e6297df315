"""The Tune trainable: one trial is one ordinary `Trainer` run in an ordinary run folder.

It holds no training logic. It builds the trial's config (the sweep's base, the variant's
overrides, the seed, one torch thread per CPU Tune gave it), restores the run folder from
the checkpoint Tune hands it, runs the same `Trainer` every other front-end runs, and turns
the trainer's events into Tune reports:

- every evaluation, and every few seconds of progress: `tune.report(metrics)`;
- every save of `latest.pt` (periodic, final, or on a stop): the same, with
  `Checkpoint.from_directory(run_dir / "checkpoints")`. The report is made from inside the
  trainer's sink, so training waits while Tune copies the folder: the copy is always a
  consistent pair of `latest.pt` and `replay_buffer.pt`.

A retried trial (its worker died) or a resumed sweep starts here again with
`tune.get_checkpoint()`: that pair is copied back into the run folder and the trainer
resumes from it bit-exactly, with its replay buffer, never without it.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
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
    TrainerState,
    TrainingError,
    UpdateStats,
)
from ddpg_tui.sweeps.board import ERROR, FINISHED, PAUSED, STARTING, STOPPED, TrialReport
from ddpg_tui.sweeps.space import Variant, trial_name, variant_of

CHECKPOINT_FILES = ("replay_buffer.pt", "best.pt", "latest.pt")  # latest last: see _restore_from_tune
POLL_SECONDS = 1.0


@dataclass(frozen=True, slots=True)
class TrialPlan:
    """What every trial of a sweep shares; handed to the trainable with `tune.with_parameters`."""

    sweep_dir: str  # absolute; on a cluster, a path that every node sees (shared storage)
    base: dict[str, Any]  # DDPGConfig.to_dict() of the sweep's base config
    grid_keys: tuple[str, ...]
    threads: int = 0  # 0: one torch thread per CPU Tune gave the trial
    controls: str = ""  # name of the sweep's controls actor
    namespace: str = ""
    progress_every: float = 2.0  # seconds between progress reports


ReportFn = Callable[..., None]


class TuneReporter:
    """The trainer's sink in a trial: folds events, and reports to Tune when there is news."""

    def __init__(self, variant: Variant, seed: int, name: str, checkpoint_dir: Path, report: ReportFn,
                 make_checkpoint: Callable[[Path], Any], progress_every: float, attempt: str, node: str) -> None:
        self.identity = {"trial": name, "variant": variant.label, "seed": seed, "attempt": attempt,
                         "pid": os.getpid(), "node": node}
        self.checkpoint_dir = checkpoint_dir
        self._report, self._make_checkpoint = report, make_checkpoint
        self.progress_every = progress_every
        self.state = STARTING
        self.step = self.total_steps = self.episodes = 0
        self.steps_per_second = self.train_seconds = 0.0
        self.evals: list[tuple[int, float, float]] = []
        self.best: tuple[float, int] | None = None
        self.resumed_from = 0
        self.checkpoint_step = 0
        self.message = ""
        self._episodes: list[tuple[int, float]] = []
        self._losses: list[tuple[int, float, float]] = []
        self._last_sent = time.monotonic()

    def __call__(self, event: Event) -> None:
        self.step = max(self.step, event.step)
        match event:
            case StepStats():
                self.total_steps, self.episodes = event.total_steps, event.episode
                self.train_seconds = event.elapsed
                if event.steps_per_second:
                    self.steps_per_second = event.steps_per_second
                if time.monotonic() - self._last_sent >= self.progress_every:
                    self.send()
            case EpisodeEnd():
                self._episodes.append((event.step, event.episode_return))
            case UpdateStats():
                self._losses.append((event.updates, event.critic_loss, event.actor_loss))
            case EvalResult():
                self.add_eval(event.step, event.mean, event.std)
                self.send()
            case Saved() if event.reason != "best":  # best.pt alone is no point to resume from
                self.checkpoint_step = event.step
                self.send(checkpoint=True)
            case StateChanged():
                self.state = event.state.value
                if event.message:
                    self.message = event.message
            case Notice() | TrainingError():
                self.message = event.message

    def add_eval(self, step: int, mean: float, std: float) -> None:
        self.evals.append((step, mean, std))
        if self.best is None or mean > self.best[0]:
            self.best = (mean, step)

    def metrics(self) -> dict[str, Any]:
        last = self.evals[-1] if self.evals else None
        report = TrialReport(
            **self.identity, state=self.state, step=self.step, total_steps=self.total_steps,
            episodes=self.episodes, steps_per_second=self.steps_per_second, train_seconds=self.train_seconds,
            eval_step=last[0] if last else 0,
            asha_step=max((step for step, _, _ in self.evals if step < self.total_steps), default=0),
            eval_mean=last[1] if last else float("nan"),
            eval_std=last[2] if last else float("nan"), best_eval=self.best[0] if self.best else float("nan"),
            best_step=self.best[1] if self.best else 0, evals=tuple(self.evals), new_episodes=tuple(self._episodes),
            new_losses=tuple(self._losses), resumed_from=self.resumed_from, checkpoint_step=self.checkpoint_step,
            message=self.message)
        return report.to_metrics()

    def send(self, checkpoint: bool = False) -> None:
        metrics = self.metrics()
        self._episodes, self._losses = [], []
        self._last_sent = time.monotonic()
        if checkpoint:
            self._report(metrics, checkpoint=self._make_checkpoint(self.checkpoint_dir))
        else:
            self._report(metrics)


# The trainable ------------------------------------------------------------------------------


def train_trial(config: dict[str, Any], plan: TrialPlan) -> None:
    """Tune's function trainable for one trial (pass it through `tune.with_parameters(train_trial, plan=...)`)."""
    import ray
    from ray import tune

    from agents.checkpoint import CheckpointError
    from agents.checkpoint_payload import RunFinishedError
    from agents.config import ConfigError, DDPGConfig
    from agents.envs import EnvError
    from agents.run_files import RunFiles, RunLock, RunLockedError
    from agents.trainer import Trainer

    variant, seed = variant_of(config, plan.grid_keys)
    name = trial_name(variant.label, seed)
    files = RunFiles(Path(plan.sweep_dir) / name)
    context = ray.get_runtime_context()
    cpus = context.get_assigned_resources().get("CPU", 1.0)
    threads = plan.threads or max(1, int(cpus))
    reporter = TuneReporter(variant, seed, name, files.checkpoint_dir, tune.report, tune.Checkpoint.from_directory,
                            plan.progress_every, uuid.uuid4().hex[:8], context.get_node_id()[:8])
    controls = _controls_actor(plan)
    if controls is not None and _poll(controls, name) == "pause":
        _wait_paused(reporter, controls)  # the sweep is being stopped: start nothing new

    run_lock = RunLock(files.run_dir)
    try:
        run_lock.acquire()  # before the folder is cleared or restored: it may be another live writer's
    except RunLockedError as error:
        reporter.state, reporter.message = ERROR, str(error)
        reporter.send()
        return  # not retried into: the other writer owns the folder
    # The Trainer releases it when its run ends; this covers the ways out before that.
    with run_lock:
        resume_from = _prepare_run_folder(files, tune.get_checkpoint())
        base = DDPGConfig.from_mapping(plan.base)
        trial_config = base.replace(**variant.as_dict(), seed=seed, threads=threads)
        reporter.total_steps = trial_config.total_steps
        try:
            # On resume, the env id is the sweep's own (typed by the user or from a preset), so one that names a
            # module, which a checkpoint alone may not, is trusted here as it was when the sweep began.
            trainer = Trainer(None if resume_from else trial_config, reporter, files.run_dir, resume_from=resume_from,
                              env_id=trial_config.env_id if resume_from else None, front_end="headless",
                              run_lock=run_lock)
        except RunFinishedError:
            _report_finished(reporter, files)  # a restart after the trial had ended: nothing to redo
            return
        except (EnvError, ConfigError, CheckpointError, OSError) as error:
            reporter.state, reporter.message = ERROR, str(error)
            reporter.send()
            return  # a config error repeats on every retry: report it once, do not burn retries
        if resume_from is not None:
            import torch

            torch.set_num_threads(threads)  # the checkpoint's config names the CPUs of the earlier attempt
            reporter.resumed_from = trainer.step
            for step, mean, std in _evals_in(files, up_to=trainer.step):
                reporter.add_eval(step, mean, std)

        requested: list[str] = []
        finished = threading.Event()
        if controls is not None:
            threading.Thread(target=_watch_controls, args=(controls, name, trainer, requested, finished),
                             daemon=True, name=f"controls-{name}").start()
        try:
            outcome = trainer.run()
        finally:
            finished.set()
    reporter.step = outcome.step
    if outcome.state == TrainerState.ERROR:
        reporter.state, reporter.message = ERROR, outcome.error
    elif outcome.state == TrainerState.STOPPED:
        reporter.state = PAUSED if requested == ["pause"] else STOPPED
    else:
        reporter.state = FINISHED
    reporter.send()
    if reporter.state == PAUSED:
        _wait_paused(reporter, controls)


def _prepare_run_folder(files: Any, checkpoint: Any) -> Path | None:
    """The checkpoint to resume from, with the run folder made to match it; None to start afresh."""
    if checkpoint is not None:
        with checkpoint.as_directory() as source:
            if _saved_step(files.latest) > _saved_step(Path(source) / files.latest.name):
                # The folder saved again after the save Tune knows of: the driver was killed before
                # Tune recorded the newer one (or the trial's end). Going back would redo that work.
                return files.latest
            _restore_from_tune(Path(source), files.checkpoint_dir)
        return files.latest
    if files.latest.exists():
        return files.latest  # Tune has no checkpoint for it (its state was lost), but the folder has
    # A fresh start: rows or files of an attempt that never saved would be mixed into this one.
    for path in (files.metrics_path, files.config_path, files.effective_config_path,
                 *(files.checkpoint_dir / n for n in CHECKPOINT_FILES)):
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
    return None


def _saved_step(path: Path) -> int:
    """The step a checkpoint file was saved at; -1 if there is none or it cannot be read."""
    from agents.checkpoint import CheckpointError, load_checkpoint

    try:
        return int(load_checkpoint(path)["counters"]["step"])
    except (CheckpointError, OSError, KeyError, TypeError, ValueError):
        return -1


def _restore_from_tune(source: Path, target: Path) -> None:
    """Copy Tune's checkpoint (a consistent latest.pt + replay_buffer.pt pair) into the run folder.

    Always copied, even when the folder's own files look the same: a worker killed between
    writing the buffer and writing latest.pt leaves a pair that does not match, and Tune's
    copy is the one that is known to. Each file lands whole (copy, then rename), latest.pt
    last, so a copy cut short never pairs a new latest.pt with an old buffer.
    """
    target.mkdir(parents=True, exist_ok=True)
    for name in CHECKPOINT_FILES:
        if (source / name).exists():
            partial = target / f".{name}.copying"
            shutil.copyfile(source / name, partial)
            os.replace(partial, target / name)


def _evals_in(files: Any, up_to: int) -> list[tuple[int, float, float]]:
    rows = []
    with contextlib.suppress(FileNotFoundError), files.metrics_path.open(encoding="utf-8") as metrics:
        for line in metrics:
            try:
                row = json.loads(line)
            except ValueError:
                continue  # a line cut by a crash
            if row.get("kind") == "eval" and row["step"] <= up_to:
                rows.append((int(row["step"]), float(row["mean"]), float(row["std"])))
    return rows


def _report_finished(reporter: TuneReporter, files: Any) -> None:
    from agents.checkpoint import load_checkpoint

    payload = load_checkpoint(files.latest)
    counters = payload.get("counters", {})
    reporter.step = int(counters.get("step", 0))
    reporter.total_steps = max(reporter.total_steps, reporter.step)
    for step, mean, std in _evals_in(files, up_to=reporter.step):
        reporter.add_eval(step, mean, std)
    reporter.resumed_from = reporter.step
    reporter.state = FINISHED
    reporter.send()


# The sweep's controls: stop one trial, or stop (pause) the whole sweep --------------------------


def _controls_actor(plan: TrialPlan) -> Any:
    if not plan.controls:
        return None
    import ray

    try:
        return ray.get_actor(plan.controls, namespace=plan.namespace or None)
    except ValueError:
        return None  # the driver is gone or never made one: the trial runs on, uncontrolled


def _poll(controls: Any, name: str) -> str:
    import ray

    try:
        return ray.get(controls.poll.remote(name), timeout=10)
    except Exception:  # a driver that died takes its actor with it; training goes on
        return ""


def _watch_controls(controls: Any, name: str, trainer: Any, requested: list[str], finished: threading.Event) -> None:
    while not finished.wait(POLL_SECONDS):
        command = _poll(controls, name)
        if command in ("stop", "pause"):
            requested.append(command)
            trainer.controls.stop(save=True)  # saves latest.pt + buffer, which the sink reports with its checkpoint
            return


def _wait_paused(reporter: TuneReporter, controls: Any) -> None:
    """Stay alive, and so unfinished in Tune's eyes, until the driver has ended the run.

    Returning earlier would mark the trial TERMINATED, and `sweep --resume` would then skip
    it. The driver stops the whole run once every running trial has said it is paused, and
    then says "end": Tune's loop is over by then (so nothing records this trial as done),
    and returning lets Tune stop the actor at once. Waiting on would hold its `stop` behind
    this trial's unanswered `train` call until Tune's grace periods ran out (a closed
    terminal took 15 s to end a one-trial sweep).
    """
    reporter.state = PAUSED
    reporter.send()
    while controls is None or _poll(controls, reporter.identity["trial"]) != "end":
        time.sleep(POLL_SECONDS if controls is not None else 3600)
