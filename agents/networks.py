"""The actor μ(s) and the critic Q(s, a)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn


def mlp(in_features: int, hidden_sizes: Sequence[int], out_features: int) -> nn.Sequential:
    layers: list[nn.Module] = []
    width = in_features
    for size in hidden_sizes:
        layers += [nn.Linear(width, size), nn.ReLU()]
        width = size
    layers.append(nn.Linear(width, out_features))
    return nn.Sequential(*layers)


class _ActionBounds(nn.Module):
    """Holds the affine map between [-1, 1] and the env's [low, high], per dimension."""

    def __init__(self, low: np.ndarray, high: np.ndarray) -> None:
        super().__init__()
        low_t = torch.as_tensor(low, dtype=torch.float32)
        high_t = torch.as_tensor(high, dtype=torch.float32)
        # Buffers, so they move with .to(device) and are saved in the state_dict.
        self.register_buffer("action_scale", (high_t - low_t) / 2)
        self.register_buffer("action_bias", (high_t + low_t) / 2)
        # A dimension with low == high carries no information; map it to 0, not inf.
        scale = (high_t - low_t) / 2
        self.register_buffer("inverse_scale", torch.where(scale > 0, 1 / scale, torch.zeros_like(scale)))


class Actor(_ActionBounds):
    """MLP → tanh → affine map onto [low, high]: actions are always within the bounds."""

    def __init__(
        self, obs_dim: int, act_dim: int, hidden_sizes: Sequence[int], low: np.ndarray, high: np.ndarray
    ) -> None:
        super().__init__(low, high)
        self.net = mlp(obs_dim, hidden_sizes, act_dim)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.net(obs)) * self.action_scale + self.action_bias


class Critic(_ActionBounds):
    """Q(s, a) for actions in env units.

    The action is mapped back to [-1, 1] before the first layer so that the critic sees
    well-scaled inputs whatever the env's bounds are (e.g. [-2, 2] for Pendulum).
    """

    def __init__(
        self, obs_dim: int, act_dim: int, hidden_sizes: Sequence[int], low: np.ndarray, high: np.ndarray
    ) -> None:
        super().__init__(low, high)
        self.net = mlp(obs_dim + act_dim, hidden_sizes, 1)

    def forward(self, obs: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        unit_action = (action - self.action_bias) * self.inverse_scale
        return self.net(torch.cat([obs, unit_action], dim=-1)).squeeze(-1)
