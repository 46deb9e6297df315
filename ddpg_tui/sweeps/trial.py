"""The Tune trainable: one trial is one config, whose seeds train in turn as ordinary `Trainer` runs.

It holds no training logic. It builds each seed's config (the sweep's base, the variant's
overrides, the seed, one torch thread per CPU Tune gave the trial), opens each seed's ordinary
run folder `<config>/seed<k>/`, and lets the seeds take turns (`seed_turns.py`): the seed that
is furthest behind trains to its next evaluation, then the next one. After each turn, and
every few seconds, it reports to Tune (`ConfigReport`): the median over the seeds at the last
step all of them have evaluated at, which is what ASHA judges, and each seed's own report for
the board. A scheduler's stop therefore stops every seed of the config together.

The run folders are the one truth. What the trial hands Tune as its checkpoint is a marker,
`{seed: {step, save_id}}` of each seed's last latest.pt (written whole by the trainer, with its
replay buffer under the same save_id), never a copy of the folders. A retried trial (its worker
died) or a resumed sweep starts here again: each seed resumes from its own latest.pt, which is at
or past the marker's save; a folder behind the marker (another node's disk, with no shared
storage) is refused by name instead of silently starting over.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agents.events import TrainerState
from ddpg_tui.sweeps.board import (
    ERROR,
    FINISHED,
    PAUSED,
    STOPPED,
    ConfigReport,
    common_step,
    quartiles,
    values_at,
)
from ddpg_tui.sweeps.seed_turns import SeedReporter, SeedRun, next_turn, wait_for_turn
from ddpg_tui.sweeps.space import Variant, config_folder, trial_name, variant_of

MARKER_FILE = "seeds.json"
STOPPED_FILE = "stopped.json"  # in the config's folder: stopped with `s`, so a restart trains none of its seeds
ACTOR_GONE_SECONDS = 30.0  # a paused trial whose driver's actor has not answered for this long ends
POLL_SECONDS = 1.0
STOP_JOIN_SECONDS = 120.0  # for the seeds of a stopped trial to save and end
SEEDS_END_SECONDS = STOP_JOIN_SECONDS + 10.0  # for Tune's stop of a trial to wait for that


@dataclass(frozen=True, slots=True)
class TrialPlan:
    """What every trial of a sweep shares; handed to the trainable with `tune.with_parameters`."""

    sweep_dir: str  # absolute; on a cluster, a path that every node sees (shared storage)
    base: dict[str, Any]  # DDPGConfig.to_dict() of the sweep's base config
    grid_keys: tuple[str, ...]
    seeds: tuple[int, ...] = (0,)
    threads: int = 0  # 0: one torch thread per CPU Tune gave the trial
    controls: str = ""  # name of the sweep's controls actor
    namespace: str = ""
    progress_every: float = 2.0  # seconds between progress reports


ReportFn = Callable[..., None]


class FolderBehindError(Exception):
    """A seed's run folder holds an older save than the one its trial reported to Tune."""


# The trainable ------------------------------------------------------------------------------

# Set once this process's trial has saved and ended every seed. Tune ends a stopped trial's actor as soon
# as its `stop` returns, and a function trainable's `stop` does not wait for the training thread
# (`session.finish(timeout=0)`), so a config ASHA stopped lost the saves it makes on its way out when the
# machine was busy: --reeval then found no checkpoint to evaluate.
_SEEDS_ENDED = threading.Event()


def config_trainable(plan: TrialPlan, function: Callable[..., None] | None = None) -> type:
    """`train_trial` (or `function`, of the same signature) as Tune's function trainable, whose stop and reuse
    wait (bounded) for the seeds' saves."""
    from ray import tune
    from ray.tune.trainable import wrap_function

    body = function if function is not None else train_trial

    class ConfigTrainable(wrap_function(tune.with_parameters(body, plan=plan))):  # type: ignore[misc]
        def cleanup(self) -> None:
            super().cleanup()  # wakes the trial's thread from its report: it saves every seed and ends
            wait_for_seeds_to_end()

        def reset_config(self, new_config: dict[str, Any]) -> bool:
            # Reused for the next trial: Tune waits this long (2 s by default) for the last one's thread to end,
            # and a reset that fails errors the next trial.
            os.environ["TUNE_FUNCTION_THREAD_TIMEOUT_S"] = str(int(SEEDS_END_SECONDS))
            return super().reset_config(new_config)

    ConfigTrainable.__name__ = "train_trial"  # the name Tune's state records, as when it was a function
    return ConfigTrainable


def wait_for_seeds_to_end() -> bool:
    """(Module-level, so that the class Ray ships by value finds the worker's own event.)"""
    return _SEEDS_ENDED.wait(SEEDS_END_SECONDS)


def train_trial(config: dict[str, Any], plan: TrialPlan) -> None:
    """Tune's function trainable for one config (pass it through `tune.with_parameters(train_trial, plan=...)`)."""
    run_trial(config, plan, ConfigTrial)


def run_trial(config: dict[str, Any], plan: TrialPlan, kind: type[ConfigTrial]) -> None:
    """One trial of `kind` (ConfigTrial, or a subclass that trains the seeds another way) inside Tune."""
    import ray
    from ray import tune

    _SEEDS_ENDED.clear()
    variant = variant_of(config, plan.grid_keys)
    context = ray.get_runtime_context()
    cpus = context.get_assigned_resources().get("CPU", 1.0)
    threads = plan.threads or max(1, int(cpus))
    trial = kind(variant, plan, tune.report, tune.Checkpoint.from_directory, attempt=uuid.uuid4().hex[:8],
                 node=context.get_node_id()[:8])
    try:
        trial.run(read_marker(tune.get_checkpoint()), threads, _controls_actor(plan))
    finally:
        _SEEDS_ENDED.set()


class ConfigTrial:
    """One config's seeds, taking turns, and what the trial reports of them to Tune."""

    def __init__(self, variant: Variant, plan: TrialPlan, report: ReportFn, make_checkpoint: Callable[[str], Any],
                 attempt: str, node: str) -> None:
        self.variant, self.plan = variant, plan
        self.name = config_folder(variant.label)
        self._report, self._make_checkpoint = report, make_checkpoint
        sweep_dir = Path(plan.sweep_dir)
        total = int(plan.base.get("total_steps", 0))
        self.total_steps = total
        self.seeds = [SeedRun(index, seed, trial_name(variant.label, seed), sweep_dir / trial_name(variant.label, seed),
                              SeedReporter({"trial": trial_name(variant.label, seed), "variant": variant.label,
                                            "seed": seed, "attempt": attempt, "pid": os.getpid(), "node": node},
                                           total))
                      for index, seed in enumerate(plan.seeds)]
        self._marked: dict[int, tuple[int, str]] = {}  # what the last marker told Tune
        self._last_sent = time.monotonic()
        self._last_poll = 0.0

    # Running -----------------------------------------------------------------------------------

    @property
    def config_dir(self) -> Path:
        return Path(self.plan.sweep_dir) / self.name

    def run(self, marker: dict[int, tuple[int, str]], threads: int, controls: Any) -> None:
        self._marked = dict(marker)
        if (self.config_dir / STOPPED_FILE).exists():
            # Stopped with `s` before a driver was killed (or before Tune's state recorded the trial's end):
            # it stays stopped, as --resume promises, whatever Tune's state says.
            self._adopt_stopped()
            return
        if controls is not None and _poll(controls, self.name) == "pause":
            self._wait_paused(controls)  # the sweep is being stopped: start nothing new
            return
        requested = self._train(marker, threads, controls)
        if requested == "stop":
            with contextlib.suppress(OSError):
                (self.config_dir / STOPPED_FILE).write_text(json.dumps({"stopped": True}) + "\n", encoding="utf-8")
        self._set_final_states(requested)
        self.send()
        if requested == "pause":
            self._wait_paused(controls)

    def _train(self, marker: dict[int, tuple[int, str]], threads: int, controls: Any) -> str:
        """Train every seed to its end; "stop" or "pause" if the driver asked for that first."""
        requested = ""
        try:
            for seed in self.seeds:  # one after another: each Trainer seeds torch's generator as it builds
                self._build(seed, marker.get(seed.seed), threads)
            self.send()
            requested = self._take_turns(controls)
        finally:
            # Also when Tune stops the trial (ASHA: its report raises SystemExit): every seed saves and ends.
            self._end_every_seed()
        return requested

    def _build(self, seed: SeedRun, marked: tuple[int, str] | None, threads: int) -> None:
        from agents.checkpoint import CheckpointError
        from agents.checkpoint_payload import RunFinishedError
        from agents.config import ConfigError, DDPGConfig
        from agents.envs import EnvError
        from agents.run_files import RunFiles, RunLock, RunLockedError
        from agents.trainer import Trainer

        files = RunFiles(seed.run_dir)
        run_lock = RunLock(files.run_dir)
        try:
            run_lock.acquire()  # before the folder is cleared or read: it may be another live writer's
        except RunLockedError as error:
            seed.final_state = ERROR
            seed.reporter.set(state=ERROR, message=str(error))
            return  # the other writer owns the folder
        trainer = None
        try:
            resume_from, saved = _prepare_run_folder(files, marked)
            base = DDPGConfig.from_mapping(self.plan.base)
            config = base.replace(**self.variant.as_dict(), seed=seed.seed, threads=threads)
            # On resume, the env id is the sweep's own (typed by the user or from a preset), so one that names a
            # module, which a checkpoint alone may not, is trusted here as it was when the sweep began.
            trainer = Trainer(None if resume_from else config, seed.sink, files.run_dir, resume_from=resume_from,
                              env_id=config.env_id if resume_from else None, front_end="headless", run_lock=run_lock)
        except RunFinishedError:
            run_lock.release()
            self._adopt_finished(seed, files)  # a restart after the seed had ended: nothing to redo
            return
        except (EnvError, ConfigError, CheckpointError, OSError, FolderBehindError) as error:
            run_lock.release()
            seed.final_state = ERROR
            seed.reporter.set(state=ERROR, message=str(error))
            return  # a config error repeats on every retry: report it once, do not burn retries
        seed.trainer = trainer
        if resume_from is not None:
            import torch

            torch.set_num_threads(threads)  # the checkpoint's config names the CPUs of the earlier attempt
            seed.reporter.set(resumed_from=trainer.step, step=trainer.step, saved=saved)
            for step, mean, std in _evals_in(files, up_to=trainer.step):
                seed.reporter.add_eval(step, mean, std)

    def _adopt_finished(self, seed: SeedRun, files: Any) -> None:
        from agents.checkpoint import load_checkpoint

        payload = load_checkpoint(files.latest)
        step = int(payload.get("counters", {}).get("step", 0))
        for eval_step, mean, std in _evals_in(files, up_to=step):
            seed.reporter.add_eval(eval_step, mean, std)
        seed.final_state = FINISHED
        seed.reporter.set(state=FINISHED, step=step, resumed_from=step, total_steps=max(self.total_steps, step),
                          saved=(step, str(payload.get("save_id", ""))))

    def _adopt_stopped(self) -> None:
        from agents.run_files import RunFiles

        for seed in self.seeds:
            files = RunFiles(seed.run_dir)
            saved = saved_state(files.latest)
            step = saved[0] if saved is not None else 0
            for eval_step, mean, std in _evals_in(files, up_to=step):
                seed.reporter.add_eval(eval_step, mean, std)
            seed.final_state = STOPPED
            seed.reporter.set(state=STOPPED, step=step, resumed_from=step, saved=saved)
        self.send()

    def _take_turns(self, controls: Any) -> str:
        """Turns until every seed has ended; "stop" or "pause" if the driver asked for that first."""
        every = min(POLL_SECONDS, self.plan.progress_every)
        while (seed := next_turn(self.seeds)) is not None:
            requested = self._poll_controls(controls)
            if requested:
                return requested
            seed.take_turn()

            def meanwhile() -> bool:
                nonlocal requested
                requested = self._poll_controls(controls)
                if not requested and time.monotonic() - self._last_sent >= self.plan.progress_every:
                    self.send()
                return not requested
            if not wait_for_turn(seed, every, meanwhile):
                return requested
            self.send()  # a new evaluation, or the seed's end
        return ""

    def _poll_controls(self, controls: Any) -> str:
        if controls is None or time.monotonic() - self._last_poll < POLL_SECONDS:
            return ""
        self._last_poll = time.monotonic()
        command = _poll(controls, self.name)
        return command if command in ("stop", "pause") else ""  # None: the driver's actor is gone; train on

    def _end_every_seed(self) -> None:
        for seed in self.seeds:
            seed.stop(save=True)  # saves latest.pt + buffer; a finished seed has nothing left to do
        deadline = time.monotonic() + STOP_JOIN_SECONDS
        for seed in self.seeds:
            seed.join(deadline)

    def _set_final_states(self, requested: str) -> None:
        for seed in self.seeds:
            if seed.final_state:
                continue
            outcome = seed.outcome
            if outcome is None:  # never started, or still saving after the bound
                state = PAUSED if requested == "pause" else STOPPED
                seed.reporter.set(state=state)
                continue
            seed.reporter.set(step=outcome.step)
            if outcome.state == TrainerState.ERROR:
                seed.reporter.set(state=ERROR, message=outcome.error)
            elif outcome.state == TrainerState.STOPPED:
                seed.reporter.set(state=PAUSED if requested == "pause" else STOPPED)
            else:
                seed.reporter.set(state=FINISHED)

    # Reporting ---------------------------------------------------------------------------------

    def config_report(self) -> ConfigReport:
        """The median over the seeds at the last step all of them evaluated at, and ASHA's clock.

        Both move only when every seed has evaluated there, so a rung always sees all of the
        config's seeds. ASHA's clock (`asha_step`) never reaches total_steps, where ASHA would
        stop (kill) a trial that is finishing anyway, before its final saves; the median does, so
        a trial's last result holds its final median (what a searcher reads at a trial's end).
        When the median first stands at a rung's step, the clock stands there too. Seeds that
        failed drop out of both.
        """
        reports = tuple(seed.reporter.report() for seed in self.seeds)
        judged = [r.evals for r in reports if r.state != ERROR] or [r.evals for r in reports]
        step = common_step(judged)
        median = quartiles(values_at(judged, step))[0] if step else float("nan")
        return ConfigReport(self.variant.label, common_step(judged, below=self.total_steps), median, reports, step)

    def send(self) -> None:
        report = self.config_report()
        self._last_sent = time.monotonic()
        saves = {seed.seed: seed.reporter.saved for seed in self.seeds if seed.reporter.saved is not None}
        if saves == self._marked:
            self._report(report.to_metrics())
            return
        with tempfile.TemporaryDirectory(prefix="ddpg-tui-marker-") as folder:
            write_marker(Path(folder), saves)
            self._report(report.to_metrics(), checkpoint=self._make_checkpoint(folder))  # Tune copies it now
        self._marked = saves

    def _wait_paused(self, controls: Any) -> None:
        """Stay alive, and so unfinished in Tune's eyes, until the driver has ended the run.

        Returning earlier would mark the trial TERMINATED, and `sweep --resume` would then skip
        it. The driver stops the whole run once every running trial has said it is paused, and
        then says "end": Tune's loop is over by then (so nothing records this trial as done),
        and returning lets Tune stop the actor at once. Waiting on would hold its `stop` behind
        this trial's unanswered `train` call until Tune's grace periods ran out (a closed
        terminal took 15 s to end a one-trial sweep).
        """
        for seed in self.seeds:
            if seed.reporter.state not in (FINISHED, ERROR):
                seed.reporter.set(state=PAUSED)
        self.send()
        # Bounded: a driver that died took its actor with it, and Ray ends this worker with its job soon after.
        answered = time.monotonic()
        while controls is not None and time.monotonic() - answered < ACTOR_GONE_SECONDS:
            command = _poll(controls, self.name)
            if command == "end":
                return
            if command is not None:
                answered = time.monotonic()
            time.sleep(POLL_SECONDS)


# Markers and run folders ----------------------------------------------------------------------


def write_marker(folder: Path, saves: dict[int, tuple[int, str]]) -> None:
    marker = {str(seed): {"step": step, "save_id": save_id} for seed, (step, save_id) in sorted(saves.items())}
    (folder / MARKER_FILE).write_text(json.dumps(marker, indent=1) + "\n", encoding="utf-8")


def read_marker(checkpoint: Any) -> dict[int, tuple[int, str]]:
    """Each seed's (step, save_id) from the checkpoint Tune hands a restarted trial; {} for none."""
    if checkpoint is None:
        return {}
    with checkpoint.as_directory() as source:
        try:
            data = json.loads((Path(source) / MARKER_FILE).read_text(encoding="utf-8"))
            return {int(seed): (int(entry["step"]), str(entry["save_id"])) for seed, entry in data.items()}
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            return {}  # not ours (or damaged): the folders say where each seed is


def _prepare_run_folder(files: Any, marked: tuple[int, str] | None) -> tuple[Path | None, tuple[int, str] | None]:
    """(the checkpoint to resume from, its (step, save_id)), or (None, None) to start afresh.

    The folder's own latest.pt is the truth: it may be newer than the marker (the driver was
    killed before Tune recorded the newer save), never older.
    """
    saved = saved_state(files.latest)
    if marked is not None and (saved is None or saved[0] < marked[0]):
        holds = f"holds step {saved[0]:,}" if saved is not None else "holds no checkpoint"
        raise FolderBehindError(
            f"{files.run_dir} {holds}, but its trial saved step {marked[0]:,} there: the sweep folder must be on "
            "storage every node shares (see docs/sweeps.md, On a cluster)")
    if saved is not None:
        return files.latest, saved
    # A fresh start: rows or files of an attempt that never saved would be mixed into this one.
    for path in (files.metrics_path, files.config_path, files.effective_config_path,
                 *(files.checkpoint_dir / n for n in ("replay_buffer.pt", "best.pt", "latest.pt"))):
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
    return None, None


def saved_state(path: Path) -> tuple[int, str] | None:
    """(step, save_id) of a checkpoint file; None if there is none or it cannot be read."""
    from agents.checkpoint import CheckpointError, load_checkpoint

    try:
        payload = load_checkpoint(path)
        return int(payload["counters"]["step"]), str(payload.get("save_id", ""))
    except (CheckpointError, OSError, KeyError, TypeError, ValueError):
        return None


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


# The sweep's controls: stop one trial, or stop (pause) the whole sweep --------------------------


def _controls_actor(plan: TrialPlan) -> Any:
    if not plan.controls:
        return None
    import ray

    try:
        return ray.get_actor(plan.controls, namespace=plan.namespace or None)
    except ValueError:
        return None  # the driver is gone or never made one: the trial runs on, uncontrolled


def _poll(controls: Any, name: str) -> str | None:
    """The driver's request for this trial ("" for none); None if its actor did not answer."""
    import ray

    try:
        return ray.get(controls.poll.remote(name), timeout=10)
    except Exception:  # a driver that died takes its actor with it; training goes on
        return None
