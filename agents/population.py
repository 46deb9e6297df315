"""A population trainer: N members (one config, one seed each) trained in one process.

Each member is the run `train --seed k` makes, drawn from the same generators in the same
order as `agents/trainer.py`: torch.manual_seed(k) before its networks are built, its
replay sampling from seed k+1, uniform warm-up actions from k+2, exploration noise from
k+3, TD3's target noise from k+4 (agents/ddpg.py), and its env reset(seed=k) once. What is
shared is only the work: the networks are stacked (agents/population_agent.py), the replay
buffers are one preallocated array with a member axis, and one batched forward pass gives
every member's action. All members step in lockstep, so they update at the same steps.

Each member with a run folder writes what a single run writes there: config.toml,
metrics.jsonl (agents/run_files.RunFiles) and checkpoints (agents/checkpoint_payload), so
`eval`, `watch`, `compare` and `export` work on a member folder.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

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
from agents.config import DDPGConfig
from agents.controls import Command, CommandHandlers, Controls, apply_commands
from agents.ddpg import DDPGAgent, resolve_device
from agents.envs import env_spec, make_env
from agents.evaluation import EpisodeTracer, evaluation_seed
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
from agents.population_agent import PopulationAgent
from agents.replay_buffer import Batch, ReplayBuffer
from agents.run_files import RunFiles, RunLock
from agents.schedules import LinearDecay
from agents.tensorboard_log import NO_TENSORBOARDX, TensorBoardLog, agent_rates
from agents.trainer import STATS_EVERY, DivergenceError, Trainer, TrainingClock

if TYPE_CHECKING:
    from agents.trainer import Trainer

MemberSink = Callable[[int, Event], None]  # (member index, event)


class PopulationBuffer:
    """N replay buffers in one preallocated [N, capacity, ...] array per field.

    `members[k]` is an ordinary ReplayBuffer whose arrays are views of slice k, with its own
    sampling generator (seed k+1): its state_dict is the one a standalone run saves, and the
    memory is exactly N single buffers.
    """

    def __init__(self, seeds: list[int], capacity: int, obs_dim: int, act_dim: int) -> None:
        n = len(seeds)
        self.capacity = int(capacity)
        self.obs = np.zeros((n, self.capacity, obs_dim), dtype=np.float32)
        self.next_obs = np.zeros((n, self.capacity, obs_dim), dtype=np.float32)
        self.actions = np.zeros((n, self.capacity, act_dim), dtype=np.float32)
        self.rewards = np.zeros((n, self.capacity), dtype=np.float32)
        self.dones = np.zeros((n, self.capacity), dtype=np.float32)
        self.members = [self._view(k, seed + 1, obs_dim, act_dim) for k, seed in enumerate(seeds)]
        self._rows = np.arange(n)[:, None]

    def _view(self, k: int, seed: int, obs_dim: int, act_dim: int) -> ReplayBuffer:
        # Built by its own __init__ (one slot), then pointed at slice k: whatever else a
        # ReplayBuffer sets up, it has.
        buffer = ReplayBuffer(1, obs_dim, act_dim, seed=seed, device="cpu")
        buffer.capacity = self.capacity
        buffer.obs, buffer.next_obs, buffer.actions = self.obs[k], self.next_obs[k], self.actions[k]
        buffer.rewards, buffer.dones = self.rewards[k], self.dones[k]
        return buffer

    @property
    def nbytes(self) -> int:
        return sum(a.nbytes for a in (self.obs, self.next_obs, self.actions, self.rewards, self.dones))

    def __len__(self) -> int:
        return self.members[0].size

    def add(self, obs: np.ndarray, actions: np.ndarray, rewards: np.ndarray, next_obs: np.ndarray,
            terminated: np.ndarray) -> None:
        """One transition per member (rows of each array); every member's ring moves in step."""
        for k, member in enumerate(self.members):
            member.add(obs[k], actions[k], float(rewards[k]), next_obs[k], bool(terminated[k]))

    def sample(self, batch_size: int) -> Batch:
        """Member k's indices from its own generator, as its standalone buffer draws them."""
        index = np.stack([m.rng.integers(0, m.size, size=batch_size) for m in self.members])
        # Rows of the arrays flattened over (member, slot): `take` with one flat index is about
        # 3x faster than indexing with a (member, slot) pair of index arrays.
        flat = (self._rows * self.capacity + index).ravel()
        n = len(self.members)
        return Batch(*(torch.from_numpy(a.reshape(n * self.capacity, *a.shape[2:]).take(flat, axis=0)
                                        .reshape(n, batch_size, *a.shape[2:]))
                       for a in (self.obs, self.actions, self.rewards, self.next_obs, self.dones)))


@dataclass
class Member:
    """One member's own state: what `build_payload` reads off a Trainer, under the same names."""

    config: DDPGConfig
    env: Any
    eval_env: Any
    agent: DDPGAgent
    buffer: ReplayBuffer
    action_rng: np.random.Generator
    noise_rng: np.random.Generator
    noise: Any
    spec: Any
    clock: TrainingClock
    lr_decay: LinearDecay
    files: RunFiles | None = None
    lock: RunLock | None = None
    tensorboard: TensorBoardLog | None = None
    step: int = 0
    episode: int = 0
    updates: int = 0
    learning_from: int = 0
    best_eval: EvalResult | None = None
    last_eval: EvalResult | None = None
    last_checkpoint: Path | None = None
    obs: np.ndarray | None = None
    episode_return: float = 0.0
    episode_length: int = 0
    env_seeded: bool = False
    periodic_save_due: int | None = None
    pending: list[Any] = field(default_factory=list)

    # The same names as a Trainer's, so a member's checkpoint is a Trainer's state_dict and a
    # member resumes through the same restore() a Trainer does.
    state_dict = Trainer.state_dict
    load_state_dict = Trainer.load_state_dict
    restart_warmup = Trainer.restart_warmup
    _load_target_noise = Trainer._load_target_noise
    _load_lr_decay = Trainer._load_lr_decay

    def mark_env_seeded(self) -> None:
        self.env_seeded = True

    @property
    def at_episode_start(self) -> bool:
        return self.obs is None


@dataclass(frozen=True, slots=True)
class PopulationOutcome:
    state: TrainerState
    step: int
    total_steps: int
    last_evals: list[EvalResult | None]
    run_dirs: list[Path | None]
    error: str = ""


class PopulationTrainer:
    def __init__(self, config: DDPGConfig, seeds: list[int], run_dirs: list[Path] | None = None,
                 sink: MemberSink | None = None, threads: int = 1, controls: Controls | None = None,
                 record_evaluations: threading.Event | None = None) -> None:
        """`record_evaluations`, as a Trainer's: while it is set, each evaluation's first episode is also
        emitted, as every member's own EvalRecording (for a front-end that shows the agent)."""
        if not seeds or len(set(seeds)) != len(seeds):
            raise ValueError(f"seeds: expected distinct seeds, got {seeds}")
        if run_dirs is not None and len(run_dirs) != len(seeds):
            raise ValueError("run_dirs: expected one folder per seed")
        self.config = config.replace(seed=seeds[0])
        self.seeds = list(seeds)
        self.sink = sink if sink is not None else (lambda k, event: None)
        # One set of controls for the whole population: a key pauses, saves or stops every member at once.
        self.controls = controls if controls is not None else Controls()
        self.record_evaluations = record_evaluations if record_evaluations is not None else threading.Event()
        self.state = TrainerState.STARTING
        self.threads = threads
        torch.set_num_threads(threads)
        self.device = resolve_device(config.device)
        if self.device.type != "cpu":
            raise ValueError("the population trainer runs on the CPU only for now")
        self.clock = TrainingClock()
        self.step = 0
        self.updates = 0
        self._pending: list[Any] = []
        self.lr_decay = LinearDecay.over(config.total_steps)
        self.sigma = SigmaSchedule(config.noise_sigma, config.noise_final_sigma, config.noise_decay_steps)
        self.members = [self._member(config.replace(seed=seed), run_dirs[k] if run_dirs else None)
                        for k, seed in enumerate(seeds)]
        spec = self.members[0].spec
        self.spec = spec
        self.pool = PopulationBuffer(seeds, config.buffer_size, spec.obs_dim, spec.act_dim)
        for member, view in zip(self.members, self.pool.members, strict=True):
            member.buffer = view
        self.agent = PopulationAgent([m.agent for m in self.members])
        self.resumed = False
        self.resume_notes: list[str] = []

    @classmethod
    def resume(cls, run_dirs: list[Path], total_steps: int | None = None, sink: MemberSink | None = None,
               threads: int = 1, controls: Controls | None = None, env_id: str | None = None,
               record_evaluations: threading.Event | None = None) -> PopulationTrainer:
        """The population whose members' folders are `run_dirs`, where their latest checkpoints left it.

        The members must share one config but the seed and have been saved at the same step (a
        population saves them together); raises CheckpointError otherwise. `env_id`, as a Trainer's,
        replaces the checkpoints' env id (one the caller trusts, such as a sweep's own).
        """
        saved = []
        for run_dir in run_dirs:
            path = run_dir / "checkpoints" / "latest.pt"
            payload = load_checkpoint(path)
            require_keys(payload, path, FOR_RESUME)
            saved.append((path, payload, resumed_config(payload, path, total_steps, env_id)))
        first_path, _, config = saved[0]
        for path, _payload, other in saved[1:]:
            if other.replace(seed=config.seed) != config:
                raise CheckpointError(f"{path} was trained with another config than {first_path}; "
                                      "the members of a population share one")
        steps = sorted({int(payload["counters"]["step"]) for _, payload, _ in saved})
        if len(steps) > 1:
            raise CheckpointError(f"the members were saved at different steps ({', '.join(f'{s:,}' for s in steps)}); "
                                  "resume them one at a time with --resume RUN_DIR/seed-K")
        population = cls(config, [other.seed for _, _, other in saved], run_dirs, sink, threads, controls,
                         record_evaluations)
        population._restore([(path, payload) for path, payload, _ in saved])
        return population

    def _restore(self, saved: list[tuple[Path, dict[str, Any]]]) -> None:
        notes: list[str] = []
        for member, (path, payload) in zip(self.members, saved, strict=True):
            for note in restore(cast("Trainer", member), payload, path):
                if note not in notes:  # the members share their step and config, so mostly their notes too
                    notes.append(note)
        first = self.members[0]
        self.step, self.updates, self.lr_decay = first.step, first.updates, first.lr_decay
        # Stacked again from the restored members: weights at construction, then Adam's moments.
        self.agent = PopulationAgent([m.agent for m in self.members])
        self.agent.load_optimizers_from_members()
        self.resumed, self.resume_notes = True, notes

    def _member(self, config: DDPGConfig, run_dir: Path | None) -> Member:
        # The order of a Trainer's __init__: the global torch seed just before the networks.
        lock = RunLock(run_dir).acquire() if run_dir is not None else None
        torch.manual_seed(config.seed)
        env = make_env(config.env_id, seed=config.seed)
        eval_env = make_env(config.env_id)
        spec = env_spec(env, config.env_id)
        agent = DDPGAgent(spec, config, self.device)
        noise_rng = np.random.default_rng(config.seed + 3)
        return Member(config=config, env=env, eval_env=eval_env, agent=agent,
                      buffer=cast(ReplayBuffer, None),  # set to its view of the shared buffer
                      action_rng=np.random.default_rng(config.seed + 2), noise_rng=noise_rng,
                      noise=make_noise(config.noise, spec.act_dim, noise_rng, config.ou_theta), spec=spec,
                      clock=self.clock, lr_decay=self.lr_decay,
                      files=RunFiles(run_dir) if run_dir is not None else None, lock=lock,
                      learning_from=config.learning_starts)

    # Running --------------------------------------------------------------------------

    def run(self) -> PopulationOutcome:
        """Train every member until total_steps or a stop; never raises for errors inside training."""
        error = ""
        try:
            for k, member in enumerate(self.members):
                if member.files is not None:
                    new: dict[str, Any] = {}
                    old: dict[str, Any] = {}
                    if self.resumed:
                        member.files.drop_metrics_after(self.step)  # rows the checkpoint never saw
                        new, old = member.files.resume_changes(member.config)  # --steps or --env at resume
                    member.files.create(member.config, resumed=self.resumed)
                    if new:  # as Trainer._prepare_run_dir: the record's effective config stays the checkpoint's
                        self._emit(k, ConfigChanged(self.step, new, old, "resume"))
                    if member.config.tensorboard:
                        self._open_tensorboard(k, member)
            for note in self.resume_notes:
                self._emit_all(lambda m, note=note: Notice(self.step, note))
            self._set_state(self._running_state())
            self._loop()
            self._flush_update_stats()
            if self.controls.stop_requested:
                if self.controls.save_on_stop:
                    self._save_all("interrupted")
                self._set_state(TrainerState.STOPPED)
            else:
                if any(m.last_eval is None or m.last_eval.step != self.step for m in self.members):
                    self._evaluate()
                self._save_all("final")
                self._set_state(TrainerState.FINISHED)
        except DivergenceError as exc:
            error = str(exc)
            self._emit_all(lambda m: TrainingError(self.step, error))
            self._set_state(TrainerState.ERROR, error)
        except Exception as exc:  # a front-end must see it, not lose its worker
            import traceback

            error = f"{type(exc).__name__}: {exc}"
            self._emit_all(lambda m: TrainingError(self.step, error, traceback.format_exc()))
            self._set_state(TrainerState.ERROR, error)
        finally:
            for command in self.controls.close():
                if command.name != "stop":
                    self._emit_all(lambda m, c=command: Notice(self.step, self._late_answer(c), level="info"))
            self._emit_progress()
            for member in self.members:
                if member.files is not None:
                    member.files.close()
                if member.tensorboard is not None:
                    member.tensorboard.close()
                    member.tensorboard = None
                if member.lock is not None:
                    member.lock.release()
                member.env.close()
                member.eval_env.close()
        return PopulationOutcome(self.state, self.step, self.config.total_steps, [m.last_eval for m in self.members],
                                 [m.files.run_dir if m.files else None for m in self.members], error)

    def _late_answer(self, command: Command) -> str:
        ended = f"training had already {self.state.value}"
        if command.name == "set" and command.changes:
            return f"set {', '.join(command.changes)}: not applied, {ended}"
        return f"{command.name.replace('_', ' ')}: not done, {ended}"

    def _set_state(self, state: TrainerState, message: str = "") -> None:
        self.state = state
        self._emit_all(lambda m: StateChanged(self.step, state, message))

    # Commands: the Trainer's, applied to every member between two steps ------------------

    def _handle_commands(self) -> None:
        apply_commands(self.controls, CommandHandlers(
            pause=self._pause, resume=lambda: self._set_state(self._running_state()),
            evaluate=self._evaluate_requested, save=self._save_requested, other=self._other_command))

    def _pause(self) -> None:
        self._flush_update_stats()
        self._emit_progress()
        self._set_state(TrainerState.PAUSED)

    def _evaluate_requested(self, paused: bool) -> None:
        self._evaluate()  # it returns to PAUSED itself if it was paused

    def _save_requested(self) -> None:
        self._flush_update_stats()
        self._save_all("requested")

    def _other_command(self, command: Command) -> None:
        if command.name == "set" and command.changes:
            self._apply_changes(command.changes, command.source)

    def _apply_changes(self, changes: dict[str, Any], source: str) -> None:
        """Trainer._apply_changes for every member at once: they share one config but the seed, and one
        stacked agent, so each member's run is its standalone run with the same change at the same step."""
        old = self.config
        self.config = cfg = old.replace(**changes)
        self.lr_decay = self.lr_decay.after_change(self.step, old.lr_schedule == "linear",
                                                   cfg.lr_schedule == "linear", cfg.total_steps)
        self.agent.set_learning_rates(cfg.actor_lr, cfg.critic_lr)  # a linear schedule rescales them
        self.agent.apply_live_config(cfg)
        self.sigma = SigmaSchedule(cfg.noise_sigma, cfg.noise_final_sigma, cfg.noise_decay_steps)
        for member in self.members:
            member.config = member.config.replace(**changes)
            member.lr_decay = self.lr_decay
            if {"noise", "ou_theta"} & changes.keys():
                member.noise = make_noise(cfg.noise, self.spec.act_dim, member.noise_rng, cfg.ou_theta)
        before = {name: getattr(old, name) for name in changes}
        self._emit_all(lambda m: ConfigChanged(self.step, dict(changes), before, source))
        self._emit_progress()

    def _open_tensorboard(self, k: int, member: Member) -> None:
        assert member.files is not None
        try:
            # The members share the stacked optimizers, so they share the learning rates too.
            member.tensorboard = TensorBoardLog.open(member.files.run_dir, agent_rates(self.agent),
                                                     self.step if self.resumed else None)
        except ImportError:
            self._emit(k, Notice(self.step, NO_TENSORBOARDX))

    def _loop(self) -> None:
        cfg, clock, controls = self.config, self.clock, self.controls
        self._window_start = (0, 0.0)
        clock.start()
        while self.step < cfg.total_steps:
            if controls.pending():
                with clock.excluded():
                    self._handle_commands()
                if controls.stop_requested:
                    break
                cfg = self.config  # a live change replaced it
                continue  # as Trainer._loop: total_steps may have changed
            self._env_step()
            if self.step > self.members[0].learning_from and self.step % cfg.train_freq == 0:
                if cfg.lr_schedule == "linear":
                    fraction = self.lr_decay(self.step)
                    self.agent.set_learning_rates(cfg.actor_lr * fraction, cfg.critic_lr * fraction)
                for _ in range(cfg.gradient_steps):
                    self._pending.append(self.agent.update(self.pool.sample(cfg.batch_size)))
                    self.updates += 1
            learning_from = self.members[0].learning_from
            if self.step % STATS_EVERY == 0 or self.step == learning_from:
                with clock.excluded():
                    self._flush_update_stats()
                    self._emit_progress()
                    if self.step == learning_from:
                        self._set_state(TrainerState.TRAINING)
            if cfg.eval_every and self.step % cfg.eval_every == 0:
                with clock.excluded():
                    self._evaluate()
            self._periodic_saves()
        clock.stop()

    def _env_step(self) -> None:
        members, cfg, spec = self.members, self.config, self.spec
        for member in members:
            if member.obs is None:
                self._start_episode(member)
        obs = np.stack([m.obs.reshape(-1) for m in members])  # type: ignore[union-attr]
        if self.step < cfg.learning_starts:
            actions = np.stack([m.action_rng.uniform(spec.action_low, spec.action_high).astype(np.float32)
                                for m in members])
        else:
            mu = self.agent.act(torch.from_numpy(obs)).numpy()
            sigma = self.sigma(self.step)
            actions = np.stack([add_exploration_noise(np.clip(mu[k], spec.action_low, spec.action_high),
                                                      m.noise(), sigma, spec.action_low, spec.action_high)
                                for k, m in enumerate(members)])
        next_obs = np.empty_like(obs)
        rewards = np.empty(len(members), dtype=np.float64)
        terminated = np.zeros(len(members), dtype=bool)
        self.step += 1
        for k, member in enumerate(members):
            o, r, term, trunc, _ = member.env.step(actions[k].reshape(member.env.action_space.shape))
            next_obs[k], rewards[k], terminated[k] = o.reshape(-1), r, term
            member.step = self.step
            member.episode_return += float(r)
            member.episode_length += 1
            if term or trunc:
                member.episode += 1
                self._emit(k, EpisodeEnd(self.step, member.episode, member.episode_return, member.episode_length))
                member.obs = None
            else:
                member.obs = o
        # Stored exactly as Trainer._env_step stores it: `terminated` as done, the true next obs.
        self.pool.add(obs, actions, rewards, next_obs, terminated)

    def _start_episode(self, member: Member) -> None:
        member.obs, _ = member.env.reset(seed=None if member.env_seeded else member.config.seed)
        member.env_seeded = True
        member.noise.reset()
        member.episode_return, member.episode_length = 0.0, 0

    # Evaluation: every member's episode i in lockstep, one batched forward per step ----------

    def _evaluate(self) -> None:
        self._flush_update_stats()
        previous = self.state
        self._set_state(TrainerState.EVALUATING)
        episodes = self.config.eval_episodes
        returns = np.zeros((len(self.members), episodes))
        lengths = np.zeros((len(self.members), episodes), dtype=np.int64)
        # As Trainer._evaluate: a watcher asked to see the agent, so keep the first episode's actions.
        tracers = [EpisodeTracer() for _ in self.members] if self.record_evaluations.is_set() else None
        for i in range(episodes):
            returns[:, i], lengths[:, i] = self._evaluation_episode(i, tracers if i == 0 else None)
        for k, member in enumerate(self.members):
            mean, std = float(np.mean(returns[k])), float(np.std(returns[k]))
            is_best = member.best_eval is None or mean > member.best_eval.mean
            event = EvalResult(self.step, mean, std, tuple(float(r) for r in returns[k]), best=is_best,
                               lengths=tuple(int(n) for n in lengths[k]))
            member.last_eval = event
            if is_best:
                member.best_eval = event
            self._emit(k, event)
            if tracers is not None:
                fps = float(member.eval_env.metadata.get("render_fps") or 0.0)
                self._emit(k, tracers[k].recording(self.step, member.config.env_id,
                                                   evaluation_seed(member.config.seed), fps))
            if is_best:
                self._save(k, "best")
        # Back to where it was, as Trainer._evaluate: an evaluation asked for while paused passing through
        # "training" on its way back would record a second pause, and the dashboard's p would flicker.
        self._set_state(previous if previous not in (TrainerState.EVALUATING, TrainerState.STARTING)
                        else self._running_state())

    def _evaluation_episode(self, episode: int, tracers: list[EpisodeTracer] | None = None
                            ) -> tuple[np.ndarray, np.ndarray]:
        """agents.evaluation.evaluate's episode `episode` for every member, seeded as its own run's:
        each member's return and length; `tracers[k]` gets member k's actions and rewards."""
        members = self.members
        low, high = members[0].eval_env.action_space.low, members[0].eval_env.action_space.high
        obs = [m.eval_env.reset(seed=evaluation_seed(m.config.seed) + episode)[0] for m in members]
        totals = np.zeros(len(members))
        steps = np.zeros(len(members), dtype=np.int64)
        active = [True] * len(members)
        while any(active):
            mu = self.agent.act(torch.from_numpy(np.stack([o.reshape(-1) for o in obs]).astype(np.float32)))
            mu = mu.numpy()
            for k, member in enumerate(members):
                if not active[k]:
                    continue
                action = np.clip(np.clip(mu[k], self.spec.action_low, self.spec.action_high)
                                 .astype(member.eval_env.action_space.dtype).reshape(low.shape), low, high)
                obs[k], reward, terminated, truncated, _ = member.eval_env.step(action)
                if tracers is not None:
                    tracers[k](0, action, float(reward))
                totals[k] += float(reward)
                steps[k] += 1
                active[k] = not (terminated or truncated)
        return totals, steps

    # Saving: each member's checkpoints as a standalone run writes them --------------------

    def _periodic_saves(self) -> None:
        cfg = self.config
        for k, member in enumerate(self.members):
            if cfg.save_every and self.step % cfg.save_every == 0 and member.periodic_save_due is None:
                member.periodic_save_due = self.step
            due = member.periodic_save_due
            if due is not None and self.step < cfg.total_steps and (
                    member.obs is None or self.step - due >= cfg.save_every):
                with self.clock.excluded():
                    self._save(k, "periodic")

    def _save_all(self, reason: str) -> None:
        for k in range(len(self.members)):
            self._save(k, reason)

    def _save(self, k: int, reason: str) -> None:
        member = self.members[k]
        if reason != "best":
            member.periodic_save_due = None
        if member.files is None:
            return
        self.agent.sync_to_members([k])
        member.updates = self.updates
        self._check_finite(member)
        save_id = new_save_id()
        view = cast("Trainer", member)  # build_payload reads a Trainer's attributes; a Member has them
        try:
            if reason == "best":
                path = save_checkpoint(member.files.best, build_payload(view, save_id))
            else:  # the buffer first, as Trainer._save does: the pair then shares a save_id or is rejected
                save_checkpoint(member.files.buffer, buffer_payload(view, save_id))
                path = save_checkpoint(member.files.latest, build_payload(view, save_id))
                member.last_checkpoint = path
            member.files.write_effective(member.config)
        except OSError as error:
            self._emit(k, Notice(self.step, f"could not save to {member.files.checkpoint_dir}: "
                                            f"{error.strerror or error}; training goes on"))
            return
        self._emit(k, Saved(self.step, path, reason, save_id))

    def _check_finite(self, member: Member) -> None:
        agent = member.agent
        for module in (agent.actor, agent.critic, *([agent.critic2] if agent.critic2 is not None else [])):
            if not all(torch.isfinite(p).all() for p in module.parameters()):
                raise DivergenceError(f"seed {member.config.seed} diverged by step {self.step}: non-finite weights")

    # Events -----------------------------------------------------------------------------

    def _running_state(self) -> TrainerState:
        return TrainerState.WARMING_UP if self.step < self.members[0].learning_from else TrainerState.TRAINING

    def _flush_update_stats(self) -> None:
        if not self._pending:
            return
        stats, self._pending = self._pending, []
        # [updates, 3, N] -> the window's mean per member, in one transfer.
        values = torch.stack([torch.stack([s.critic_loss, s.actor_loss, s.mean_q]) for s in stats]).mean(dim=0)
        for k, (critic_loss, actor_loss, mean_q) in enumerate(values.T.tolist()):
            if not all(math.isfinite(v) for v in (critic_loss, actor_loss, mean_q)):
                raise DivergenceError(f"seed {self.seeds[k]} diverged by step {self.step}: non-finite loss")
            self._emit(k, UpdateStats(self.step, self.updates, critic_loss, actor_loss, mean_q))

    def _emit_progress(self) -> None:
        start_step, start_elapsed = getattr(self, "_window_start", (0, 0.0))
        window = self.clock.elapsed - start_elapsed
        sps = (self.step - start_step) / window if window > 0 else 0.0
        self._window_start = (self.step, self.clock.elapsed)
        for k, member in enumerate(self.members):
            self._emit(k, StepStats(self.step, self.config.total_steps, member.episode, sps, len(self.pool),
                                    self.pool.capacity, self.sigma(self.step), self.clock.elapsed, self.updates))

    def _emit_all(self, make: Callable[[Member], Event]) -> None:
        for k, member in enumerate(self.members):
            self._emit(k, make(member))

    def _emit(self, k: int, event: Event) -> None:
        member = self.members[k]
        if member.files is not None:
            member.files.record(event)
        if member.tensorboard is not None:
            member.tensorboard.record(event)
        self.sink(k, event)
