"""A rigged env for the sweep tests: a one-step bandit that pays the action, so which config is worse is certain.

The sweep's trials import it by its env id `test_sweep_rigged_env:RiggedBandit-v0` (Ray workers get this folder
on their PYTHONPATH from the test's `runtime_env`). With any learning at all, DDPG's deterministic policy moves
to the top of the action range and the evaluation return goes to +1; with a frozen actor it stays at its
initial output, near 0.

Evaluations also pay a bonus that depends on the run's seed (read back from the evaluation episode's reset seed,
`agents.evaluation.evaluation_seed`): seed 1 is lucky (+1.5) and seed 2 unlucky (-1.5). So seeds do not tie:
a good config scores about 1, 2.5 and -0.5, a frozen one about 0, 1.5 and -1.5. Judged seed by seed, the
frozen config's lucky seed beats two of the good config's; judged by the median over seeds, the good config
wins (about 1 against about 0).
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np

from agents.evaluation import EPISODE_STRIDE, EVAL_BASE

ENV_ID = "test_sweep_rigged_env:RiggedBandit-v0"
SEED_BONUS = {1: 1.5, 2: -1.5}


def run_seed(reset_seed: int | None) -> int | None:
    """The run seed whose in-run evaluation episode starts from `reset_seed`; None for a training reset."""
    if reset_seed is None or reset_seed < EVAL_BASE:
        return None
    return (reset_seed - EVAL_BASE) // EPISODE_STRIDE


class RiggedBandit(gym.Env):
    observation_space = gym.spaces.Box(-1.0, 1.0, shape=(1,), dtype=np.float32)
    action_space = gym.spaces.Box(-1.0, 1.0, shape=(1,), dtype=np.float32)
    bonus = 0.0

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        if seed is not None:
            self.bonus = SEED_BONUS.get(run_seed(seed), 0.0)
        return np.ones(1, np.float32), {}

    def step(self, action):
        return np.ones(1, np.float32), float(np.clip(action, -1.0, 1.0)[0]) + self.bonus, True, False, {}


if "RiggedBandit-v0" not in gym.registry:
    gym.register("RiggedBandit-v0", entry_point=RiggedBandit, max_episode_steps=1)


def test_the_rigged_bandit_pays_the_action_and_its_evaluations_a_bonus_by_seed() -> None:
    from agents.evaluation import evaluation_seed

    env = gym.make("RiggedBandit-v0")
    env.reset(seed=0)
    assert env.step(np.array([0.23], np.float32))[1:3] == (np.float32(0.23).item(), True)
    for seed, bonus in ((0, 0.0), (1, 1.5), (2, -1.5)):
        env.reset(seed=evaluation_seed(seed, 3))
        assert env.step(np.array([0.5], np.float32))[1] == 0.5 + bonus
