"""Deterministic evaluation: the actor's action, no noise, on an env of its own."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

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
    so changes in the score come from the policy and not from luck of the draw.
    """
    returns: list[float] = []
    lengths: list[int] = []
    for i in range(episodes):
        obs, _ = env.reset(seed=seed + i)
        total, length, done = 0.0, 0, False
        while not done:
            obs, reward, terminated, truncated, _ = env.step(policy(obs))
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
    evaluation: Evaluation


def evaluate_checkpoint(path: str, episodes: int, seed: int) -> CheckpointEvaluation:
    """Load the actor from a checkpoint (weights only) and evaluate it on its own env."""
    import torch

    from agents.checkpoint import CheckpointError, load_checkpoint
    from agents.config import ConfigError, DDPGConfig
    from agents.envs import env_spec, make_env
    from agents.networks import Actor

    payload = load_checkpoint(path)
    try:
        config = DDPGConfig.from_mapping(payload["config"])
        env_id, step = str(payload["env_id"]), int(payload["counters"]["step"])
        actor_state = payload["agent"]["actor"]
    except (ConfigError, KeyError, TypeError) as error:
        raise CheckpointError(f"checkpoint {path} is incomplete or corrupt ({error})") from None
    env = make_env(env_id)
    try:
        spec = env_spec(env, env_id)
        if (spec.obs_dim, spec.act_dim) != (payload.get("obs_dim"), payload.get("act_dim")):
            raise CheckpointError(
                f"checkpoint {path} was trained on {env_id} with obs/action dims "
                f"{payload.get('obs_dim')}/{payload.get('act_dim')}, but the env has {spec.obs_dim}/{spec.act_dim}"
            )
        actor = Actor(spec.obs_dim, spec.act_dim, config.hidden_sizes, spec.action_low, spec.action_high)
        try:
            actor.load_state_dict(actor_state)
        except RuntimeError as error:
            first = str(error).strip().splitlines()[0]
            raise CheckpointError(f"checkpoint {path} does not fit its actor network: {first}") from None
        actor.eval()

        @torch.inference_mode()
        def policy(obs: np.ndarray) -> np.ndarray:
            return actor(torch.as_tensor(obs, dtype=torch.float32).reshape(1, -1))[0].numpy()

        result = evaluate(policy, env, episodes, seed)
    finally:
        env.close()
    return CheckpointEvaluation(env_id, step, result)
