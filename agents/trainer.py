"""The training loop.

The loop runs in whichever thread calls `Trainer.run()`. It reports through a sink (a
callable taking events) and takes commands from `Trainer.controls`, applying them only
between environment steps, so the agent is never changed mid-update. Front-ends (the
rich progress bar, the Textual dashboard, benchmarks, sweeps) all run this same loop.
"""

from __future__ import annotations

import functools
import math
import os
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from agents.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from agents.checkpoint_payload import (
    FOR_RESUME,
    buffer_payload,
    build_payload,
    new_save_id,
    require_keys,
    restore,
    resumed_config,
)
from agents.config import ConfigError, DDPGConfig
from agents.controls import Command, CommandHandlers, Controls, apply_commands
from agents.cpu_use import OtherCpuUse, starting_count
from agents.ddpg import DDPGAgent, resolve_device
from agents.envs import EnvSpec, env_spec, make_env
from agents.errors import first_line
from agents.evaluation import EpisodeTracer, evaluate, evaluation_seed
from agents.events import (
    ConfigChanged,
    EpisodeEnd,
    EvalResult,
    Event,
    Notice,
    Saved,
    StateChanged,
    StepStats,
    ThreadsChanged,
    TrainerState,
    TrainingError,
    UpdateStats,
)
from agents.noise import SigmaSchedule, add_exploration_noise, make_noise
from agents.replay_buffer import ReplayBuffer
from agents.run_files import RunFiles, RunLock
from agents.schedules import LinearDecay
from agents.tensorboard_log import NO_TENSORBOARDX, TensorBoardLog, agent_rates
from agents.thread_tuner import ThreadTuner

EventSink = Callable[[Event], None]
STATS_EVERY = 200  # steps between StepStats/UpdateStats events


class DivergenceError(RuntimeError):
    """Training produced a non-finite loss, Q value or action."""


def default_threads(front_end: str = "app", concurrent_runs: int = 1) -> int:
    """The most torch intra-op threads worth using when the config says 0 (auto), for where the run happens.

    Headless, the trainer times 1 against this many as it trains and keeps the faster
    (agents/thread_tuner.py): beside any busy process, 2 threads on 2 cores collapse.

    - "headless", one run with the machine to itself: every core. Measured on the 2-core
      CI machine at equal work (Pendulum, 400x300, batch 256, 6000 steps): 57 s with 2
      threads against 73-83 s with 1.
    - "app": every core but one, which the UI thread needs. With the UI busy, 2 threads on
      2 cores made training 2.6x *slower* (OpenMP's spin-waits: 3000 Pendulum steps took
      45 s with 2 threads, 17 s with 1).
    - "headless" with `concurrent_runs` > 1 (seeds or trials side by side): the cores
      divided among them.
    """
    cores = os.cpu_count() or 1
    if front_end == "app":
        return max(1, cores - 1)
    return max(1, cores // max(1, concurrent_runs))


class TrainingClock:
    """Training wall time: pauses, evaluations, saves and event handling excluded."""

    def __init__(self) -> None:
        self.elapsed = 0.0
        self._since: float | None = None

    def start(self) -> None:
        self._since = time.perf_counter()

    def stop(self) -> None:
        if self._since is not None:
            self.elapsed += time.perf_counter() - self._since
            self._since = None

    def reading(self) -> float:
        """The training time so far, the running stretch included."""
        if self._since is None:
            return self.elapsed
        return self.elapsed + time.perf_counter() - self._since

    @contextmanager
    def excluded(self) -> Iterator[None]:
        self.stop()
        try:
            yield
        finally:
            self.start()


# Trainer ----------------------------------------------------------------------------


def _release_run_lock_on_error(init: Callable[..., None]) -> Callable[..., None]:
    """A Trainer that fails to build lets go of its run folder at once, not when it is garbage-collected:
    a Ray retry in the same actor reopens the folder straight away."""

    @functools.wraps(init)
    def build(self: Trainer, *args: Any, **kwargs: Any) -> None:
        try:
            init(self, *args, **kwargs)
        except BaseException:
            if getattr(self, "run_lock", None) is not None:
                self.run_lock.release()
            raise

    return build


@dataclass(frozen=True, slots=True)
class TrainingOutcome:
    state: TrainerState
    step: int
    total_steps: int
    episodes: int
    last_eval: EvalResult | None
    best_eval: EvalResult | None
    run_dir: Path | None
    checkpoint: Path | None = None  # the last latest.pt written, if any
    error: str = ""
    checkpoint_step: int | None = None  # the step `checkpoint` holds: older than `step` after a stop without saving


class Trainer:
    @_release_run_lock_on_error
    def __init__(
        self,
        config: DDPGConfig | None,
        sink: EventSink | None = None,
        run_dir: Path | None = None,
        *,
        resume_from: Path | None = None,
        total_steps: int | None = None,
        save_replay_buffer: bool = True,
        controls: Controls | None = None,
        env_id: str | None = None,
        front_end: str = "app",
        record_evaluations: threading.Event | None = None,
        run_lock: RunLock | None = None,
    ) -> None:
        """Build everything a run needs; raises EnvError, ConfigError or CheckpointError
        (each with a one-line message) before any training starts.

        When resuming, the checkpoint's config is used and `config` is ignored (pass None);
        `total_steps` extends a resumed run, and `env_id` (typed by the user) replaces the
        checkpoint's env id, which is otherwise accepted only if making it imports nothing.
        `front_end` ("app" or "headless") picks the torch thread count when config.threads is 0.
        While `record_evaluations` is set (by a front-end that shows the agent), each
        evaluation's first episode is also emitted as an EvalRecording.
        With a `run_dir`, the Trainer holds the folder's RunLock (raising RunLockedError if another
        process does) from here until run() ends; `run_lock` is one the caller took earlier.
        """
        # Before the checkpoint is read: a second writer must not resume from the state the first one moves on from.
        self.run_lock = (run_lock or RunLock(run_dir)).acquire() if run_dir is not None else None
        self.sink = sink if sink is not None else (lambda event: None)
        self.controls = controls if controls is not None else Controls()
        self.record_evaluations = record_evaluations if record_evaluations is not None else threading.Event()
        self.save_replay_buffer = save_replay_buffer
        self.files = RunFiles(run_dir) if run_dir is not None else None
        self.tensorboard: TensorBoardLog | None = None  # opened with the run folder, closed when run() ends
        self.resumed_from = Path(resume_from) if resume_from is not None else None

        checkpoint = None
        if self.resumed_from is not None:
            checkpoint = load_checkpoint(self.resumed_from)
            require_keys(checkpoint, self.resumed_from, FOR_RESUME)
            config = resumed_config(checkpoint, self.resumed_from, total_steps, env_id)
        elif config is None:
            raise ConfigError("a config is needed unless resuming from a checkpoint")
        elif total_steps is not None:
            config = config.replace(total_steps=total_steps)
        self.config = config
        # threads = 0: the count is chosen by timing the run's own updates (agents/thread_tuner.py).
        # Until the first update it is 1, which never collapses on a busy machine; the first
        # comparison then starts from what fits beside the other processes seen until then.
        most = default_threads(front_end)
        self.thread_tuner = ThreadTuner((1, most), current=1) if not config.threads and most > 1 else None
        self._other_cpu_use = OtherCpuUse() if self.thread_tuner else None
        self.threads = config.threads or (1 if self.thread_tuner else most)
        torch.set_num_threads(self.threads)
        torch.manual_seed(config.seed)

        self.env = make_env(config.env_id, seed=config.seed)
        self.eval_env = make_env(config.env_id)
        self.spec: EnvSpec = env_spec(self.env, config.env_id)
        self.device = resolve_device(config.device)
        self.agent = DDPGAgent(self.spec, config, self.device)
        self.buffer = ReplayBuffer(config.buffer_size, self.spec.obs_dim, self.spec.act_dim,
                                   seed=config.seed + 1, device=self.device)
        self.action_rng = np.random.default_rng(config.seed + 2)
        self.noise_rng = np.random.default_rng(config.seed + 3)
        self.noise = make_noise(config.noise, self.spec.act_dim, self.noise_rng, config.ou_theta)
        self.sigma = SigmaSchedule(config.noise_sigma, config.noise_final_sigma, config.noise_decay_steps)
        self.lr_decay = LinearDecay.over(config.total_steps)

        self.step = 0
        self.episode = 0
        self.updates = 0
        self.learning_from = config.learning_starts  # updates begin after this step
        self.clock = TrainingClock()
        self.best_eval: EvalResult | None = None
        self.last_eval: EvalResult | None = None
        self.last_checkpoint: Path | None = None
        self.last_checkpoint_step: int | None = None
        self.state = TrainerState.STARTING
        self._env_seeded = False
        self._obs: np.ndarray | None = None  # None: the next step starts a new episode
        self._episode_return = 0.0
        self._episode_length = 0
        self._pending_stats: list[Any] = []
        self._window_start = (0, 0.0)  # (step, elapsed) at the last StepStats
        self._saving_enabled = self.files is not None
        self._recording = self.files is not None
        self._periodic_save_due: int | None = None  # the step at which a deferred periodic save fell due
        self._final_work = False  # the final evaluation and save are running
        self._stop_at_episode_end = False  # Controls.stop_at_episode_end was asked: stop when an episode ends
        self.resume_notes: list[str] = []

        if checkpoint is not None:
            assert self.resumed_from is not None
            self.resume_notes = restore(self, checkpoint, self.resumed_from)
            self._window_start = (self.step, self.clock.elapsed)

    @property
    def elapsed(self) -> float:
        return self.clock.elapsed

    @property
    def at_episode_start(self) -> bool:
        return self._obs is None

    def state_dict(self) -> dict[str, Any]:
        """Everything a resume needs, as torch modules give theirs: the networks, counters, generators,
        schedules. `checkpoint_payload.build_payload` adds the save id it shares with the buffer file."""
        env_rng = getattr(self.env.unwrapped, "np_random", None)
        best = self.best_eval
        return {
            "env_id": self.spec.env_id,
            "obs_dim": self.spec.obs_dim,
            "act_dim": self.spec.act_dim,
            "config": self.config.to_dict(),
            "agent": self.agent.state_dict(),
            "counters": {"step": self.step, "episode": self.episode, "updates": self.updates,
                         "elapsed": self.clock.elapsed, "learning_from": self.learning_from},
            "best_eval": None if best is None else {"step": best.step, "mean": best.mean, "std": best.std},
            "noise": self.noise.state_dict(),
            "lr_decay": self.lr_decay.state_dict(),
            # A save mid-episode cannot resume that episode (the env's own state is not saved),
            # so the resume starts a new one and says so.
            "at_episode_start": self.at_episode_start,
            "rng": {
                "torch": torch.get_rng_state(),
                "action": self.action_rng.bit_generator.state,
                "noise": self.noise_rng.bit_generator.state,
                "env": env_rng.bit_generator.state if env_rng is not None else None,
                # A CUDA generator's state is a different thing from a CPU one's: the device says which.
                "target_noise": {"device": self.agent.device.type,
                                 "state": self.agent.target_noise_generator.get_state()},
            },
        }

    def load_state_dict(self, state: dict[str, Any], source: str = "the state") -> list[str]:
        """Put the trainer back where `state_dict()` left it; returns what the user should be told.
        `source` names the state in errors (CheckpointError), e.g. "checkpoint runs/x/checkpoints/latest.pt"."""
        notes: list[str] = []
        try:
            self.agent.load_state_dict(state["agent"])
        except (RuntimeError, KeyError, ValueError) as error:
            raise CheckpointError(f"{source} does not fit the networks: {first_line(error)}") from None
        counters = state["counters"]
        self.step, self.episode = int(counters["step"]), int(counters["episode"])
        self.updates = int(counters["updates"])
        self.clock.elapsed = float(counters["elapsed"])
        self.learning_from = int(counters.get("learning_from", self.config.learning_starts))
        if state.get("best_eval"):
            best = state["best_eval"]
            self.best_eval = EvalResult(int(best["step"]), float(best["mean"]), float(best["std"]), ())
        try:
            self.noise.load_state_dict(state["noise"])
            rng = state["rng"]
            torch.set_rng_state(rng["torch"])
            self.action_rng.bit_generator.state = rng["action"]
            self.noise_rng.bit_generator.state = rng["noise"]
            if rng.get("env") is not None:
                self.env.reset(seed=self.config.seed)  # creates the env's generator ...
                self.env.unwrapped.np_random.bit_generator.state = rng["env"]  # ... then restores it
            notes += self._load_target_noise(rng.get("target_noise"))
        except (KeyError, TypeError, ValueError, RuntimeError) as error:
            raise CheckpointError(f"{source} has unreadable generator state: {first_line(error)}") from None
        self.mark_env_seeded()

        notes += self._load_lr_decay(state)
        if not state.get("at_episode_start", True):
            notes.append(f"the checkpoint was saved mid-episode at step {self.step:,}; that episode restarts "
                         "from a reset, so this resume is not bit-exact")
        return notes

    def _load_target_noise(self, saved: Any) -> list[str]:
        """Continue TD3's target-noise stream; a checkpoint from before it was saved (or from
        another device type) leaves the generator seeded from the run's seed, as a new run's is."""
        generator = self.agent.target_noise_generator
        if isinstance(saved, dict) and saved.get("device") == self.agent.device.type:
            generator.set_state(saved["state"])
            return []
        if self.config.target_noise <= 0:
            return []  # nothing draws from it, so nothing differs
        why = ("the checkpoint predates its saved state" if not isinstance(saved, dict)
               else f"it was saved on {saved.get('device')} and this run is on {self.agent.device.type}")
        return [f"TD3's target noise restarts from the run's seed ({why}), so this resume is not bit-exact"]

    def _load_lr_decay(self, state: dict[str, Any]) -> list[str]:
        saved_total = int(state["config"]["total_steps"])
        decay = (LinearDecay.from_state_dict(state["lr_decay"]) if isinstance(state.get("lr_decay"), dict)
                 else LinearDecay.over(saved_total))  # checkpoints from before the horizon was stored
        if self.config.total_steps != decay.end_step:
            decay = decay.retargeted(self.step, self.config.total_steps)
        self.lr_decay = decay
        if self.config.lr_schedule == "linear" and decay(self.step) == 0.0:
            return [f"lr_schedule=linear had decayed the learning rates to 0 by step {self.step:,}; they stay 0, "
                    "so the extra steps collect data without learning "
                    "(switch lr_schedule to constant with h in the app)"]
        return []

    def restart_warmup(self) -> int:
        """Without its replay buffer a resumed run collects a warm-up's steps before it updates again."""
        warmup = max(self.config.learning_starts, self.config.batch_size)
        self.learning_from = self.step + warmup
        return warmup

    def mark_env_seeded(self) -> None:
        """The env's generator is already in its saved state: the next reset must not re-seed it."""
        self._env_seeded = True

    # Public -------------------------------------------------------------------------

    def run(self) -> TrainingOutcome:
        """Train until total_steps or stop; never raises for errors inside training."""
        error = ""
        try:
            self._prepare_run_dir()
            for note in self.resume_notes:
                self._emit(Notice(self.step, note))
            self._set_state(self._running_state())
            self._loop()
            if self.controls.stop_requested:
                self._flush_update_stats()
                if self.controls.save_on_stop:
                    self._save("interrupted")
                self._set_state(TrainerState.STOPPED)
            else:
                self._final_work = True
                if self.last_eval is None or self.last_eval.step != self.step:
                    self._evaluate()  # also when eval_every is 0: a run always ends with one
                if not self.controls.stop_requested or self.controls.save_on_stop:
                    self._save("final")
                self._set_state(TrainerState.FINISHED)
        except DivergenceError as exc:
            error = str(exc)
            self._emit(TrainingError(self.step, error))
            self._set_state(TrainerState.ERROR, error)
        except Exception as exc:  # a front-end must see it, not lose its worker
            error = f"{type(exc).__name__}: {exc}"
            self._emit(TrainingError(self.step, error, traceback.format_exc()))
            self._set_state(TrainerState.ERROR, error)
        finally:
            self._answer_late_commands()
            self._emit_progress()
            if self.files is not None:
                self.files.close()
            if self.tensorboard is not None:
                self.tensorboard.close()  # writes what is still queued: stop, error and finish alike
                self.tensorboard = None
            if self.run_lock is not None:
                self.run_lock.release()  # also after a failure: a retry in this process takes it again
            self.env.close()
            self.eval_env.close()
        return TrainingOutcome(self.state, self.step, self.config.total_steps, self.episode, self.last_eval,
                               self.best_eval, self.files.run_dir if self.files else None, self.last_checkpoint,
                               error, self.last_checkpoint_step)

    # The loop -----------------------------------------------------------------------

    def _loop(self) -> None:
        controls, clock = self.controls, self.clock
        clock.start()
        while self.step < self.config.total_steps:
            if controls.pending():
                with clock.excluded():
                    self._handle_commands()
                if controls.stop_requested:
                    break
                continue  # total_steps may have changed
            self._env_step()
            cfg = self.config
            if self.step > self.learning_from and self.step % cfg.train_freq == 0:
                if cfg.lr_schedule == "linear":
                    self._apply_lr_schedule()
                for _ in range(cfg.gradient_steps):
                    self._pending_stats.append(self.agent.update(self.buffer.sample(cfg.batch_size)))
                    self.updates += 1
                if self.thread_tuner is not None:
                    self._tune_threads()
            if self.step % STATS_EVERY == 0 or self.step == self.learning_from:
                with clock.excluded():
                    self._flush_update_stats()
                    self._emit_progress()
                    if self.step == self.learning_from:
                        self._set_state(TrainerState.TRAINING)
            if cfg.eval_every and self.step % cfg.eval_every == 0:
                with clock.excluded():
                    self._evaluate()
            if cfg.save_every and self.step % cfg.save_every == 0 and self._periodic_save_due is None:
                self._periodic_save_due = self.step
            # At total_steps the final save follows at once, so no periodic one comes before it.
            if self._periodic_save_due is not None and self.step < cfg.total_steps and self._periodic_save_is_now():
                with clock.excluded():
                    self._save("periodic")
            if self._stop_at_episode_end and self._obs is None:
                controls.stop(save=True)  # handled before the next step, where a periodic save would be
        clock.stop()

    def _tune_threads(self) -> None:
        tuner = self.thread_tuner
        assert tuner is not None
        if self._other_cpu_use is not None:  # the first update: choose where the comparison starts
            self._start_thread_tuner(tuner, self._other_cpu_use.cores())
            self._other_cpu_use = None
        kept_before = tuner.kept
        switch = tuner.observe(self.step, self.clock.reading())
        if switch is None:
            return
        if switch.threads != self.threads:
            torch.set_num_threads(switch.threads)
            self._emit(ThreadsChanged(self.step, self.threads, switch.threads, switch.reason,
                                      {str(count): round(rate, 1) for count, rate in switch.rates.items()}))
            self.threads = switch.threads
        if tuner.kept != kept_before:  # a try is not worth a line; a new choice is
            rates = ", ".join(f"{count}: {rate:,.0f}" for count, rate in sorted(switch.rates.items()))
            self._emit(Notice(self.step, f"torch threads {kept_before} -> {tuner.kept}, "
                                         f"the faster here now (steps/s by threads: {rates})", level="info"))

    def _start_thread_tuner(self, tuner: ThreadTuner, others: float | None) -> None:
        start = starting_count(tuner.candidates, others, os.cpu_count() or 1)
        tuner.start_from(start)
        if start != self.threads:
            torch.set_num_threads(start)
            self._emit(ThreadsChanged(self.step, self.threads, start,
                                      f"other processes used {others:.2f} cores before training"))
            self.threads = start

    def _periodic_save_is_now(self) -> bool:
        # At an episode boundary the save resumes bit-exactly, so wait for one; but not
        # forever, for an env whose episodes never end.
        assert self._periodic_save_due is not None
        return self._obs is None or self.step - self._periodic_save_due >= self.config.save_every

    def _env_step(self) -> None:
        if self._obs is None:
            self._start_episode()
        obs = self._obs
        cfg = self.config
        spec = self.spec
        if self.step < cfg.learning_starts:
            action = self.action_rng.uniform(spec.action_low, spec.action_high).astype(np.float32)
        else:
            action = add_exploration_noise(self.agent.act(obs), self.noise(), self.sigma(self.step),
                                           spec.action_low, spec.action_high)
        next_obs, reward, terminated, truncated, _ = self.env.step(action.reshape(self.env.action_space.shape))
        # Store `terminated` as the done flag: a time-limit truncation is not a terminal
        # state, so its target must still bootstrap from Q'(s', μ'(s')). `next_obs` is the
        # true last observation (Gymnasium returns it; the reset comes on the next step).
        self.buffer.add(obs.reshape(-1), action, float(reward), next_obs.reshape(-1), bool(terminated))
        self.step += 1
        self._episode_return += float(reward)
        self._episode_length += 1
        if terminated or truncated:
            self.episode += 1
            self._emit(EpisodeEnd(self.step, self.episode, self._episode_return, self._episode_length))
            self._obs = None
        else:
            self._obs = next_obs

    def _start_episode(self) -> None:
        seed = None if self._env_seeded else self.config.seed
        self._obs, _ = self.env.reset(seed=seed)
        self._env_seeded = True
        self.noise.reset()
        self._episode_return = 0.0
        self._episode_length = 0

    # Commands -----------------------------------------------------------------------

    def _handle_commands(self) -> None:
        apply_commands(self.controls, CommandHandlers(
            pause=self._pause, resume=lambda: self._set_state(self._running_state()),
            evaluate=lambda paused: self._evaluate(),  # it returns to PAUSED itself if it was paused
            save=self._save_requested, other=self._other_command))

    def _pause(self) -> None:
        self._flush_update_stats()
        self._emit_progress()
        self._set_state(TrainerState.PAUSED)

    def _save_requested(self) -> None:
        self._flush_update_stats()
        self._save("requested")

    def _other_command(self, command: Command) -> None:
        if command.name == "set" and command.changes:
            self._apply_changes(command.changes, command.source)
        elif command.name == "stop_at_episode_end":
            self._stop_at_episode_end = True
            if self._obs is None:  # between two episodes already
                self.controls.stop(save=True)

    def _answer_late_commands(self) -> None:
        """Commands that arrived during the final evaluation or save, or after: answer each."""
        for command in self.controls.close():
            if message := self._late_answer(command):
                self._emit(Notice(self.step, message, level="info"))

    def _late_answer(self, command: Command) -> str:
        ended = f"training had already {self.state.value}"
        if command.name == "evaluate" and self._final_work and self.last_eval is not None:
            return f"evaluate: answered by the final evaluation at step {self.last_eval.step:,}"
        if command.name == "save" and self._final_work and self.last_checkpoint is not None:
            return f"save: answered by the final save, {self.last_checkpoint}"
        if command.name == "set" and command.changes:
            return f"set {', '.join(command.changes)}: not applied, {ended}"
        if command.name == "stop":
            return ""
        return f"{command.name.replace('_', ' ')}: not done, {ended}"

    def _apply_changes(self, changes: dict[str, Any], source: str = "key") -> None:
        old = self.config
        self.config = self.config.replace(**changes)
        cfg = self.config
        self.lr_decay = self.lr_decay.after_change(self.step, old.lr_schedule == "linear",
                                                   cfg.lr_schedule == "linear", cfg.total_steps)
        self.agent.set_learning_rates(cfg.actor_lr, cfg.critic_lr)  # a linear schedule rescales them
        self.agent.apply_live_config(cfg)
        if {"noise", "ou_theta"} & changes.keys():
            self.noise = make_noise(cfg.noise, self.spec.act_dim, self.noise_rng, cfg.ou_theta)
        self.sigma = SigmaSchedule(cfg.noise_sigma, cfg.noise_final_sigma, cfg.noise_decay_steps)
        self._emit(ConfigChanged(self.step, dict(changes), {name: getattr(old, name) for name in changes}, source))
        self._emit_progress()

    def _apply_lr_schedule(self) -> None:
        # rl-zoo's `lin_` schedules: both rates fall linearly to 0 at total_steps, so the
        # policy settles at the end of the run instead of still oscillating.
        fraction = self.lr_decay(self.step)
        self.agent.set_learning_rates(self.config.actor_lr * fraction, self.config.critic_lr * fraction)

    # Evaluation and saving ----------------------------------------------------------

    def _evaluate(self) -> None:
        self._flush_update_stats()
        previous = self.state
        self._set_state(TrainerState.EVALUATING)
        episodes = self.config.eval_episodes
        seed = evaluation_seed(self.config.seed)  # episode i: seed + i, this run's own block
        # A watcher asked to see the agent: keep the first episode's actions (not frames: drawing
        # would cost several times the evaluation; ddpg_tui/media/replay.py replays them elsewhere).
        tracer = EpisodeTracer() if self.record_evaluations.is_set() else None
        result = evaluate(self.agent.act, self.eval_env, episodes, seed=seed,
                          should_stop=lambda: self.controls.stop_requested, step_sink=tracer)
        if len(result.returns) < episodes:
            # A stop cut it short: a mean of fewer episodes is not comparable, so it
            # neither counts as the last evaluation nor may replace best.pt.
            self._emit(Notice(self.step, f"evaluation at step {self.step:,} stopped after {len(result.returns)} "
                                         f"of {episodes} episodes; not counted", level="info"))
        else:
            is_best = self.best_eval is None or result.mean > self.best_eval.mean
            event = EvalResult(self.step, result.mean, result.std, result.returns, best=is_best,
                               lengths=result.lengths)
            self.last_eval = event
            if is_best:
                self.best_eval = event
            self._emit(event)
            if tracer is not None:
                fps = float(self.eval_env.metadata.get("render_fps") or 0.0)
                self._emit(tracer.recording(self.step, self.config.env_id, seed, fps))
            if is_best:
                self._save("best")
        self._set_state(previous if previous != TrainerState.EVALUATING else self._running_state())

    def _save(self, reason: str) -> None:
        if reason != "best":
            self._periodic_save_due = None
        if not self._saving_enabled or self.files is None:
            return
        self._check_finite()
        save_id = new_save_id()
        try:
            if reason == "best":
                path = save_checkpoint(self.files.best, build_payload(self, save_id))
            else:
                # The buffer first: a failure or crash between the two writes then leaves
                # the old pair, or a new buffer that the old checkpoint's save_id rejects.
                if self.save_replay_buffer:
                    save_checkpoint(self.files.buffer, buffer_payload(self, save_id))
                path = save_checkpoint(self.files.latest, build_payload(self, save_id))
                self.last_checkpoint, self.last_checkpoint_step = path, self.step
        except OSError as error:
            kept = f"; {self.last_checkpoint} is kept" if self.last_checkpoint else ""
            self._emit(Notice(self.step, f"could not save to {self.files.checkpoint_dir}: "
                                         f"{error.strerror or error}; training goes on{kept}"))
            return
        with suppress(OSError):  # the config the checkpoint holds, as text; config.toml + change rows say it too
            self.files.write_effective(self.config)
        self._emit(Saved(self.step, path, reason, save_id))
        if self.tensorboard is not None:
            self.tensorboard.flush()

    # Helpers ------------------------------------------------------------------------

    def _prepare_run_dir(self) -> None:
        if self.files is None:
            return
        try:
            resumed = self.resumed_from is not None
            new: dict[str, Any] = {}
            old: dict[str, Any] = {}
            if resumed:
                self.files.drop_metrics_after(self.step)  # rows the checkpoint never saw
                new, old = self.files.resume_changes(self.config)  # --steps or --env given at resume
            self.files.create(self.config, resumed=resumed)
            if new:
                self._emit(ConfigChanged(self.step, new, old, "resume"))
            if resumed and self.files.latest.exists():  # the checkpoint this run resumed from, at its step
                self.last_checkpoint, self.last_checkpoint_step = self.files.latest, self.step
        except OSError as error:
            self._saving_enabled = self._recording = False
            self._emit(Notice(self.step, f"run folder {self.files.run_dir} is not writable "
                                         f"({error.strerror or error}); training goes on without saving"))
            return
        if self.config.tensorboard:
            self._open_tensorboard(self.files.run_dir, self.step if resumed else None)

    def _open_tensorboard(self, run_dir: Path, resume_step: int | None) -> None:
        try:
            self.tensorboard = TensorBoardLog.open(run_dir, agent_rates(self.agent), resume_step)
        except ImportError:
            self._emit(Notice(self.step, NO_TENSORBOARDX))
        except OSError as error:
            self._emit(Notice(self.step, f"no TensorBoard event files in {run_dir}: {error.strerror or error}"))

    def _running_state(self) -> TrainerState:
        return TrainerState.WARMING_UP if self.step < self.learning_from else TrainerState.TRAINING

    def _set_state(self, state: TrainerState, message: str = "") -> None:
        if state == self.state and not message:
            return
        self.state = state
        self._emit(StateChanged(self.step, state, message))

    def _flush_update_stats(self) -> None:
        if not self._pending_stats:
            return
        stats, self._pending_stats = self._pending_stats, []
        # One stack and one transfer for the whole window instead of an .item() per update.
        values = torch.stack([torch.stack([s.critic_loss, s.actor_loss, s.mean_q]) for s in stats])
        critic_loss, actor_loss, mean_q = values.mean(dim=0).tolist()
        if not all(math.isfinite(v) for v in (critic_loss, actor_loss, mean_q)):
            raise DivergenceError(
                f"training diverged by step {self.step}: non-finite loss or Q value "
                f"(critic loss {critic_loss}, actor loss {actor_loss}); the last checkpoint is kept. "
                "Try lower learning rates."
            )
        self._emit(UpdateStats(self.step, self.updates, critic_loss, actor_loss, mean_q))

    def _check_finite(self) -> None:
        modules = [("actor", self.agent.actor), ("critic", self.agent.critic)]
        if self.agent.critic2 is not None:  # twin critics: the second one is saved too
            modules.append(("second critic", self.agent.critic2))
        for name, module in modules:
            if not all(torch.isfinite(p).all() for p in module.parameters()):
                raise DivergenceError(f"training diverged by step {self.step}: non-finite {name} weights; "
                                      "not saved, the last checkpoint is kept")

    def _emit_progress(self) -> None:
        start_step, start_elapsed = self._window_start
        window = self.clock.elapsed - start_elapsed
        sps = (self.step - start_step) / window if window > 0 else 0.0
        self._window_start = (self.step, self.clock.elapsed)
        self._emit(StepStats(self.step, self.config.total_steps, self.episode, sps, len(self.buffer),
                             self.buffer.capacity, self.sigma(self.step), self.clock.elapsed, self.updates))

    def _emit(self, event: Event) -> None:
        if self._recording and self.files is not None:
            try:
                self.files.record(event)
            except OSError as error:
                self._recording = False
                self.sink(Notice(self.step, f"could not write {self.files.metrics_path}: "
                                            f"{error.strerror or error}; metrics are no longer recorded"))
        if self.tensorboard is not None:
            self.tensorboard.record(event)
        self.sink(event)
