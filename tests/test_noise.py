"""Exploration noise: OU mean reversion, sigma schedules, and clipping to the bounds."""

from __future__ import annotations

import numpy as np
import pytest

from agents.noise import GaussianNoise, OUNoise, SigmaSchedule, add_exploration_noise, make_noise


class ZeroRng:
    def standard_normal(self, size: int) -> np.ndarray:
        return np.zeros(size)


def test_ou_reverts_to_zero_at_rate_theta_dt() -> None:
    noise = OUNoise(1, ZeroRng(), theta=0.15, dt=0.01)  # type: ignore[arg-type]
    noise.state = np.array([1.0], np.float32)
    for _ in range(100):
        noise()
    assert noise.state[0] == pytest.approx((1 - 0.15 * 0.01) ** 100, rel=1e-4)


def test_ou_long_run_std_matches_the_stationary_std() -> None:
    theta, dt = 0.15, 0.01
    noise = OUNoise(1, np.random.default_rng(0), theta=theta, dt=dt)
    samples = np.array([noise()[0] for _ in range(200_000)])[20_000:]
    # x' = (1 - θ·dt)·x + √dt·ε has stationary variance dt / (1 - (1 - θ·dt)²) ≈ 1 / (2θ).
    assert samples.std() == pytest.approx(np.sqrt(dt / (1 - (1 - theta * dt) ** 2)), rel=0.15)
    # Consecutive samples are strongly correlated: that is what OU is for.
    assert np.corrcoef(samples[:-1], samples[1:])[0, 1] > 0.99


def test_ou_reset_zeroes_the_state() -> None:
    noise = OUNoise(2, np.random.default_rng(0))
    for _ in range(10):
        noise()
    noise.reset()
    np.testing.assert_array_equal(noise.state, np.zeros(2))


def test_ou_state_dict_round_trip() -> None:
    noise = OUNoise(2, np.random.default_rng(0))
    noise()
    other = OUNoise(2, np.random.default_rng(1))
    other.load_state_dict(noise.state_dict())
    np.testing.assert_array_equal(other.state, noise.state)


def test_gaussian_noise_has_unit_std() -> None:
    noise = GaussianNoise(3, np.random.default_rng(0))
    samples = np.stack([noise() for _ in range(20_000)])
    assert samples.std() == pytest.approx(1.0, rel=0.05)
    assert abs(samples.mean()) < 0.05


def test_make_noise_rejects_unknown_kind() -> None:
    with pytest.raises(ValueError, match="noise"):
        make_noise("pink", 1, np.random.default_rng(0))


def test_constant_sigma_schedule() -> None:
    schedule = SigmaSchedule(0.3, 0.05, decay_steps=0)
    assert schedule(0) == schedule(10**6) == 0.3


def test_linear_sigma_decay() -> None:
    schedule = SigmaSchedule(0.5, 0.1, decay_steps=1000)
    assert schedule(0) == pytest.approx(0.5)
    assert schedule(500) == pytest.approx(0.3)
    assert schedule(1000) == pytest.approx(0.1)
    assert schedule(5000) == pytest.approx(0.1)


def test_noise_is_scaled_by_half_the_action_range() -> None:
    low, high = np.array([-1.0, 0.0], np.float32), np.array([3.0, 0.5], np.float32)
    action = np.array([1.0, 0.25], np.float32)
    noisy = add_exploration_noise(action, np.array([0.1, 0.1], np.float32), sigma=0.5, low=low, high=high)
    np.testing.assert_allclose(noisy, action + 0.5 * np.array([2.0, 0.25]) * 0.1, rtol=1e-6)


def test_noise_never_pushes_actions_past_asymmetric_bounds() -> None:
    low, high = np.array([-1.0, 0.0], np.float32), np.array([3.0, 0.5], np.float32)
    rng = np.random.default_rng(0)
    for _ in range(1000):
        action = rng.uniform(low, high).astype(np.float32)
        noisy = add_exploration_noise(action, rng.normal(scale=100, size=2).astype(np.float32), 2.0, low, high)
        assert np.all(noisy >= low) and np.all(noisy <= high)
    assert add_exploration_noise(np.array([2.9, 0.4], np.float32), np.array([1e3, -1e3], np.float32),
                                 1.0, low, high).tolist() == [3.0, 0.0]
