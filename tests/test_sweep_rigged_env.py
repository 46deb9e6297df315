"""A rigged env for the sweep tests: a one-step bandit that pays the action, so which config is worse is certain.

The sweep's trials import it by its env id `test_sweep_rigged_env:RiggedBandit-v0` (Ray workers get this folder
on their PYTHONPATH from the test's `runtime_env`). With any learning at all, DDPG's deterministic policy moves
to the top of the action range and the evaluation return goes to +1; with a frozen actor it stays at its
initial output, near 0. The reward is rounded to 0.1, so that every learning seed scores exactly 1.0: ASHA
compares with a strict `<`, and two good seeds must never look different.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np

ENV_ID = "test_sweep_rigged_env:RiggedBandit-v0"


class RiggedBandit(gym.Env):
    observation_space = gym.spaces.Box(-1.0, 1.0, shape=(1,), dtype=np.float32)
    action_space = gym.spaces.Box(-1.0, 1.0, shape=(1,), dtype=np.float32)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return np.ones(1, np.float32), {}

    def step(self, action):
        return np.ones(1, np.float32), round(float(np.clip(action, -1.0, 1.0)[0]), 1), True, False, {}


if "RiggedBandit-v0" not in gym.registry:
    gym.register("RiggedBandit-v0", entry_point=RiggedBandit, max_episode_steps=1)


def test_the_rigged_bandit_pays_the_action() -> None:
    env = gym.make("RiggedBandit-v0")
    env.reset(seed=0)
    _, reward, terminated, _, _ = env.step(np.array([0.23], np.float32))
    assert (reward, terminated) == (0.2, True)
