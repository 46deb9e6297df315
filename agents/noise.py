"""Exploration noise: unit-scale processes, a sigma schedule, and the rule that adds
them to the actor's action.

The processes produce unit-scale samples; `sigma` multiplies them outside the process.
That keeps an Ornstein-Uhlenbeck state meaningful when sigma changes (by schedule or
by the user mid-run) and expresses sigma relative to the action range, so that one
value means the same on every env.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np


class GaussianNoise:
    """Independent N(0, 1) samples per step."""

    kind = "gaussian"

    def __init__(self, act_dim: int, rng: np.random.Generator) -> None:
        self.act_dim = act_dim
        self.rng = rng

    def __call__(self) -> np.ndarray:
        return self.rng.standard_normal(self.act_dim).astype(np.float32)

    def reset(self) -> None:
        pass

    def state_dict(self) -> dict[str, Any]:
        return {"kind": self.kind}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        pass


class OUNoise:
    """Ornstein-Uhlenbeck process x ← x − θ·x·dt + √dt·ε, reset at each episode.

    With dt = 0.01 and θ = 0.15 (the DDPG paper's θ, Stable-Baselines3's dt), a given
    sigma means the same as `OrnsteinUhlenbeckActionNoise(sigma=…)` there, so tuned
    values such as rl-zoo's transfer.
    """

    kind = "ou"

    def __init__(self, act_dim: int, rng: np.random.Generator, theta: float = 0.15, dt: float = 1e-2) -> None:
        self.act_dim = act_dim
        self.rng = rng
        self.theta = theta
        self.dt = dt
        self.state = np.zeros(act_dim, dtype=np.float32)

    def __call__(self) -> np.ndarray:
        self.state = (
            self.state
            - self.theta * self.state * self.dt
            + np.sqrt(self.dt) * self.rng.standard_normal(self.act_dim)
        ).astype(np.float32)
        return self.state

    def reset(self) -> None:
        self.state = np.zeros(self.act_dim, dtype=np.float32)

    def state_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "state": self.state.tolist()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.state = np.asarray(state["state"], dtype=np.float32)


def make_noise(kind: str, act_dim: int, rng: np.random.Generator, ou_theta: float = 0.15) -> GaussianNoise | OUNoise:
    if kind == "gaussian":
        return GaussianNoise(act_dim, rng)
    if kind == "ou":
        return OUNoise(act_dim, rng, theta=ou_theta)
    raise ValueError(f"noise: {kind!r} is not allowed; expected one of 'gaussian', 'ou'")


@dataclass(frozen=True, slots=True)
class SigmaSchedule:
    """Constant sigma, or a linear decay from `initial` to `final` over `decay_steps`."""

    initial: float
    final: float
    decay_steps: int = 0

    def __call__(self, step: int) -> float:
        if self.decay_steps <= 0:
            return self.initial
        fraction = min(max(step, 0) / self.decay_steps, 1.0)
        return self.initial + fraction * (self.final - self.initial)


def add_exploration_noise(
    action: np.ndarray, unit_noise: np.ndarray, sigma: float, low: np.ndarray, high: np.ndarray
) -> np.ndarray:
    """a + σ·(high − low)/2·ε, clipped so that noise never pushes past the bounds."""
    noisy = action + sigma * (high - low) / 2 * unit_noise
    return np.clip(noisy, low, high).astype(np.float32)
