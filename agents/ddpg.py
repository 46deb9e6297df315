"""The DDPG agent: acting and the update (Lillicrap et al. 2015, Algorithm 1).

The four equations, each in one place:
    critic target   y = r + γ(1 − d)·Q'(s', μ'(s'))          `critic_target_values`
    critic loss     L = mean (Q(s, a) − y)²                   `update`
    actor loss      J = −mean Q(s, μ(s))                      `update`
    target update   θ' ← τθ + (1 − τ)θ'                       `soft_update`
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from agents.config import ConfigError, DDPGConfig
from agents.envs import EnvSpec
from agents.networks import Actor, Critic
from agents.replay_buffer import Batch


@dataclass(frozen=True, slots=True)
class UpdateLosses:
    """One update's detached scalars; `.item()` is called only when they are shown, not per update."""

    critic_loss: torch.Tensor
    actor_loss: torch.Tensor
    mean_q: torch.Tensor


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device: 'cuda' was asked for but CUDA is not available here; expected 'cpu' or 'auto'")
    return torch.device(name)


def make_adam(params: list[nn.Parameter], lr: float) -> torch.optim.Adam:
    # The fused kernel does the whole step in one pass over the parameters; it exists on
    # CPU from torch 2.4, so older torch falls back to the default multi-tensor path.
    try:
        return torch.optim.Adam(params, lr=lr, fused=True)
    except (RuntimeError, TypeError, ValueError):
        return torch.optim.Adam(params, lr=lr)


@torch.no_grad()
def soft_update(target_params: list[torch.Tensor], online_params: list[torch.Tensor], tau: float) -> None:
    """θ' ← τθ + (1 − τ)θ', i.e. lerp(θ', θ, τ), for every parameter in one fused call."""
    torch._foreach_lerp_(target_params, online_params, tau)


class DDPGAgent:
    def __init__(self, spec: EnvSpec, config: DDPGConfig, device: torch.device | None = None) -> None:
        self.spec = spec
        self.device = device or resolve_device(config.device)
        self.gamma = config.gamma
        self.tau = config.tau
        hidden = config.hidden_sizes
        low, high = spec.action_low, spec.action_high
        self.actor = Actor(spec.obs_dim, spec.act_dim, hidden, low, high).to(self.device)
        self.critic = Critic(spec.obs_dim, spec.act_dim, hidden, low, high).to(self.device)
        # Targets start as exact copies and are never trained by gradient.
        self.actor_target = copy.deepcopy(self.actor).requires_grad_(False)
        self.critic_target = copy.deepcopy(self.critic).requires_grad_(False)
        self.actor_params = list(self.actor.parameters())
        self.action_low, self.action_high = spec.action_low, spec.action_high
        # Both targets in one fused lerp; the lists are built once, not per update.
        self._target_params = list(self.critic_target.parameters()) + list(self.actor_target.parameters())
        self._online_params = list(self.critic.parameters()) + self.actor_params
        self.actor_optimizer = make_adam(self.actor_params, config.actor_lr)
        self.critic_optimizer = make_adam(list(self.critic.parameters()), config.critic_lr)

    # Acting ---------------------------------------------------------------------------

    @torch.inference_mode()
    def act(self, obs: np.ndarray) -> np.ndarray:
        """μ(s) for one observation, in env units, without noise.

        tanh keeps it within the bounds in exact arithmetic; the clip also holds in float32,
        where scale·tanh + bias can overshoot `high` by a rounding step.
        """
        obs_t = torch.as_tensor(obs, dtype=torch.float32, device=self.device).reshape(1, -1)
        return np.clip(self.actor(obs_t)[0].cpu().numpy(), self.action_low, self.action_high)

    # Learning -------------------------------------------------------------------------

    @torch.no_grad()
    def critic_target_values(self, rewards: torch.Tensor, next_obs: torch.Tensor,
                             dones: torch.Tensor) -> torch.Tensor:
        """y = r + γ(1 − d)·Q'(s', μ'(s')). No gradient: y is a fixed regression target.

        `dones` marks termination only: at a time-limit truncation the episode could have
        gone on, so the value of s' still counts.
        """
        next_q = self.critic_target(next_obs, self.actor_target(next_obs))
        return rewards + self.gamma * (1.0 - dones) * next_q

    def update(self, batch: Batch) -> UpdateLosses:
        target = self.critic_target_values(batch.rewards, batch.next_obs, batch.dones)
        q = self.critic(batch.obs, batch.actions)
        critic_loss = F.mse_loss(q, target)
        self.critic_optimizer.zero_grad(set_to_none=True)
        critic_loss.backward()
        self.critic_optimizer.step()

        # Deterministic policy gradient: ∇θ J flows through Q into μ. `inputs=` keeps the
        # backward pass from computing (and accumulating) gradients for the critic's
        # weights, so the actor step cannot move the critic and does less work.
        actor_loss = -self.critic(batch.obs, self.actor(batch.obs)).mean()
        self.actor_optimizer.zero_grad(set_to_none=True)
        actor_loss.backward(inputs=self.actor_params)
        self.actor_optimizer.step()

        soft_update(self._target_params, self._online_params, self.tau)
        return UpdateLosses(critic_loss.detach(), actor_loss.detach(), q.detach().mean())

    def set_learning_rates(self, actor_lr: float | None = None, critic_lr: float | None = None) -> None:
        for optimizer, lr in ((self.actor_optimizer, actor_lr), (self.critic_optimizer, critic_lr)):
            if lr is not None:
                for group in optimizer.param_groups:
                    group["lr"] = lr

    # State ----------------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        return {
            "actor": self.actor.state_dict(),
            "critic": self.critic.state_dict(),
            "actor_target": self.actor_target.state_dict(),
            "critic_target": self.critic_target.state_dict(),
            "actor_optimizer": self.actor_optimizer.state_dict(),
            "critic_optimizer": self.critic_optimizer.state_dict(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.actor.load_state_dict(state["actor"])
        self.critic.load_state_dict(state["critic"])
        self.actor_target.load_state_dict(state["actor_target"])
        self.critic_target.load_state_dict(state["critic_target"])
        self.actor_optimizer.load_state_dict(state["actor_optimizer"])
        self.critic_optimizer.load_state_dict(state["critic_optimizer"])
