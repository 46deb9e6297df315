"""Making environments: Box checks and one-line errors that say what to do."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

from agents.envs import EnvError, env_spec, make_env


class AsymmetricEnv(gym.Env):
    observation_space = gym.spaces.Box(-1.0, 1.0, shape=(4,), dtype=np.float32)
    action_space = gym.spaces.Box(np.array([-1.0, 0.0], np.float32), np.array([3.0, 0.5], np.float32))

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return np.zeros(4, np.float32), {}

    def step(self, action):
        return np.zeros(4, np.float32), 0.0, False, False, {}


class UnboundedEnv(AsymmetricEnv):
    action_space = gym.spaces.Box(-np.inf, np.inf, shape=(1,), dtype=np.float32)


gym.register("TestAsymmetric-v0", entry_point=AsymmetricEnv)
gym.register("TestUnbounded-v0", entry_point=UnboundedEnv)


def test_spec_reads_dims_and_asymmetric_bounds() -> None:
    env = make_env("TestAsymmetric-v0")
    spec = env_spec(env, "TestAsymmetric-v0")
    assert (spec.obs_dim, spec.act_dim) == (4, 2)
    np.testing.assert_array_equal(spec.action_low, [-1.0, 0.0])
    np.testing.assert_array_equal(spec.action_high, [3.0, 0.5])


def test_pendulum_is_accepted() -> None:
    spec = env_spec(make_env("Pendulum-v1"), "Pendulum-v1")
    assert (spec.obs_dim, spec.act_dim) == (3, 1)


def test_lunar_lander_continuous_is_accepted() -> None:
    pytest.importorskip("Box2D", reason="LunarLander needs the box2d extra")
    spec = env_spec(make_env("LunarLanderContinuous-v3"), "LunarLanderContinuous-v3")
    assert (spec.obs_dim, spec.act_dim) == (8, 2)


def test_discrete_actions_are_refused_with_examples() -> None:
    with pytest.raises(EnvError, match=r"CartPole-v1 has a Discrete action space.*Pendulum-v1"):
        make_env("CartPole-v1")


def test_unbounded_actions_are_refused() -> None:
    with pytest.raises(EnvError, match="unbounded actions"):
        make_env("TestUnbounded-v0")


def test_unknown_env_is_one_line_with_a_suggestion() -> None:
    with pytest.raises(EnvError) as info:
        make_env("Pendulm-v1")
    assert "unknown environment 'Pendulm-v1'" in str(info.value)
    assert "Pendulum-v1" in str(info.value) and "\n" not in str(info.value)


def test_missing_mujoco_names_our_extra() -> None:
    pytest.importorskip("gymnasium")
    try:
        import mujoco  # noqa: F401
    except ImportError:
        with pytest.raises(EnvError, match=r"pip install 'ddpg-tui\[mujoco\]'"):
            make_env("HalfCheetah-v5")
    else:
        pytest.skip("mujoco is installed here")


def test_missing_box2d_names_our_extra_not_swig(monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(env_id: str, **kwargs: object) -> gym.Env:
        raise gym.error.DependencyNotInstalled('Box2D is not installed, run `pip install "gymnasium[box2d]"`')

    monkeypatch.setattr(gym, "make", fail)
    with pytest.raises(EnvError, match=r"needs the box2d extra: pip install 'ddpg-tui\[box2d\]'"):
        make_env("LunarLanderContinuous-v3")
