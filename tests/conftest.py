"""Shared fixtures: tiny configs and envs whose episodes end in known ways."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

from agents.config import DDPGConfig


class CounterEnv(gym.Env):
    """Observation = [steps taken, 0]; terminates after `terminate_at` steps if set.

    With gym's TimeLimit (max_episode_steps) it truncates instead, so a test can tell
    which final observation and which done flag the trainer stored.
    """

    observation_space = gym.spaces.Box(-1e6, 1e6, shape=(2,), dtype=np.float32)
    action_space = gym.spaces.Box(-1.0, 1.0, shape=(1,), dtype=np.float32)

    def __init__(self, terminate_at: int | None = None) -> None:
        self.terminate_at = terminate_at
        self.t = 0

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return np.array([0.0, 0.0], np.float32), {}

    def step(self, action):
        self.t += 1
        terminated = self.terminate_at is not None and self.t >= self.terminate_at
        return np.array([self.t, 0.0], np.float32), 1.0, terminated, False, {}


# Files whose tests start real ddpg-tui processes, ptys or Ray: `pytest -m "not slow"` leaves them out
# (the quick subset in the README); single tests elsewhere carry @pytest.mark.slow themselves.
SLOW_FILES = {"test_sweep_ray.py", "test_hangup.py", "test_app_pty.py", "test_signals.py", "test_sweep_trust.py",
              "test_cli.py", "test_app_startup.py", "test_env_trust.py",
              "test_sweep_cluster_nodes.py", "test_sweep_tpe.py", "test_sweep_population_ray.py",
              "test_serve_browser.py", "test_served_app.py", "test_detach.py", "test_population_hangup.py"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.path.name in SLOW_FILES:
            item.add_marker(pytest.mark.slow)


gym.register("TestTruncating-v0", entry_point=CounterEnv, max_episode_steps=5)
gym.register("TestTerminating-v0", entry_point=CounterEnv, kwargs={"terminate_at": 3}, max_episode_steps=100)


@pytest.fixture
def tiny_config() -> DDPGConfig:
    """Pendulum with nets and batches small enough for a test to train in seconds."""
    return DDPGConfig(env_id="Pendulum-v1", total_steps=400, learning_starts=100, batch_size=32,
                      hidden_sizes=(16, 16), eval_every=0, eval_episodes=1, buffer_size=10_000,
                      threads=1, device="cpu")
