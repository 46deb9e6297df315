"""Deterministic evaluation: the actor's action, no noise, on an env of its own."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from agents.config import FIELDS, DDPGConfig
from agents.events import EvalRecording


@dataclass(frozen=True, slots=True)
class Evaluation:
    returns: tuple[float, ...]
    lengths: tuple[int, ...]

    @property
    def mean(self) -> float:
        return float(np.mean(self.returns))

    @property
    def std(self) -> float:
        return float(np.std(self.returns))


MAX_RUN_SEED = int(FIELDS["seed"].maximum or 0)
TRAINING_SEEDS_PER_RUN = 5  # a run seeds its env, buffer, noises and TD3 noise with seed + 0..4
EVAL_BASE = 2**32  # above every training seed: MAX_RUN_SEED + 4 < 2**31 + 4
EPISODE_STRIDE = int(FIELDS["eval_episodes"].maximum or 0)  # room for the longest evaluation allowed
REEVAL_SEED = EVAL_BASE + EPISODE_STRIDE * (MAX_RUN_SEED + 1)  # above every run's evaluation seeds


def evaluation_seed(run_seed: int, episode: int = 0) -> int:
    """The env seed of episode `episode` of every in-run evaluation of a run seeded `run_seed`.

    Episode i of seed s starts from reset(seed=2**32 + 1000*s + i). Each seed owns a block
    of 1000 (EPISODE_STRIDE, the most eval_episodes allowed), so no two seeds of a study
    share an evaluation episode; every block lies above 2**32 and so apart from the seeds a
    run trains with (s to s + 4, s < 2**31); and the re-evaluation episodes of
    `sweep --reeval` (REEVAL_SEED + i) start above the last block, so they are fresh for
    every seed and any number of episodes. `eval` and `watch` default to these episodes.
    """
    if not (0 <= run_seed <= MAX_RUN_SEED and 0 <= episode < EPISODE_STRIDE):
        raise ValueError(f"evaluation_seed({run_seed}, {episode}): expected 0 <= seed <= {MAX_RUN_SEED} "
                         f"and 0 <= episode < {EPISODE_STRIDE}")
    return EVAL_BASE + EPISODE_STRIDE * run_seed + episode

FrameSink = Callable[[int, int, np.ndarray], None]
"""(episode, step, frame): a frame of an env made with render_mode="rgb_array"; step 0 is the reset state."""
StepSink = Callable[[int, np.ndarray, float], None]
"""(episode, action, reward): the action exactly as given to env.step, and what it earned."""


@dataclass
class EpisodeTracer:
    """A step sink for `evaluate`: keeps the first episode's actions (as given to env.step)
    and rewards, which is all a replay needs besides the env id and the seed. The learner records
    no pictures: `ddpg_tui.media.replay` redraws the episode from these, elsewhere."""

    actions: list[tuple[float, ...]] = field(default_factory=list)
    rewards: list[float] = field(default_factory=list)

    def __call__(self, episode: int, action: np.ndarray, reward: float) -> None:
        if episode == 0:
            self.actions.append(tuple(float(a) for a in np.ravel(action)))
            self.rewards.append(float(reward))

    def recording(self, step: int, env_id: str, seed: int, render_fps: float) -> EvalRecording:
        return EvalRecording(step, env_id, seed, tuple(self.actions), tuple(self.rewards), float(render_fps or 0.0))


def evaluate(
    policy: Callable[[np.ndarray], np.ndarray],
    env: gym.Env,
    episodes: int,
    seed: int,
    should_stop: Callable[[], bool] = lambda: False,
    *,
    frame_sink: FrameSink | None = None,
    frame_every: int = 1,
    step_sink: StepSink | None = None,
) -> Evaluation:
    """Run `episodes` full episodes; episode i starts from `reset(seed=seed + i)`.

    Re-seeding every episode makes every evaluation in a run face the same start states,
    so changes in the score come from the policy and not from luck of the draw. Actions
    are clipped to the env's own bounds, whatever the policy returns.

    `frame_sink` gets the reset frame and every `frame_every`-th step's frame (only the
    frames it gets are drawn: drawing costs far more than stepping). `step_sink` sees
    every step, which is what a replay needs.
    """
    low, high = env.action_space.low, env.action_space.high
    returns: list[float] = []
    lengths: list[int] = []
    for i in range(episodes):
        obs, _ = env.reset(seed=seed + i)
        if frame_sink is not None:
            frame_sink(i, 0, env.render())
        total, length, done = 0.0, 0, False
        while not done:
            action = np.clip(np.asarray(policy(obs), dtype=env.action_space.dtype).reshape(low.shape), low, high)
            obs, reward, terminated, truncated, _ = env.step(action)
            total += float(reward)
            length += 1
            done = terminated or truncated
            if step_sink is not None:
                step_sink(i, action, float(reward))
            if frame_sink is not None and length % frame_every == 0:
                frame_sink(i, length, env.render())
        returns.append(total)
        lengths.append(length)
        if should_stop():
            break
    return Evaluation(tuple(returns), tuple(lengths))


@dataclass(frozen=True, slots=True)
class CheckpointEvaluation:
    env_id: str
    step: int
    path: Path  # the .pt file that was loaded (a run folder resolves to its latest.pt)
    evaluation: Evaluation
    seed: int = 0  # the env seed of the first episode; episode i used seed + i


@dataclass(frozen=True, slots=True)
class CheckpointPolicy:
    """A checkpoint's actor, noise off, and the env it was checked against (close it when done)."""

    env_id: str
    step: int
    path: Path
    env: gym.Env
    policy: Callable[[np.ndarray], np.ndarray]
    run_seed: int = 0  # the seed of the run that wrote the checkpoint (its config's)
    run_eval_episodes: int = 10  # and the episodes of each of its in-run evaluations

    def first_seed(self, seed: int | None) -> int:
        """`seed`, or by default the first episode of the run's own in-run evaluations."""
        return evaluation_seed(self.run_seed) if seed is None else seed


@dataclass(frozen=True, slots=True)
class LoadedActor:
    """A checkpoint's actor (in eval mode), checked against an env of the checkpoint's dims and bounds."""

    actor: Any  # agents.networks.Actor (torch is imported only when a checkpoint is read)
    config: DDPGConfig
    env: gym.Env  # open: the caller closes it
    payload: dict[str, Any]


def load_actor(path: Path, env_id: str | None = None,
               make_env_fn: Callable[[str], gym.Env] | None = None) -> LoadedActor:
    """The checkpoint at `path` (a file) read with weights only, its env made and checked, its actor built.

    The env is the checkpoint's own, if making it imports nothing, or `env_id` given by the user.
    """
    from agents.checkpoint import CheckpointError, load_checkpoint
    from agents.checkpoint_payload import FOR_EVALUATION, check_fits_env, read_config, require_keys
    from agents.envs import env_spec, make_env
    from agents.errors import first_line
    from agents.networks import Actor

    payload = load_checkpoint(path)
    require_keys(payload, path, FOR_EVALUATION)
    config = read_config(payload, path, env_id=env_id)
    env = (make_env_fn or make_env)(config.env_id)
    try:
        spec = env_spec(env, config.env_id)
        check_fits_env(payload, path, spec)
        actor = Actor(spec.obs_dim, spec.act_dim, config.hidden_sizes, spec.action_low, spec.action_high)
        try:
            actor.load_state_dict(payload["agent"]["actor"])
        except RuntimeError as error:
            raise CheckpointError(f"checkpoint {path} does not fit its actor network: {first_line(error)}") from None
    except BaseException:
        env.close()
        raise
    return LoadedActor(actor.eval(), config, env, payload)


def load_checkpoint_policy(path: str | Path, env_id: str | None = None,
                           make_env_fn: Callable[[str], gym.Env] | None = None) -> CheckpointPolicy:
    """Load the actor from a checkpoint (weights only) with an env to run it on.

    The env is the checkpoint's own, if making it imports nothing, or `env_id` given by
    the user; either way it must have the checkpoint's dims and action bounds. The env is made by
    `make_env_fn(env_id)` if given (a front-end's env that draws frames: `ddpg_tui.media.render.make_render_env`),
    else by `make_env`: the learner does not know how pictures are made.
    """
    import torch

    from agents.checkpoint import resolve_checkpoint_path

    path = resolve_checkpoint_path(Path(path)) if Path(path).is_dir() else Path(path)
    loaded = load_actor(path, env_id, make_env_fn)
    actor, config, env = loaded.actor, loaded.config, loaded.env
    step = int(loaded.payload["counters"]["step"])

    @torch.inference_mode()
    def policy(obs: np.ndarray) -> np.ndarray:
        return actor(torch.as_tensor(obs, dtype=torch.float32).reshape(1, -1))[0].numpy()

    return CheckpointPolicy(config.env_id, step, path, env, policy, config.seed, config.eval_episodes)


def evaluate_checkpoint(path: str | Path, episodes: int | None, seed: int | None,
                        env_id: str | None = None) -> CheckpointEvaluation:
    """Load the actor from a checkpoint (weights only) and evaluate it.

    With `seed` and `episodes` None they are the run's in-run evaluation's, so that the mean
    is the one the dashboard showed for this checkpoint.
    """
    loaded = load_checkpoint_policy(path, env_id)
    first = loaded.first_seed(seed)
    try:
        result = evaluate(loaded.policy, loaded.env, loaded.run_eval_episodes if episodes is None else episodes,
                          first)
    finally:
        loaded.env.close()
    return CheckpointEvaluation(loaded.env_id, loaded.step, loaded.path, result, first)
