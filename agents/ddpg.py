"""The DDPG agent: acting and the update (Lillicrap et al. 2015, Algorithm 1), with
TD3's three fixes (Fujimoto et al. 2018) as switches that are off by default.

The four equations, each in one place:
    critic target   y = r + γ(1 − d)·Q'(s', μ'(s'))          `critic_target_values`
    critic loss     L = mean (Q(s, a) − y)²                   `update`
    actor loss      J = −mean Q(s, μ(s))                      `update`
    target update   θ' ← τθ + (1 − τ)θ'                       `soft_update`

TD3's switches, each an `if` beside the equation it changes:
    twin_critics       y = r + γ(1 − d)·min(Q1'(s', ã), Q2'(s', ã));  L = L1 + L2;  J uses Q1
                                                              `critic_target_values`, `update`
    target_noise, _clip  ã = clip(μ'(s') + clip(ε, −c, c), low, high),  ε ~ N(0, σ²)
                         (σ and c relative to half the action range, as noise_sigma is)
                                                              `critic_target_values`
    policy_delay d     the actor step and both target updates only every d-th critic update
                                                              `update`
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

TARGET_NOISE_SEED_OFFSET = 4  # the trainer's own generators take seed + 0..3


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
        self.twin_critics = config.twin_critics
        self.apply_live_config(config)
        hidden = config.hidden_sizes
        low, high = spec.action_low, spec.action_high
        self.action_low, self.action_high = low, high
        self.actor = Actor(spec.obs_dim, spec.act_dim, hidden, low, high).to(self.device)
        self.critic = Critic(spec.obs_dim, spec.act_dim, hidden, low, high).to(self.device)
        self.critic2 = Critic(spec.obs_dim, spec.act_dim, hidden, low, high).to(self.device) \
            if self.twin_critics else None
        # Targets start as exact copies and are never trained by gradient.
        self.actor_target = copy.deepcopy(self.actor).requires_grad_(False)
        self.critic_target = copy.deepcopy(self.critic).requires_grad_(False)
        self.critic2_target = copy.deepcopy(self.critic2).requires_grad_(False) if self.critic2 else None
        self.actor_params = list(self.actor.parameters())
        critic_params = list(self.critic.parameters()) + (list(self.critic2.parameters()) if self.critic2 else [])
        target_critic_params = list(self.critic_target.parameters()) + (
            list(self.critic2_target.parameters()) if self.critic2_target else [])
        # All targets in one fused lerp; the lists are built once, not per update.
        self._target_params = target_critic_params + list(self.actor_target.parameters())
        self._online_params = critic_params + self.actor_params
        self.actor_optimizer = make_adam(self.actor_params, config.actor_lr)
        self.critic_optimizer = make_adam(critic_params, config.critic_lr)
        self._half_range = torch.as_tensor((high - low) / 2, dtype=torch.float32, device=self.device)
        self._low = torch.as_tensor(low, dtype=torch.float32, device=self.device)
        self._high = torch.as_tensor(high, dtype=torch.float32, device=self.device)
        self.critic_updates = 0
        self._last_actor_loss = torch.zeros((), device=self.device)
        # TD3's target smoothing draws from a generator of its own, on the device the noise is
        # made on: the global CUDA generator is not in a checkpoint (so a GPU resume would not
        # be exact), and an update must not move the global stream other code draws from.
        self.target_noise_generator = torch.Generator(device=self.device)
        self.target_noise_generator.manual_seed(config.seed + TARGET_NOISE_SEED_OFFSET)

    def apply_live_config(self, config: DDPGConfig) -> None:
        """The hyperparameters the update reads each time, so that a live change takes effect at once."""
        self.gamma = config.gamma
        self.tau = config.tau
        self.policy_delay = config.policy_delay
        self.target_noise = config.target_noise
        self.target_noise_clip = config.target_noise_clip

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
        next_actions = self.actor_target(next_obs)
        if self.target_noise > 0:  # TD3: target policy smoothing
            clip = self.target_noise_clip * self._half_range
            noise = torch.randn(next_actions.shape, generator=self.target_noise_generator, device=self.device,
                                dtype=next_actions.dtype) * (self.target_noise * self._half_range)
            next_actions = (next_actions + torch.maximum(torch.minimum(noise, clip), -clip)).clamp(
                self._low, self._high)
        next_q = self.critic_target(next_obs, next_actions)
        if self.critic2_target is not None:  # TD3: clipped double Q, the smaller of two estimates
            next_q = torch.minimum(next_q, self.critic2_target(next_obs, next_actions))
        return rewards + self.gamma * (1.0 - dones) * next_q

    def update(self, batch: Batch) -> UpdateLosses:
        target = self.critic_target_values(batch.rewards, batch.next_obs, batch.dones)
        q = self.critic(batch.obs, batch.actions)
        critic_loss = F.mse_loss(q, target)
        if self.critic2 is not None:  # TD3: both critics regress on the same target
            critic_loss = critic_loss + F.mse_loss(self.critic2(batch.obs, batch.actions), target)
        self.critic_optimizer.zero_grad(set_to_none=True)
        critic_loss.backward()
        self.critic_optimizer.step()
        self.critic_updates += 1

        if self.critic_updates % self.policy_delay == 0:  # TD3: delayed policy updates (d = 1 is DDPG)
            # Deterministic policy gradient: ∇θ J flows through Q into μ. `inputs=` keeps the
            # backward pass from computing (and accumulating) gradients for the critic's
            # weights, so the actor step cannot move the critic and does less work.
            actor_loss = -self.critic(batch.obs, self.actor(batch.obs)).mean()
            self.actor_optimizer.zero_grad(set_to_none=True)
            actor_loss.backward(inputs=self.actor_params)
            self.actor_optimizer.step()
            soft_update(self._target_params, self._online_params, self.tau)
            self._last_actor_loss = actor_loss.detach()
        return UpdateLosses(critic_loss.detach(), self._last_actor_loss, q.detach().mean())

    def set_learning_rates(self, actor_lr: float | None = None, critic_lr: float | None = None) -> None:
        for optimizer, lr in ((self.actor_optimizer, actor_lr), (self.critic_optimizer, critic_lr)):
            if lr is not None:
                for group in optimizer.param_groups:
                    group["lr"] = lr

    # State ----------------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        state = {
            "actor": self.actor.state_dict(),
            "critic": self.critic.state_dict(),
            "actor_target": self.actor_target.state_dict(),
            "critic_target": self.critic_target.state_dict(),
            "actor_optimizer": self.actor_optimizer.state_dict(),
            "critic_optimizer": self.critic_optimizer.state_dict(),
            "critic_updates": self.critic_updates,
            # With policy_delay > 1 an update without an actor step reports the last actor loss;
            # saved so that a resumed run reports what the uninterrupted one would.
            "last_actor_loss": float(self._last_actor_loss),
        }
        if self.critic2 is not None and self.critic2_target is not None:
            state["critic2"] = self.critic2.state_dict()
            state["critic2_target"] = self.critic2_target.state_dict()
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.actor.load_state_dict(state["actor"])
        self.critic.load_state_dict(state["critic"])
        self.actor_target.load_state_dict(state["actor_target"])
        self.critic_target.load_state_dict(state["critic_target"])
        if self.critic2 is not None and self.critic2_target is not None:
            self.critic2.load_state_dict(state["critic2"])
            self.critic2_target.load_state_dict(state["critic2_target"])
        self.actor_optimizer.load_state_dict(state["actor_optimizer"])
        self.critic_optimizer.load_state_dict(state["critic_optimizer"])
        self.critic_updates = int(state.get("critic_updates", 0))
        self._last_actor_loss = torch.tensor(float(state.get("last_actor_loss", 0.0)), device=self.device)
