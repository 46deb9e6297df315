"""Deterministic evaluation: the actor's action, no noise, on an env of its own."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import gymnasium as gym
import numpy as np


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


def evaluate(
    policy: Callable[[np.ndarray], np.ndarray],
    env: gym.Env,
    episodes: int,
    seed: int,
    should_stop: Callable[[], bool] = lambda: False,
) -> Evaluation:
    """Run `episodes` full episodes; episode i starts from `reset(seed=seed + i)`.

    Re-seeding every episode makes every evaluation in a run face the same start states,
    so changes in the score come from the policy and not from luck of the draw. Actions
    are clipped to the env's own bounds, whatever the policy returns.
    """
    low, high = env.action_space.low, env.action_space.high
    returns: list[float] = []
    lengths: list[int] = []
    for i in range(episodes):
        obs, _ = env.reset(seed=seed + i)
        total, length, done = 0.0, 0, False
        while not done:
            action = np.clip(np.asarray(policy(obs), dtype=env.action_space.dtype).reshape(low.shape), low, high)
            obs, reward, terminated, truncated, _ = env.step(action)
            total += float(reward)
            length += 1
            done = terminated or truncated
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


def evaluate_checkpoint(path: str | Path, episodes: int, seed: int, env_id: str | None = None) -> CheckpointEvaluation:
    """Load the actor from a checkpoint (weights only) and evaluate it.

    The env is the checkpoint's own, if making it imports nothing, or `env_id` given by
    the user; either way it must have the checkpoint's dims and action bounds.
    """
    import torch

    from agents.checkpoint import CheckpointError, load_checkpoint, resolve_checkpoint_path
    from agents.checkpoint_payload import FOR_EVALUATION, check_fits_env, read_config, require_keys
    from agents.envs import env_spec, make_env
    from agents.errors import first_line
    from agents.networks import Actor

    path = resolve_checkpoint_path(Path(path)) if Path(path).is_dir() else Path(path)
    payload = load_checkpoint(path)
    require_keys(payload, path, FOR_EVALUATION)
    config = read_config(payload, path, env_id=env_id)
    step = int(payload["counters"]["step"])
    env = make_env(config.env_id)
    try:
        spec = env_spec(env, config.env_id)
        check_fits_env(payload, path, spec)
        actor = Actor(spec.obs_dim, spec.act_dim, config.hidden_sizes, spec.action_low, spec.action_high)
        try:
            actor.load_state_dict(payload["agent"]["actor"])
        except RuntimeError as error:
            raise CheckpointError(f"checkpoint {path} does not fit its actor network: {first_line(error)}") from None
        actor.eval()

        @torch.inference_mode()
        def policy(obs: np.ndarray) -> np.ndarray:
            return actor(torch.as_tensor(obs, dtype=torch.float32).reshape(1, -1))[0].numpy()

        result = evaluate(policy, env, episodes, seed)
    finally:
        env.close()
    return CheckpointEvaluation(config.env_id, step, path, result)
