"""N DDPG/TD3 agents stacked along a leading member axis and updated in one batched step.

Every weight of member k is slice k of a stacked tensor: a Linear layer's W is [N, out, in]
and its forward pass is one `torch.baddbmm` for all members. This is the same arithmetic
as `agents/ddpg.py`'s update for each member (Adam is elementwise, so one fused Adam over
the stacked tensors is N Adams), with far less framework overhead per member: on small
networks that overhead is most of an update. `benchmarks/population.py --micro` measured
baddbmm against `torch.func` (stack_module_state + functional_call + vmap); see its notes.

The members' agents (`DDPGAgent`, built by the caller with each member's seed) give the
initial weights and are where `sync_to_members` writes the stacked state back, so that a
checkpoint is the one a standalone run writes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import nn

from agents.ddpg import DDPGAgent, UpdateLosses, make_adam, soft_update
from agents.replay_buffer import Batch

if TYPE_CHECKING:
    from agents.config import DDPGConfig


class StackedMLP(nn.Module):
    """The `mlp()` of agents/networks.py for N members at once: Linear/ReLU layers, inputs [N, B, in]."""

    def __init__(self, nets: list[nn.Sequential]) -> None:
        super().__init__()
        linears = [[layer for layer in net if isinstance(layer, nn.Linear)] for net in nets]
        self.weights = nn.ParameterList(
            nn.Parameter(torch.stack([member[i].weight.detach() for member in linears]).clone())
            for i in range(len(linears[0])))
        # [N, 1, out]: broadcast over the batch by baddbmm.
        self.biases = nn.ParameterList(
            nn.Parameter(torch.stack([member[i].bias.detach() for member in linears]).unsqueeze(1).clone())
            for i in range(len(linears[0])))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        last = len(self.weights) - 1
        for i, (weight, bias) in enumerate(zip(self.weights, self.biases, strict=True)):
            x = torch.baddbmm(bias, x, weight.transpose(1, 2))
            if i < last:
                # In place: baddbmm's backward needs its inputs, not its output, and a fresh
                # [N, B, width] tensor per layer costs more than the ReLU itself at N x 64 wide.
                x = torch.relu_(x)
        return x

    def interleaved(self) -> list[nn.Parameter]:
        """w0, b0, w1, b1, ...: the order of an nn.Sequential's parameters, so that Adam states pair up."""
        return [p for pair in zip(self.weights, self.biases, strict=True) for p in pair]

    def member_linears(self, member: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
        return [(w[member], b[member, 0]) for w, b in zip(self.weights, self.biases, strict=True)]


def _bounds(modules: list[nn.Module], name: str) -> torch.Tensor:
    return torch.stack([getattr(m, name) for m in modules]).unsqueeze(1)  # [N, 1, act_dim]


class StackedActor(nn.Module):
    def __init__(self, actors: list[nn.Module]) -> None:
        super().__init__()
        self.net = StackedMLP([a.net for a in actors])
        self.register_buffer("action_scale", _bounds(actors, "action_scale"))
        self.register_buffer("action_bias", _bounds(actors, "action_bias"))

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.net(obs)) * self.action_scale + self.action_bias


class StackedCritic(nn.Module):
    def __init__(self, critics: list[nn.Module]) -> None:
        super().__init__()
        self.net = StackedMLP([c.net for c in critics])
        self.register_buffer("action_bias", _bounds(critics, "action_bias"))
        self.register_buffer("inverse_scale", _bounds(critics, "inverse_scale"))

    def forward(self, obs: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        unit_action = (action - self.action_bias) * self.inverse_scale
        return self.net(torch.cat([obs, unit_action], dim=-1)).squeeze(-1)  # [N, B]


class PopulationAgent:
    """The members' actors and critics stacked; `update` is DDPGAgent.update for every member."""

    def __init__(self, agents: list[DDPGAgent]) -> None:
        first = agents[0]
        self.members = agents
        self.size = len(agents)
        self.device = first.device
        self.policy_delay, self.gamma, self.tau = first.policy_delay, first.gamma, first.tau
        self.target_noise, self.target_noise_clip = first.target_noise, first.target_noise_clip
        self.actor = StackedActor([a.actor for a in agents])
        self.critic = StackedCritic([a.critic for a in agents])
        self.actor_target = StackedActor([a.actor_target for a in agents]).requires_grad_(False)
        self.critic_target = StackedCritic([a.critic_target for a in agents]).requires_grad_(False)
        twin = first.critic2 is not None
        self.critic2 = StackedCritic([a.critic2 for a in agents]) if twin else None  # type: ignore[misc]
        self.critic2_target = (StackedCritic([a.critic2_target for a in agents]).requires_grad_(False)  # type: ignore[misc]
                               if twin else None)
        self.actor_params = self.actor.net.interleaved()
        critic_params = self.critic.net.interleaved() + (self.critic2.net.interleaved() if self.critic2 else [])
        targets = self.critic_target.net.interleaved() + (
            self.critic2_target.net.interleaved() if self.critic2_target else [])
        self._target_params = targets + self.actor_target.net.interleaved()
        self._online_params = critic_params + self.actor_params
        self.actor_optimizer = make_adam(self.actor_params, first.actor_optimizer.param_groups[0]["lr"])
        self.critic_optimizer = make_adam(critic_params, first.critic_optimizer.param_groups[0]["lr"])
        self._half_range = torch.stack([a._half_range for a in agents]).unsqueeze(1)
        self._low = torch.stack([a._low for a in agents]).unsqueeze(1)
        self._high = torch.stack([a._high for a in agents]).unsqueeze(1)
        # Each member's own TD3 generator (seed + 4), so its target noise is its standalone run's.
        self.generators = [a.target_noise_generator for a in agents]
        self.critic_updates = first.critic_updates
        self._last_actor_loss = torch.zeros(self.size, device=self.device)

    # Acting ---------------------------------------------------------------------------

    @torch.inference_mode()
    def act(self, obs: torch.Tensor) -> torch.Tensor:
        """μ(s) for one observation per member: obs [N, obs_dim] -> [N, act_dim] (unclipped)."""
        return self.actor(obs.unsqueeze(1))[:, 0]

    # Learning -------------------------------------------------------------------------

    @torch.no_grad()
    def critic_target_values(self, rewards: torch.Tensor, next_obs: torch.Tensor,
                             dones: torch.Tensor) -> torch.Tensor:
        next_actions = self.actor_target(next_obs)
        if self.target_noise > 0:
            clip = self.target_noise_clip * self._half_range
            # One draw per member from its own generator, in the shape a standalone run draws.
            noise = torch.stack([torch.randn(next_actions.shape[1:], generator=g, device=self.device,
                                             dtype=next_actions.dtype) for g in self.generators])
            noise = noise * (self.target_noise * self._half_range)
            next_actions = (next_actions + torch.maximum(torch.minimum(noise, clip), -clip)).clamp(
                self._low, self._high)
        next_q = self.critic_target(next_obs, next_actions)
        if self.critic2_target is not None:
            next_q = torch.minimum(next_q, self.critic2_target(next_obs, next_actions))
        return rewards + self.gamma * (1.0 - dones) * next_q

    def update(self, batch: Batch) -> UpdateLosses:
        """One update of every member; the losses are [N] (member k's is its standalone loss).

        Summing the members' mean losses leaves each member's gradient its own: no weight is shared.
        """
        target = self.critic_target_values(batch.rewards, batch.next_obs, batch.dones)
        q = self.critic(batch.obs, batch.actions)
        critic_loss = ((q - target) ** 2).mean(dim=1)
        if self.critic2 is not None:
            critic_loss = critic_loss + ((self.critic2(batch.obs, batch.actions) - target) ** 2).mean(dim=1)
        self.critic_optimizer.zero_grad(set_to_none=True)
        critic_loss.sum().backward()
        self.critic_optimizer.step()
        self.critic_updates += 1
        if self.critic_updates % self.policy_delay == 0:
            actor_loss = -self.critic(batch.obs, self.actor(batch.obs)).mean(dim=1)
            self.actor_optimizer.zero_grad(set_to_none=True)
            actor_loss.sum().backward(inputs=self.actor_params)
            self.actor_optimizer.step()
            soft_update(self._target_params, self._online_params, self.tau)
            self._last_actor_loss = actor_loss.detach()
        return UpdateLosses(critic_loss.detach(), self._last_actor_loss, q.detach().mean(dim=1))

    def set_learning_rates(self, actor_lr: float, critic_lr: float) -> None:
        for optimizer, lr in ((self.actor_optimizer, actor_lr), (self.critic_optimizer, critic_lr)):
            for group in optimizer.param_groups:
                group["lr"] = lr

    def apply_live_config(self, config: DDPGConfig) -> None:
        """DDPGAgent.apply_live_config for the stack: the members share one config, so one value each."""
        self.gamma, self.tau, self.policy_delay = config.gamma, config.tau, config.policy_delay
        self.target_noise, self.target_noise_clip = config.target_noise, config.target_noise_clip
        for member in self.members:  # what a member's checkpoint and its sync read
            member.apply_live_config(config)

    # Back to the members ----------------------------------------------------------------

    @torch.no_grad()
    def sync_to_members(self, members: list[int] | None = None) -> None:
        """Write the stacked weights, targets, Adam moments and counters into the members' DDPGAgents
        (all of them by default)."""
        pairs = [(self.actor, "actor"), (self.critic, "critic"), (self.actor_target, "actor_target"),
                 (self.critic_target, "critic_target")]
        if self.critic2 is not None and self.critic2_target is not None:
            pairs += [(self.critic2, "critic2"), (self.critic2_target, "critic2_target")]
        for k in range(self.size) if members is None else members:
            agent = self.members[k]
            for stacked, name in pairs:
                linears = [m for m in getattr(agent, name).net if isinstance(m, nn.Linear)]
                for linear, (weight, bias) in zip(linears, stacked.net.member_linears(k), strict=True):
                    linear.weight.copy_(weight)
                    linear.bias.copy_(bias)
            self._sync_optimizer(self.actor_optimizer, agent.actor_optimizer, k)
            self._sync_optimizer(self.critic_optimizer, agent.critic_optimizer, k)
            agent.critic_updates = self.critic_updates
            agent._last_actor_loss = self._last_actor_loss[k].clone()

    def load_optimizers_from_members(self) -> None:
        """The inverse of sync_to_members for what construction does not stack: Adam's moments and
        step, the learning rates and the update counter (a resumed population continues its members')."""
        for name in ("actor_optimizer", "critic_optimizer"):
            stacked: torch.optim.Optimizer = getattr(self, name)
            members = [getattr(agent, name) for agent in self.members]
            stacked.param_groups[0]["lr"] = members[0].param_groups[0]["lr"]
            for i, ours in enumerate(stacked.param_groups[0]["params"]):
                states = [m.state.get(m.param_groups[0]["params"][i]) for m in members]
                if not all(states):
                    continue
                stacked.state[ours] = {
                    "step": states[0]["step"].clone(),
                    "exp_avg": torch.stack([s["exp_avg"].reshape(ours.shape[1:]) for s in states]),
                    "exp_avg_sq": torch.stack([s["exp_avg_sq"].reshape(ours.shape[1:]) for s in states]),
                }
        self.critic_updates = self.members[0].critic_updates
        self._last_actor_loss = torch.stack([agent._last_actor_loss for agent in self.members]).to(self.device)

    @staticmethod
    def _sync_optimizer(stacked: torch.optim.Optimizer, member: torch.optim.Optimizer, k: int) -> None:
        # Both list their parameters layer by layer, weight then bias (see StackedMLP.interleaved).
        member.param_groups[0]["lr"] = stacked.param_groups[0]["lr"]
        for mine, ours in zip(member.param_groups[0]["params"], stacked.param_groups[0]["params"], strict=True):
            state = stacked.state.get(ours)
            if not state:
                continue
            member.state[mine] = {"step": state["step"].clone(),
                                  "exp_avg": state["exp_avg"][k].reshape(mine.shape).clone(),
                                  "exp_avg_sq": state["exp_avg_sq"][k].reshape(mine.shape).clone()}
