"""`sweep --seeds-together`: a trial whose config's seeds train as one population (`agents/population.py`).

The trial is a `ConfigTrial` in everything but how its seeds train: the same run folders
(`<config>/seed<k>/`, so summary, board, compare, reeval, best.toml and `train --resume` of a
seed work as with turns), the same `ConfigReport` to Tune (the median over the seeds at the last
step all of them evaluated at, so ASHA stops the whole config), the same marker checkpoint
`{seed: {step, save_id}}`, and the same stop, `s`/`S` and pause paths. Only `_train` differs:
instead of `Trainer`s taking turns, one `PopulationTrainer` trains every seed in a thread of its
own while the trial's thread (the one Tune's `report` must be called from) watches its members'
events and reports.

Why opt-in: a member agrees with the run `train --seed k` makes only to float rounding (the batched
products), while turns reproduce it bit for bit. Measured on a quiet machine (benchmarks/README.md,
"Many seeds in one process"): 2.72× / 2.66× the steps/s of the seeds one after another on pendulum's
64×64 nets with 8 members, 1.18× / 1.18× on lunar-lander's 256×256 with 4; a sweep's usual 3 seeds
were not measured.

A population resumes only when its members were saved at one step (agents/population.py). A
periodic save waits for each member's episode end, so on envs whose episodes differ in length a
retried trial can find its seeds at different steps: it then carries them on in turns, each
from its own latest.pt, rather than lose any of their steps.
"""

from __future__ import annotations

import contextlib
import threading
import time
from typing import TYPE_CHECKING, Any

from agents.events import EvalResult, Event, Saved, StateChanged
from ddpg_tui.sweeps.board import ERROR, common_step
from ddpg_tui.sweeps.seed_turns import SeedRun
from ddpg_tui.sweeps.trial import (
    POLL_SECONDS,
    STOP_JOIN_SECONDS,
    ConfigTrial,
    FolderBehindError,
    TrialPlan,
    _evals_in,
    _prepare_run_folder,
    config_trainable,
    run_trial,
    saved_state,
)

if TYPE_CHECKING:
    from agents.config import DDPGConfig
    from agents.population import PopulationOutcome, PopulationTrainer

NEWS = (EvalResult, Saved, StateChanged)  # member events worth a report before the next progress tick


def population_trainable(plan: TrialPlan) -> type:
    """Tune's trainable for a sweep with --seeds-together: `config_trainable`'s waits, a population inside."""
    return config_trainable(plan, train_population_trial)


def train_population_trial(config: dict[str, Any], plan: TrialPlan) -> None:
    run_trial(config, plan, PopulationTrial)


class PopulationTrial(ConfigTrial):
    """One config's seeds as one population, reported to Tune exactly as a `ConfigTrial` reports its turns."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._news = threading.Event()
        self._thread: threading.Thread | None = None
        self._outcome: PopulationOutcome | None = None

    def _train(self, marker: dict[int, tuple[int, str]], threads: int, controls: Any) -> str:
        config = self._config(threads)
        if not self._can_train_together(config.total_steps):
            return super()._train(marker, threads, controls)  # members saved at different steps: turns
        members = self._prepare_members(marker, config.total_steps)
        population = self._build_population(members, config, threads) if members else None
        if population is None:
            self.send()  # every seed had finished already, or none can run: the board hears why
            return ""
        try:
            self.send()  # may raise (Tune stopped the trial at once): the finally lets the folders go
            return self._watch(population, controls)
        finally:
            self._end(population, members)

    def _config(self, threads: int) -> DDPGConfig:
        from agents.config import DDPGConfig

        config = DDPGConfig.from_mapping(self.plan.base).replace(**self.variant.as_dict(), threads=threads)
        # The population trains on the CPU only; `auto` on a node with a GPU would refuse every member.
        return config.replace(device="cpu") if config.device == "auto" else config

    def _can_train_together(self, total_steps: int) -> bool:
        """Whether the seeds still to train all stand at one step (all fresh, or all saved together)."""
        from agents.run_files import RunFiles

        steps = set()
        for seed in self.seeds:
            saved = saved_state(RunFiles(seed.run_dir).latest)
            if saved is None or saved[0] < total_steps:
                steps.add(saved[0] if saved is not None else 0)
        return len(steps) <= 1

    def _prepare_members(self, marker: dict[int, tuple[int, str]],
                         total_steps: int) -> list[tuple[SeedRun, tuple[int, str] | None]]:
        """The seeds that train, with the save each resumes from; the others end here as `ConfigTrial`'s would."""
        from agents.run_files import RunFiles, RunLock, RunLockedError

        members = []
        for seed in self.seeds:
            files = RunFiles(seed.run_dir)
            run_lock = RunLock(files.run_dir)
            try:
                run_lock.acquire()  # before the folder is cleared or read: it may be another live writer's
                _, saved = _prepare_run_folder(files, marker.get(seed.seed))
            except (RunLockedError, FolderBehindError, OSError) as error:
                seed.final_state = ERROR
                seed.reporter.set(state=ERROR, message=str(error))
                continue
            finally:
                run_lock.release()  # the population takes each member's lock again as it builds it
            if saved is not None and saved[0] >= total_steps:
                self._adopt_finished(seed, files)  # a restart after the config had ended: nothing to redo
                continue
            members.append((seed, saved))
        return members

    def _build_population(self, members: list[tuple[SeedRun, tuple[int, str] | None]], config: DDPGConfig,
                          threads: int) -> PopulationTrainer | None:
        from agents.checkpoint import CheckpointError
        from agents.config import ConfigError
        from agents.envs import EnvError
        from agents.population import PopulationTrainer
        from agents.run_files import RunFiles, RunLockedError

        seeds = [seed for seed, _ in members]

        def sink(k: int, event: Event) -> None:
            seeds[k].reporter(event)
            if isinstance(event, NEWS):
                self._news.set()

        run_dirs = [seed.run_dir for seed in seeds]
        resuming = members[0][1] is not None
        try:
            if resuming:
                # The env id is the sweep's own, trusted here as when the sweep began (ConfigTrial's rule).
                population = PopulationTrainer.resume(run_dirs, sink=sink, threads=threads, env_id=config.env_id)
            else:
                population = PopulationTrainer(config, [seed.seed for seed in seeds], run_dirs, sink, threads)
        except (EnvError, ConfigError, CheckpointError, OSError, RunLockedError, ValueError) as error:
            for seed in seeds:
                seed.final_state = ERROR
                seed.reporter.set(state=ERROR, message=str(error))
            return None  # a config error repeats on every retry: report it once, do not burn retries
        if resuming:
            for seed, saved in members:
                seed.reporter.set(resumed_from=population.step, step=population.step, saved=saved)
                for step, mean, std in _evals_in(RunFiles(seed.run_dir), up_to=population.step):
                    seed.reporter.add_eval(step, mean, std)
        return population

    def _watch(self, population: PopulationTrainer, controls: Any) -> str:
        """Report while the population trains; "stop" or "pause" if the driver asked for that first."""

        def run() -> None:
            self._outcome = population.run()  # never raises for errors inside training

        self._thread = threading.Thread(target=run, daemon=True, name=f"population-{self.name}")
        self._thread.start()
        every = min(POLL_SECONDS, self.plan.progress_every)
        reported = self._common_step()
        while self._thread.is_alive():
            self._news.wait(every)
            self._news.clear()
            requested = self._poll_controls(controls)
            if requested:
                return requested
            # A new common evaluation is what ASHA judges: report it at once, as a turn's end does.
            step = self._common_step()
            if step != reported or time.monotonic() - self._last_sent >= self.plan.progress_every:
                reported = step
                self.send()
        return ""

    def _common_step(self) -> int:
        curves = [seed.reporter.curve() for seed in self.seeds if seed.reporter.state != ERROR]
        return common_step(curves)

    def _end(self, population: PopulationTrainer, members: list[tuple[SeedRun, tuple[int, str] | None]]) -> None:
        """Every member saves and ends (also when Tune stops the trial: its report raised); bounded."""
        if self._thread is None:  # built but never run: let go of its folders and envs (run() would have)
            for member in population.members:
                if member.lock is not None:
                    member.lock.release()
                with contextlib.suppress(Exception):
                    member.env.close()
                    member.eval_env.close()
        else:
            population.controls.stop(save=True)  # False once it has ended by itself: nothing left to save
            self._thread.join(STOP_JOIN_SECONDS)
        for seed, _ in members:
            seed.outcome = self._outcome  # state, step and error: what `_set_final_states` reads of a seed's run

