"""The driver of a sweep: a Tune `Tuner` over the trial trainable, and what the driver sees of it.

Tune schedules, restarts and (with --scheduler asha) stops trials; nothing here schedules.
What this adds:

- a driver-side `tune.Callback` that folds every trial's reports into a `SweepBoard`;
- a small controls actor that trials poll, so that a front-end can stop one trial, or stop
  the whole sweep with each running trial saving first (Tune itself can only kill them);
- the end of a stopped sweep: once every running trial has saved and said it is paused, the
  callback sets the event Tune's own loop checks after every step (what its SIGINT handler
  sets; Tune installs that handler only when `fit` runs in the main thread, and the app runs it
  in a worker). Tune then ends its loop as on Ctrl+C: it writes its experiment state one last
  time, searcher included, with the trials still unfinished, which is what `sweep --resume`
  carries on. (With a Ray whose Tune has no such event, the callback raises `SweepInterrupted`
  instead, which skips that last write.)

Import this module only to run a sweep: it imports Ray.
"""

from __future__ import annotations

import contextlib
import functools
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ray
from ray import tune

from agents.errors import first_line
from agents.evaluation import REEVAL_SEED
from ddpg_tui.sweeps.board import (
    DONE_STATES,
    EARLY_STOPPED,
    ERROR,
    PAUSED,
    PENDING,
    RETRYING,
    STARTING,
    ConfigReport,
    SweepBoard,
    SweepSnapshot,
)
from ddpg_tui.sweeps.cluster import Cluster, cpus_per_trial
from ddpg_tui.sweeps.population_trial import population_trainable
from ddpg_tui.sweeps.proposed import read_proposed, write_proposed
from ddpg_tui.sweeps.reeval import reevaluate_all
from ddpg_tui.sweeps.space import Variant, config_folder, config_of_run, param_space, trial_name, variant_of
from ddpg_tui.sweeps.spec import NAMESPACE, TUNE_DIR, SweepError, SweepSpec
from ddpg_tui.sweeps.summary import write_summary
from ddpg_tui.sweeps.trial import TrialPlan, config_trainable
from ddpg_tui.sweeps.trust import StateSigner, verify_state

MAX_FAILURES = 3  # a trial whose worker dies is retried from its checkpoint this many times
STOP_TIMEOUT = 120.0  # seconds to wait for running trials to save when the sweep is stopped


class SweepInterrupted(Exception):
    """Raised inside Tune's loop to end a stopped sweep when Tune's own interruption is not there."""


@contextlib.contextmanager
def tune_interruption(event: threading.Event) -> Iterator[bool]:
    """While it lasts, the Tune runs this process starts end early when `event` is set, as on Ctrl+C.

    `tune.run` asks `_setup_signal_catching()` for the event its loop checks; this hands it ours. Yields
    False (and changes nothing) when this Ray's Tune has no such function.
    """
    import ray.tune.tune as tune_run

    original = getattr(tune_run, "_setup_signal_catching", None)
    if original is None:
        yield False
        return
    tune_run._setup_signal_catching = lambda: event
    try:
        yield True
    finally:
        tune_run._setup_signal_catching = original


# The controls actor -------------------------------------------------------------------------------


class SweepControls:
    """Requests from the driver that trials pick up (they poll once a second)."""

    def __init__(self) -> None:
        self._stop: set[str] = set()
        self._pause = False
        self._ended = False  # Tune's loop is over: paused trials may return

    def stop(self, trial: str) -> None:
        self._stop.add(trial)

    def pause(self) -> None:
        self._pause = True

    def end(self) -> None:
        self._ended = True

    def poll(self, trial: str) -> str:
        return "end" if self._ended else "pause" if self._pause else "stop" if trial in self._stop else ""


# The callback -------------------------------------------------------------------------------------

_LIVE: dict[str, SweepRun] = {}  # sweep name -> the run in this process, for the callback to find


class SweepCallback(tune.Callback):
    """Tune's driver-side events, handed to the live `SweepRun` of this process.

    Tune pickles callbacks into its experiment state and `Tuner.restore` brings back the
    pickled ones (it takes no new callbacks), so this holds only the sweep's name and looks
    its run up: a restored callback then feeds the new run's board.
    """

    def __init__(self, key: str) -> None:
        self.key = key

    def __getstate__(self) -> dict[str, Any]:
        return {"key": self.key}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.key = state["key"]

    def _run(self) -> SweepRun | None:
        return _LIVE.get(self.key)

    def on_step_begin(self, iteration: int, trials: list[Any], **info: Any) -> None:
        if (run := self._run()) is not None:
            run.on_step(trials)

    def on_trial_start(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        if (run := self._run()) is not None:
            run.on_trial_status(trial, STARTING, new_attempt=True)

    def on_trial_result(self, iteration: int, trials: list[Any], trial: Any, result: dict, **info: Any) -> None:
        if (run := self._run()) is not None:
            run.on_result(trial, result)

    def on_trial_complete(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        if (run := self._run()) is not None:
            run.on_complete(trial)

    def on_trial_recover(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        if (run := self._run()) is not None:
            run.on_trial_status(trial, RETRYING, "its worker failed; retrying from its last checkpoint")

    def on_trial_error(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        if (run := self._run()) is not None:
            run.on_trial_status(trial, ERROR, f"failed {MAX_FAILURES + 1} times; see {trial.path}")

    def on_step_end(self, iteration: int, trials: list[Any], **info: Any) -> None:
        if (run := self._run()) is not None:
            run.sign_state()  # Tune writes its state at the end of each step, just before this

    def on_experiment_end(self, trials: list[Any], **info: Any) -> None:
        if (run := self._run()) is not None:
            run.adopt_restored(trials)  # a restored sweep with nothing left to run has no step at all
            run.sign_state()


def _trial_folder_name(trial: Any, grid_keys: tuple[str, ...]) -> str:
    """A Tune trial's name: its config's folder (which holds one run folder per seed)."""
    return config_folder(variant_of(trial.config, grid_keys).label)


# The run ------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SweepResult:
    state: str  # finished, paused, error
    snapshot: SweepSnapshot
    summary_csv: Path | None
    summary_md: Path | None
    markdown: str
    message: str = ""


class SweepRun:
    """One sweep on a connected Ray: build with the spec, then `fit()` (from any thread).

    `stop_trial`, `stop_sweep` and `abort` may be called from any other thread.
    """

    def __init__(self, spec: SweepSpec, sweep_dir: Path, cluster: Cluster, *, jobs: int | None = None,
                 resume: bool = False, progress_every: float = 2.0, trust_folder: bool = False) -> None:
        self.spec = spec
        self.trust_folder = trust_folder
        self.sweep_dir = Path(sweep_dir).resolve()
        self.cluster = cluster
        self.resume = resume
        self.board = SweepBoard.for_sweep(spec, str(self.sweep_dir))
        self.per_trial, self.concurrent = cpus_per_trial(spec, cluster, jobs)
        self.grid_keys = tuple(spec.grid)
        self._controls_name = f"sweep-controls-{spec.name}"
        with contextlib.suppress(ValueError):  # one left by an earlier run of this sweep in this Ray
            ray.kill(ray.get_actor(self._controls_name, namespace=NAMESPACE))
        self._controls = ray.remote(num_cpus=0)(SweepControls).options(
            name=self._controls_name, namespace=NAMESPACE).remote()
        self.plan = TrialPlan(sweep_dir=str(self.sweep_dir), base=spec.base.to_dict(), grid_keys=self.grid_keys,
                              seeds=tuple(spec.seeds), threads=spec.base.threads, controls=self._controls_name,
                              namespace=NAMESPACE, progress_every=progress_every)
        self._lock = threading.Lock()
        self._stop_requested_at: float | None = None
        self._abort = False
        self._paused_at: dict[str, float] = {}
        self._restored_seen = False
        self._interrupting = False
        self._tune_interrupt = threading.Event()  # Tune's own loop ends once this is set (tune_interruption)
        self._interrupts_through_tune = False
        self._signer: StateSigner | None = None
        self.reeval_problems: list[str] = []
        # --search tpe: the configs proposed so far, by label (a resume starts from those its folder kept).
        self._proposed: dict[str, Variant] = {v.label: v for v in read_proposed(self.sweep_dir)}

    # Controls (any thread) ---------------------------------------------------------------------

    def stop_trial(self, name: str) -> bool:
        """Stop the config of a seed run (`<config>/seed<k>`): all its seeds save and stop together; they count
        as stopped, and --resume leaves them so. A config is the unit: one seed alone is never stopped."""
        row = self.board.row(name)
        if row is None or row.done or row.state == PENDING:
            return False
        self._controls.stop.remote(config_of_run(name))
        return True

    def stop_sweep(self) -> None:
        """Every running trial saves, then the run ends, resumable with `sweep --resume`."""
        with self._lock:
            if self._stop_requested_at is None:
                self._stop_requested_at = time.monotonic()
                self._controls.pause.remote()
                self.board.set_state("stopping", "each running trial saves a checkpoint, then the sweep stops")

    def abort(self) -> None:
        """End the run at Tune's next step without waiting for saves (a second Ctrl+C)."""
        self._abort = True
        self.stop_sweep()

    @property
    def stopping(self) -> bool:
        return self._stop_requested_at is not None

    # Tune's side (the callback, in the thread that runs fit) -----------------------------------------

    def adopt_restored(self, trials: list[Any]) -> None:
        """Put the trials a restored run will not start again on the board, once, as they ended."""
        if self._restored_seen:
            return
        self._restored_seen = True
        for trial in trials:
            self._note_proposal(trial)
            if trial.last_result:
                self.on_result(trial, trial.last_result)
            if trial.status == "TERMINATED":
                self.on_complete(trial)
            elif trial.status == "ERROR":
                self.on_trial_status(trial, ERROR)

    def on_step(self, trials: list[Any]) -> None:
        self.adopt_restored(trials)
        if self._stop_requested_at is None:
            return
        running = [_trial_folder_name(t, self.grid_keys) for t in trials if t.status == "RUNNING"]
        since = self._stop_requested_at
        saved = [self._paused_at.get(name, 0.0) for name in running]
        all_saved = all(at >= since for at in saved)
        # No settling time for Tune's state: the run folders, not Tune's record of them, say where each seed is.
        if self._abort or all_saved or time.monotonic() - since > STOP_TIMEOUT:
            self._interrupting = True
            self._controls.end.remote()  # the paused trials poll once a second: Tune's loop has ended by then
            if not self._interrupts_through_tune:
                raise SweepInterrupted()
            self._tune_interrupt.set()

    def _seed_runs(self, trial: Any) -> list[str]:
        label = variant_of(trial.config, self.grid_keys).label
        return [trial_name(label, seed) for seed in self.spec.seeds]

    def on_result(self, trial: Any, result: dict) -> None:
        config = ConfigReport.from_metrics(result)
        if config is None:
            return
        wall = result.get("time_total_s")
        if any(report.state == PAUSED for report in config.seeds):  # sent once all its seeds have saved
            self._paused_at[config_folder(config.config)] = time.monotonic()
        for report in config.seeds:
            self.board.report(report, wall_seconds=float(wall) if wall is not None else None)
        if self.board.snapshot().state == "starting":
            self.board.set_state("running")

    def on_complete(self, trial: Any) -> None:
        if self._interrupting:
            return  # Tune stops the paused trials on the way out; they are not done
        asha_step = int((trial.last_result or {}).get("asha_step", 0))
        for name in self._seed_runs(trial):
            row = self.board.row(name)
            if row is not None and row.state not in DONE_STATES and row.state != PAUSED:
                # It ended without saying finished or stopped: the scheduler stopped its config early.
                self.board.trial_state(name, EARLY_STOPPED, f"its config stopped by ASHA at step {asha_step:,} "
                                       f"(the median over its seeds there)")

    def on_trial_status(self, trial: Any, state: str, message: str = "", new_attempt: bool = False) -> None:
        variant = self._note_proposal(trial)
        for seed in self.spec.seeds:
            self.board.trial_state(trial_name(variant.label, seed), state, message, variant=variant.label, seed=seed,
                                   new_attempt=new_attempt)

    def _note_proposal(self, trial: Any) -> Variant:
        """The trial's config; a searcher's new proposal is written to proposed.json as its trial starts."""
        variant = variant_of(trial.config, self.grid_keys)
        if self.spec.search == "tpe" and variant.label not in self._proposed:
            self._proposed[variant.label] = variant
            write_proposed(self.sweep_dir, self._proposed.values())
        return variant

    def variants(self) -> list[Variant]:
        """The sweep's configs: known in advance for grid and random search, the proposals so far for TPE."""
        if self.spec.search != "tpe":
            return self.spec.variants()
        return sorted(self._proposed.values(), key=lambda v: v.sample if v.sample is not None else -1)

    def sign_state(self) -> None:
        """Sign Tune's state files as they are now (they were just written), for a later --resume to check."""
        if self._signer is None:
            self._signer = StateSigner(self.sweep_dir)
        self._signer.sign()

    # Running --------------------------------------------------------------------------------------

    def tuner(self) -> tune.Tuner:
        make = population_trainable if self.spec.seeds_together else config_trainable
        trainable = tune.with_resources(make(self.plan),
                                       {"cpu": self.per_trial, "gpu": self.cluster.gpus_per_trial})
        tune_dir = self.sweep_dir / TUNE_DIR
        if self.resume and tune.Tuner.can_restore(str(tune_dir)):
            if not self.trust_folder:
                verify_state(self.sweep_dir)  # SweepTrustError before Tune unpickles anything
            # Finished trials stay finished; unfinished and failed ones start again from their checkpoints.
            return tune.Tuner.restore(str(tune_dir), trainable, resume_unfinished=True, resume_errored=True)
        namer = functools.partial(_trial_folder_name, grid_keys=self.grid_keys)
        search_alg, num_samples, at_once = None, 1, None if self.cluster.started_here else self.concurrent
        if self.spec.search == "tpe":
            from ddpg_tui.sweeps.search import tpe_search

            # The searcher's own limiter bounds the trials at once (Tune would wrap it in a second one), and a
            # restore brings it back unchanged, as it does Tune's limit on a joined cluster.
            search_alg = tpe_search(self.spec.samples, self.spec.sample_count, self.spec.sample_seed, self.concurrent)
            num_samples, at_once = self.spec.sample_count, None
        scheduler = None
        if self.spec.scheduler == "asha":
            from ray.tune.schedulers import ASHAScheduler

            cfg = self.spec.base
            first_eval = cfg.eval_every or cfg.total_steps
            # One trial is one config, and median_eval the median over its seeds: a rung judges configs.
            scheduler = ASHAScheduler(time_attr="asha_step", metric="median_eval", mode="max", max_t=cfg.total_steps,
                                      grace_period=max(first_eval, cfg.total_steps // 4), reduction_factor=2)
        return tune.Tuner(
            trainable,
            # TPE's searcher holds its space itself: Tune refuses a second one in param_space.
            param_space={} if search_alg is not None else param_space(self.spec.grid, self.spec.drawn),
            # A local instance has exactly --jobs CPUs, which bound the trials at once by themselves. Tune's own
            # limit is kept for a joined cluster only: a restore brings it back unchanged (by design, see
            # ray-project/ray#30223), so with it a resume given more --jobs would run as few trials as before.
            tune_config=tune.TuneConfig(scheduler=scheduler, search_alg=search_alg, num_samples=num_samples,
                                        max_concurrent_trials=at_once,
                                        reuse_actors=True, trial_name_creator=namer, trial_dirname_creator=namer),
            run_config=tune.RunConfig(
                name=TUNE_DIR, storage_path=str(self.sweep_dir), verbose=0, callbacks=[SweepCallback(self.spec.name)],
                # Every marker is kept (each is one small JSON file): Tune never deletes a checkpoint that the
                # experiment state it last wrote may still name, so a driver killed at any instant leaves a
                # state every trial can be restored from. (With num_to_keep=1, a kill between Tune deleting
                # the older copy and its next snapshot left a trial that could not be restored.) A state
                # that lags behind is harmless: each seed resumes from its own folder, at or past its marker,
                # and a config stopped with `s` says so in its folder (trial.py).
                checkpoint_config=tune.CheckpointConfig(num_to_keep=None),
                failure_config=tune.FailureConfig(max_failures=MAX_FAILURES)),
        )

    def fit(self, reeval_progress: Callable[[int, int], None] | None = None) -> SweepResult:
        """Run the sweep to its end (or until it is stopped), then write the summary."""
        _LIVE[self.spec.name] = self
        state, message = "finished", ""
        try:
            self.board.set_state("starting")
            tuner = self.tuner()
            self.sign_state()  # tuner.pkl is written by now
            with tune_interruption(self._tune_interrupt) as through_tune:
                self._interrupts_through_tune = through_tune
                tuner.fit()
            if self._tune_interrupt.is_set():
                raise SweepInterrupted()
        except SweepInterrupted:
            state = "paused"
            message = f"stopped; carry it on with: ddpg-tui sweep --resume {self.sweep_dir}"
        except Exception as error:  # a Tune error must reach the screen, not kill its worker
            state, message = "error", f"{type(error).__name__}: {first_line(error)}"
        finally:
            _LIVE.pop(self.spec.name, None)
            with contextlib.suppress(OSError, SweepError):
                self.sign_state()  # the state Tune wrote on its way out
        reevals: dict[str, tuple[float, float]] = {}
        if state == "finished" and self.spec.reeval:
            self.board.set_state("re-evaluating", f"{self.spec.reeval} fresh episodes per seed run")
            reevals = self.reevaluate(reeval_progress)
        snapshot = self.board.snapshot()
        csv_path, md_path, text = write_summary(
            self.sweep_dir, f"Sweep {self.spec.name}", self.spec.facts(), snapshot.trials, self.variants(),
            self.spec.keys, self.spec.threshold, reevals, self.spec.reeval if reevals else 0)
        message = "\n".join([*self.reeval_problems, *([message] if message else [])])
        self.board.set_state(state, message)
        return SweepResult(state, self.board.snapshot(), csv_path, md_path, text, message)

    def reevaluate(self, progress: Callable[[int, int], None] | None = None) -> dict[str, tuple[float, float]]:
        """Every seed run's latest.pt on fresh episodes, stopped configs' included (leaving them out would
        flatter the survivors), as Ray tasks spread over the cluster. The summary keeps the stopped apart."""
        # A config ASHA stopped saved each seed on its way out (trial.py), after its last report to the board.
        rows = [r for r in self.board.snapshot().trials if r.checkpoint_step > 0 or r.state == EARLY_STOPPED]
        outcome = reevaluate_all({r.name: self.sweep_dir / r.name / "checkpoints" / "latest.pt" for r in rows},
                                 self.spec.reeval, self.spec.base.env_id, REEVAL_SEED, progress)
        self.reeval_problems = outcome.lines()  # which checkpoints have no number, and why: in the result's message
        return outcome.results

    def close(self) -> None:
        ray.kill(self._controls)

