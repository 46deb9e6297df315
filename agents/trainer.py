"""The training loop, and the controls through which any thread steers it.

The loop runs in whichever thread calls `Trainer.run()`. It reports through a sink (a
callable taking events) and takes commands from `Trainer.controls`, applying them only
between environment steps, so the agent is never changed mid-update. Front-ends (the
rich progress bar, the Textual dashboard, benchmarks) all run this same loop.
"""

from __future__ import annotations

import math
import os
import queue
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from agents.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from agents.config import FIELDS, ConfigError, DDPGConfig, validate_field
from agents.ddpg import DDPGAgent, resolve_device
from agents.envs import EnvSpec, env_spec, make_env
from agents.evaluation import evaluate
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
    UpdateStats,
)
from agents.noise import SigmaSchedule, add_exploration_noise, make_noise
from agents.replay_buffer import ReplayBuffer
from agents.run_files import RunFiles

EventSink = Callable[[Event], None]
EVAL_SEED_OFFSET = 10_000  # evaluation envs never share start states with training
STATS_EVERY = 200  # steps between StepStats/UpdateStats events


class DivergenceError(RuntimeError):
    """Training produced a non-finite loss, Q value or action."""


def default_threads() -> int:
    """Torch intra-op threads when the config says 0 (auto).

    Measured on the 2-core CI machine: 2 threads make a lone update 1.3-1.8x faster, but
    with any other busy thread (the app's UI, a second run, the env) OpenMP's spin-waits
    made training 2.6x *slower* (3000 Pendulum steps: 17 s with 1 thread, 45 s with 2).
    So keep one core free for everything else.
    """
    cores = os.cpu_count() or 1
    return 1 if cores <= 3 else min(cores // 2, 8)


# Controls ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Command:
    name: str
    changes: dict[str, Any] | None = None


class Controls:
    """Thread-safe requests to a running trainer. Each returns at once; the trainer
    applies it between steps and confirms with an event."""

    def __init__(self) -> None:
        self._commands: queue.SimpleQueue[_Command] = queue.SimpleQueue()
        self._stop = threading.Event()
        self.save_on_stop = True

    def pause(self) -> None:
        self._commands.put(_Command("pause"))

    def resume(self) -> None:
        self._commands.put(_Command("resume"))

    def toggle_pause(self) -> None:
        self._commands.put(_Command("toggle_pause"))

    def evaluate(self) -> None:
        self._commands.put(_Command("evaluate"))

    def save(self) -> None:
        self._commands.put(_Command("save"))

    def stop(self, save: bool = True) -> None:
        """End training after the current step; with `save`, write a checkpoint first."""
        self.save_on_stop = save
        self._stop.set()
        self._commands.put(_Command("stop"))

    def set(self, **changes: Any) -> dict[str, Any]:
        """Validate in the caller's thread (so a form can mark the field), then queue."""
        clean: dict[str, Any] = {}
        for name, value in changes.items():
            if name not in FIELDS:
                raise ConfigError(f"unknown hyperparameter {name!r}")
            if not FIELDS[name].live:
                live = ", ".join(n for n, s in FIELDS.items() if s.live)
                raise ConfigError(f"{name} cannot change while training runs; live fields: {live}")
            clean[name] = validate_field(name, value)
        self._commands.put(_Command("set", clean))
        return clean

    @property
    def stop_requested(self) -> bool:
        return self._stop.is_set()

    def _pending(self) -> bool:
        return not self._commands.empty()

    def _next(self, timeout: float | None = None) -> _Command | None:
        try:
            return self._commands.get(timeout=timeout) if timeout else self._commands.get_nowait()
        except queue.Empty:
            return None


# Trainer ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TrainingOutcome:
    state: TrainerState
    step: int
    episodes: int
    last_eval: EvalResult | None
    best_eval: EvalResult | None
    run_dir: Path | None
    error: str = ""


class Trainer:
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
    ) -> None:
        """Build everything a run needs; raises EnvError, ConfigError or CheckpointError
        (each with a one-line message) before any training starts.

        When resuming, the checkpoint's config is used and `config` is ignored (pass None);
        `total_steps` extends a resumed run.
        """
        self.sink = sink if sink is not None else (lambda event: None)
        self.controls = controls if controls is not None else Controls()
        self.save_replay_buffer = save_replay_buffer
        self.files = RunFiles(run_dir) if run_dir is not None else None

        checkpoint = load_checkpoint(resume_from) if resume_from is not None else None
        if checkpoint is not None:
            config = _resumed_config(checkpoint, total_steps)
        elif config is None:
            raise ConfigError("a config is needed unless resuming from a checkpoint")
        elif total_steps is not None:
            config = config.replace(total_steps=total_steps)
        self.config = config
        torch.set_num_threads(config.threads or default_threads())
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

        self.step = 0
        self.episode = 0
        self.updates = 0
        self.elapsed = 0.0  # training wall time, pauses and evaluations excluded
        self.best_eval: EvalResult | None = None
        self.last_eval: EvalResult | None = None
        self.state = TrainerState.STARTING
        self._env_seeded = False
        self._obs: np.ndarray | None = None  # None: the next step starts a new episode
        self._episode_return = 0.0
        self._episode_length = 0
        self._pending_stats: list[Any] = []
        self._window_start = (0, 0.0)  # (step, elapsed) at the last StepStats
        self._saving_enabled = self.files is not None

        if checkpoint is not None:
            self._restore(checkpoint, resume_from)

    # Public -------------------------------------------------------------------------

    def run(self) -> TrainingOutcome:
        """Train until total_steps or stop; never raises for errors inside training."""
        error = ""
        try:
            self._prepare_run_dir()
            self._set_state(self._running_state())
            self._loop()
            if self.controls.stop_requested:
                self._flush_update_stats()
                if self.controls.save_on_stop:
                    self._save("interrupted")
                self._set_state(TrainerState.STOPPED)
            else:
                if self.config.eval_every == 0 or self.last_eval is None or self.last_eval.step != self.step:
                    self._evaluate()
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
            self._emit_progress()
            if self.files is not None:
                self.files.close()
            self.env.close()
            self.eval_env.close()
        return TrainingOutcome(self.state, self.step, self.episode, self.last_eval, self.best_eval,
                               self.files.run_dir if self.files else None, error)

    # The loop -----------------------------------------------------------------------

    def _loop(self) -> None:
        controls = self.controls
        clock = time.perf_counter()
        while self.step < self.config.total_steps:
            if controls._pending():
                self.elapsed += time.perf_counter() - clock
                self._handle_commands()
                clock = time.perf_counter()
                if controls.stop_requested:
                    break
                continue  # total_steps may have changed
            self._env_step()
            cfg = self.config
            if self.step > cfg.learning_starts and self.step % cfg.train_freq == 0:
                if cfg.lr_schedule == "linear":
                    self._apply_lr_schedule()
                for _ in range(cfg.gradient_steps):
                    self._pending_stats.append(self.agent.update(self.buffer.sample(cfg.batch_size)))
                    self.updates += 1
            if self.step % STATS_EVERY == 0 or self.step == cfg.learning_starts:
                self.elapsed += time.perf_counter() - clock
                self._flush_update_stats()
                self._emit_progress()
                if self.step == cfg.learning_starts:
                    self._set_state(TrainerState.TRAINING)
                clock = time.perf_counter()
            if cfg.eval_every and self.step % cfg.eval_every == 0:
                self.elapsed += time.perf_counter() - clock
                self._evaluate()
                clock = time.perf_counter()
            if cfg.save_every and self.step % cfg.save_every == 0:
                self.elapsed += time.perf_counter() - clock
                self._save("periodic")
                clock = time.perf_counter()
        self.elapsed += time.perf_counter() - clock

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
        paused = False
        while True:
            command = self.controls._next(timeout=0.05 if paused else None)
            if command is None:
                if paused and not self.controls.stop_requested:
                    continue
                break
            name = command.name
            if name == "stop":
                break
            if name in ("pause", "toggle_pause") and not paused:
                paused = True
                self._flush_update_stats()
                self._emit_progress()
                self._set_state(TrainerState.PAUSED)
            elif name in ("resume", "toggle_pause") and paused:
                paused = False
                self._set_state(self._running_state())
            elif name == "evaluate":
                self._evaluate()  # returns to PAUSED if it was paused
            elif name == "save":
                self._flush_update_stats()
                self._save("requested")
            elif name == "set" and command.changes:
                self._apply_changes(command.changes)

    def _apply_changes(self, changes: dict[str, Any]) -> None:
        self.config = self.config.replace(**changes)
        cfg = self.config
        self.agent.set_learning_rates(cfg.actor_lr, cfg.critic_lr)  # a linear schedule rescales them
        self.agent.tau, self.agent.gamma = cfg.tau, cfg.gamma
        if {"noise", "ou_theta"} & changes.keys():
            self.noise = make_noise(cfg.noise, self.spec.act_dim, self.noise_rng, cfg.ou_theta)
        self.sigma = SigmaSchedule(cfg.noise_sigma, cfg.noise_final_sigma, cfg.noise_decay_steps)
        self._emit(ConfigChanged(self.step, dict(changes)))
        self._emit_progress()

    def _apply_lr_schedule(self) -> None:
        # rl-zoo's `lin_` schedules: both rates fall linearly to 0 at total_steps, so the
        # policy settles at the end of the run instead of still oscillating.
        remaining = max(1.0 - self.step / self.config.total_steps, 0.0)
        self.agent.set_learning_rates(self.config.actor_lr * remaining, self.config.critic_lr * remaining)

    # Evaluation and saving ----------------------------------------------------------

    def _evaluate(self) -> None:
        self._flush_update_stats()
        previous = self.state
        self._set_state(TrainerState.EVALUATING)
        result = evaluate(self.agent.act, self.eval_env, self.config.eval_episodes,
                          seed=self.config.seed + EVAL_SEED_OFFSET,
                          should_stop=lambda: self.controls.stop_requested)
        is_best = self.best_eval is None or result.mean > self.best_eval.mean
        event = EvalResult(self.step, result.mean, result.std, result.returns, best=is_best)
        self.last_eval = event
        if is_best:
            self.best_eval = event
        self._emit(event)
        if is_best:
            self._save("best")
        self._set_state(previous if previous != TrainerState.EVALUATING else self._running_state())

    def _save(self, reason: str) -> None:
        if not self._saving_enabled or self.files is None:
            return
        self._check_finite()
        try:
            if reason == "best":
                path = save_checkpoint(self.files.best, self._checkpoint_payload())
            else:
                path = save_checkpoint(self.files.latest, self._checkpoint_payload())
                if self.save_replay_buffer:
                    save_checkpoint(self.files.buffer, {"replay_buffer": self.buffer.state_dict(),
                                                        "step": self.step})
        except OSError as error:
            self._saving_enabled = False
            self._emit(Notice(self.step, f"could not save to {self.files.checkpoint_dir}: "
                                         f"{error.strerror or error}; training goes on without saving"))
            return
        self._emit(Saved(self.step, path, reason))

    def _checkpoint_payload(self) -> dict[str, Any]:
        env_rng = getattr(self.env.unwrapped, "np_random", None)
        return {
            "env_id": self.spec.env_id,
            "obs_dim": self.spec.obs_dim,
            "act_dim": self.spec.act_dim,
            "config": self.config.to_dict(),
            "agent": self.agent.state_dict(),
            "counters": {"step": self.step, "episode": self.episode, "updates": self.updates,
                         "elapsed": self.elapsed},
            "best_eval": None if self.best_eval is None else
            {"step": self.best_eval.step, "mean": self.best_eval.mean, "std": self.best_eval.std},
            "noise": self.noise.state_dict(),
            # An episode cut short by the save is not resumed; `at_episode_start` says
            # whether the run stood at a boundary, where resuming is exact.
            "at_episode_start": self._obs is None,
            "rng": {
                "torch": torch.get_rng_state(),
                "action": self.action_rng.bit_generator.state,
                "noise": self.noise_rng.bit_generator.state,
                "env": env_rng.bit_generator.state if env_rng is not None else None,
            },
        }

    def _restore(self, checkpoint: dict[str, Any], path: Path | None) -> None:
        if checkpoint["env_id"] != self.spec.env_id or checkpoint["obs_dim"] != self.spec.obs_dim \
                or checkpoint["act_dim"] != self.spec.act_dim:
            raise CheckpointError(f"checkpoint {path} is for {checkpoint['env_id']}, not {self.spec.env_id}")
        try:
            self.agent.load_state_dict(checkpoint["agent"])
        except (RuntimeError, KeyError) as error:
            raise CheckpointError(f"checkpoint {path} does not fit the networks: {_first_line(error)}") from None
        counters = checkpoint["counters"]
        self.step, self.episode = int(counters["step"]), int(counters["episode"])
        self.updates, self.elapsed = int(counters["updates"]), float(counters["elapsed"])
        if checkpoint.get("best_eval"):
            best = checkpoint["best_eval"]
            self.best_eval = EvalResult(int(best["step"]), float(best["mean"]), float(best["std"]), ())
        self.noise.load_state_dict(checkpoint["noise"])
        rng = checkpoint["rng"]
        torch.set_rng_state(rng["torch"])
        self.action_rng.bit_generator.state = rng["action"]
        self.noise_rng.bit_generator.state = rng["noise"]
        if rng.get("env") is not None:
            self.env.reset(seed=self.config.seed)  # creates the env's generator ...
            self.env.unwrapped.np_random.bit_generator.state = rng["env"]  # ... then restores it
        self._env_seeded = True
        if self.save_replay_buffer and path is not None:
            buffer_path = Path(path).with_name("replay_buffer.pt")
            if buffer_path.exists():
                saved = load_checkpoint(buffer_path)
                if int(saved.get("step", -1)) == self.step:
                    self.buffer.load_state_dict(saved["replay_buffer"])

    # Helpers ------------------------------------------------------------------------

    def _prepare_run_dir(self) -> None:
        if self.files is None:
            return
        try:
            self.files.create(self.config)
        except OSError as error:
            self._saving_enabled = False
            self._emit(Notice(self.step, f"run folder {self.files.run_dir} is not writable "
                                         f"({error.strerror or error}); training goes on without saving"))

    def _running_state(self) -> TrainerState:
        return TrainerState.WARMING_UP if self.step < self.config.learning_starts else TrainerState.TRAINING

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
        for name, module in (("actor", self.agent.actor), ("critic", self.agent.critic)):
            if not all(torch.isfinite(p).all() for p in module.parameters()):
                raise DivergenceError(f"training diverged by step {self.step}: non-finite {name} weights; "
                                      "not saved, the last checkpoint is kept")

    def _emit_progress(self) -> None:
        start_step, start_elapsed = self._window_start
        window = self.elapsed - start_elapsed
        sps = (self.step - start_step) / window if window > 0 else 0.0
        self._window_start = (self.step, self.elapsed)
        self._emit(StepStats(self.step, self.config.total_steps, self.episode, sps, len(self.buffer),
                             self.buffer.capacity, self.sigma(self.step), self.elapsed, self.updates))

    def _emit(self, event: Event) -> None:
        if self.files is not None and self._saving_enabled:
            self.files.record(event)
        self.sink(event)


def _resumed_config(checkpoint: dict[str, Any], total_steps: int | None) -> DDPGConfig:
    """The checkpoint's own config, optionally with a new total_steps."""
    try:
        saved = DDPGConfig.from_mapping(checkpoint["config"])
    except (ConfigError, KeyError, TypeError) as error:
        raise CheckpointError(f"checkpoint has an invalid config: {error}") from None
    return saved if total_steps is None else saved.replace(total_steps=total_steps)


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
