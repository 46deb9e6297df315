"""The four DDPG equations, each pinned on known tensors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from agents.config import DDPGConfig
from agents.ddpg import DDPGAgent, soft_update
from agents.envs import EnvSpec
from agents.replay_buffer import Batch

SPEC = EnvSpec("Test-v0", obs_dim=3, act_dim=2, action_low=np.array([-1.0, 0.0], np.float32),
               action_high=np.array([3.0, 0.5], np.float32))


def make_agent(**overrides) -> DDPGAgent:
    torch.manual_seed(0)
    config = DDPGConfig(hidden_sizes=(16, 16), device="cpu", **overrides)
    return DDPGAgent(SPEC, config, torch.device("cpu"))


def random_batch(n: int = 32, dones: float | None = None, seed: int = 0) -> Batch:
    g = torch.Generator().manual_seed(seed)
    obs = torch.randn(n, 3, generator=g)
    low, high = torch.as_tensor(SPEC.action_low), torch.as_tensor(SPEC.action_high)
    actions = low + (high - low) * torch.rand(n, 2, generator=g)
    rewards = torch.randn(n, generator=g)
    next_obs = torch.randn(n, 3, generator=g)
    done = (torch.rand(n, generator=g) < 0.5).float() if dones is None else torch.full((n,), dones)
    return Batch(obs, actions, rewards, next_obs, done)


def params(module: torch.nn.Module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in module.parameters()]


def test_targets_start_as_exact_copies() -> None:
    agent = make_agent()
    for net, target in ((agent.actor, agent.actor_target), (agent.critic, agent.critic_target)):
        for p, q in zip(net.parameters(), target.parameters(), strict=True):
            assert torch.equal(p, q) and p.data_ptr() != q.data_ptr()


def test_critic_target_is_reward_plus_discounted_target_q() -> None:
    agent = make_agent(gamma=0.9)
    batch = random_batch(dones=0.0)
    expected = batch.rewards + 0.9 * agent.critic_target(batch.next_obs, agent.actor_target(batch.next_obs))
    y = agent.critic_target_values(batch.rewards, batch.next_obs, batch.dones)
    torch.testing.assert_close(y, expected.detach())
    assert not y.requires_grad


def test_terminated_transition_does_not_bootstrap() -> None:
    agent = make_agent(gamma=0.9)
    batch = random_batch(dones=1.0)
    y = agent.critic_target_values(batch.rewards, batch.next_obs, batch.dones)
    torch.testing.assert_close(y, batch.rewards)


def test_truncated_transition_still_bootstraps() -> None:
    # A time-limit truncation is stored with done = 0, so its target keeps γ·Q'(s', μ'(s')).
    agent = make_agent(gamma=0.99)
    batch = random_batch(dones=0.0)
    y = agent.critic_target_values(batch.rewards, batch.next_obs, batch.dones)
    next_q = agent.critic_target(batch.next_obs, agent.actor_target(batch.next_obs))
    assert torch.all(next_q.abs() > 0)
    torch.testing.assert_close(y - batch.rewards, 0.99 * next_q.detach())


def test_critic_target_uses_the_target_networks_not_the_online_ones() -> None:
    agent = make_agent(gamma=0.9)
    batch = random_batch(dones=0.0)
    before = agent.critic_target_values(batch.rewards, batch.next_obs, batch.dones)
    with torch.no_grad():
        for p in list(agent.actor.parameters()) + list(agent.critic.parameters()):
            p.add_(1.0)
    after = agent.critic_target_values(batch.rewards, batch.next_obs, batch.dones)
    torch.testing.assert_close(before, after)


def test_critic_step_minimises_mse_to_the_target() -> None:
    agent = make_agent(critic_lr=1e-3)
    batch = random_batch()
    y = agent.critic_target_values(batch.rewards, batch.next_obs, batch.dones)
    loss_before = F.mse_loss(agent.critic(batch.obs, batch.actions), y).item()
    stats = agent.update(batch)
    assert stats.critic_loss.item() == pytest.approx(loss_before, rel=1e-5)
    y_after = agent.critic_target_values(batch.rewards, batch.next_obs, batch.dones)
    assert F.mse_loss(agent.critic(batch.obs, batch.actions), y_after).item() < loss_before


def test_actor_step_raises_q_and_leaves_the_critic_untouched() -> None:
    agent = make_agent(actor_lr=1e-2)
    batch = random_batch()
    q_before = agent.critic(batch.obs, agent.actor(batch.obs)).mean().item()
    critic_before = params(agent.critic)
    # Run the actor half of the update on its own (the critic optimiser is not stepped).
    actor_loss = -agent.critic(batch.obs, agent.actor(batch.obs)).mean()
    agent.actor_optimizer.zero_grad(set_to_none=True)
    actor_loss.backward(inputs=agent.actor_params)
    agent.actor_optimizer.step()
    q_after = agent.critic(batch.obs, agent.actor(batch.obs)).mean().item()
    assert q_after > q_before
    for before, after in zip(critic_before, agent.critic.parameters(), strict=True):
        assert torch.equal(before, after)
    assert all(p.grad is None for p in agent.critic.parameters())


def test_full_update_moves_the_critic_only_by_its_own_loss() -> None:
    # The critic after update() must equal the critic after a lone critic step on the
    # same batch: the actor step in between must not touch it.
    agent = make_agent()
    twin = make_agent()
    batch = random_batch()
    agent.update(batch)
    y = twin.critic_target_values(batch.rewards, batch.next_obs, batch.dones)
    loss = F.mse_loss(twin.critic(batch.obs, batch.actions), y)
    twin.critic_optimizer.zero_grad()
    loss.backward()
    twin.critic_optimizer.step()
    for a, b in zip(agent.critic.parameters(), twin.critic.parameters(), strict=True):
        torch.testing.assert_close(a, b)


def test_soft_update_is_tau_weighted_average() -> None:
    source, target = torch.nn.Linear(2, 2), torch.nn.Linear(2, 2)
    with torch.no_grad():
        for p in source.parameters():
            p.fill_(1.0)
        for p in target.parameters():
            p.fill_(3.0)
    soft_update(list(target.parameters()), list(source.parameters()), tau=0.25)
    for p in target.parameters():
        torch.testing.assert_close(p, torch.full_like(p, 0.25 * 1.0 + 0.75 * 3.0))


def test_update_soft_updates_both_targets_with_tau() -> None:
    agent = make_agent(tau=0.1)
    actor_target_before = params(agent.actor_target)
    critic_target_before = params(agent.critic_target)
    agent.update(random_batch())
    for net, target, before in ((agent.actor, agent.actor_target, actor_target_before),
                                (agent.critic, agent.critic_target, critic_target_before)):
        for p, t, b in zip(net.parameters(), target.parameters(), before, strict=True):
            torch.testing.assert_close(t, 0.1 * p.detach() + 0.9 * b)


def test_actions_stay_inside_asymmetric_bounds() -> None:
    agent = make_agent()
    with torch.no_grad():
        agent.actor.net[-1].bias.copy_(torch.tensor([50.0, -50.0]))
    high_action = agent.act(np.zeros(3, np.float32))
    np.testing.assert_allclose(high_action, [3.0, 0.0], atol=1e-5)
    with torch.no_grad():
        agent.actor.net[-1].bias.copy_(torch.tensor([-50.0, 50.0]))
    np.testing.assert_allclose(agent.act(np.zeros(3, np.float32)), [-1.0, 0.5], atol=1e-5)
    for obs in np.random.default_rng(0).normal(scale=100, size=(50, 3)).astype(np.float32):
        action = agent.act(obs)
        assert np.all(action >= SPEC.action_low) and np.all(action <= SPEC.action_high)


def test_critic_sees_actions_rescaled_to_unit_range() -> None:
    agent = make_agent()
    obs = torch.zeros(1, 3)
    low, high = torch.as_tensor(SPEC.action_low), torch.as_tensor(SPEC.action_high)
    q_from_env_units = agent.critic(obs, high.reshape(1, 2))
    q_direct = agent.critic.net(torch.cat([obs, torch.ones(1, 2)], dim=-1)).squeeze(-1)
    torch.testing.assert_close(q_from_env_units, q_direct)
    q_low = agent.critic(obs, low.reshape(1, 2))
    torch.testing.assert_close(q_low, agent.critic.net(torch.cat([obs, -torch.ones(1, 2)], dim=-1)).squeeze(-1))


def test_set_learning_rates_reaches_the_optimisers() -> None:
    agent = make_agent()
    agent.set_learning_rates(actor_lr=1e-5, critic_lr=2e-5)
    assert all(g["lr"] == 1e-5 for g in agent.actor_optimizer.param_groups)
    assert all(g["lr"] == 2e-5 for g in agent.critic_optimizer.param_groups)


def test_state_dict_round_trip_gives_the_same_actions() -> None:
    agent = make_agent()
    agent.update(random_batch())
    clone = make_agent()
    clone.load_state_dict(agent.state_dict())
    obs = np.array([0.1, -0.2, 0.3], np.float32)
    np.testing.assert_array_equal(agent.act(obs), clone.act(obs))


def test_act_clips_where_float32_rounding_would_overshoot_the_bound() -> None:
    # With low -0.3 and high 0.9, bias − scale rounds to just below -0.3 in float32.
    spec = EnvSpec("Test-v0", obs_dim=3, act_dim=1, action_low=np.array([-0.3], np.float32),
                   action_high=np.array([0.9], np.float32))
    agent = DDPGAgent(spec, DDPGConfig(hidden_sizes=(8,), device="cpu"), torch.device("cpu"))
    with torch.no_grad():
        agent.actor.net[-1].bias.fill_(-100.0)  # tanh saturates at -1
        unclipped = agent.actor(torch.zeros(1, 3))[0].numpy()
    assert unclipped[0] < np.float32(-0.3)  # what the actor alone gives
    assert agent.act(np.zeros(3, np.float32))[0] == np.float32(-0.3)


# TD3's switches (Fujimoto et al. 2018), each pinned as the DDPG equations are ---------------


class ConstantQ(torch.nn.Module):
    """Stands in for a target critic: Q'(s, a) = value, and remembers the actions it saw."""

    def __init__(self, value: float) -> None:
        super().__init__()
        self.value = value
        self.seen: list[torch.Tensor] = []

    def forward(self, obs: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        self.seen.append(action.clone())
        return torch.full((obs.shape[0],), self.value)


def test_twin_critics_target_takes_the_smaller_of_the_two_target_critics() -> None:
    agent = make_agent(gamma=0.5, twin_critics=True)
    batch = random_batch(dones=0.0)
    for first, second in ((5.0, 3.0), (2.0, 7.0)):
        agent.critic_target, agent.critic2_target = ConstantQ(first), ConstantQ(second)
        y = agent.critic_target_values(batch.rewards, batch.next_obs, batch.dones)
        torch.testing.assert_close(y, batch.rewards + 0.5 * min(first, second))


def test_twin_critics_both_regress_on_the_target_and_the_actor_follows_the_first() -> None:
    agent = make_agent(twin_critics=True)
    batch = random_batch()
    y = agent.critic_target_values(batch.rewards, batch.next_obs, batch.dones)
    expected = (F.mse_loss(agent.critic(batch.obs, batch.actions), y)
                + F.mse_loss(agent.critic2(batch.obs, batch.actions), y)).item()
    q1_actor_loss = -agent.critic(batch.obs, agent.actor(batch.obs)).mean().item()
    critic2_before = params(agent.critic2)
    losses = agent.update(batch)
    assert losses.critic_loss.item() == pytest.approx(expected, rel=1e-5)
    # The actor loss is read before the update's critic step moved Q1, so compare loosely.
    assert losses.actor_loss.item() == pytest.approx(q1_actor_loss, rel=0.2)
    assert any(not torch.equal(b, a) for b, a in zip(critic2_before, agent.critic2.parameters(), strict=True))


def test_without_twin_critics_there_is_no_second_critic() -> None:
    agent = make_agent()
    assert agent.critic2 is None and agent.critic2_target is None
    assert "critic2" not in agent.state_dict()


@pytest.mark.parametrize("delay", [1, 3])
def test_policy_delay_moves_actor_and_targets_only_every_dth_update(delay: int) -> None:
    agent = make_agent(policy_delay=delay, actor_lr=1e-2)
    moved_actor, moved_target = [], []
    for i in range(6):
        actor_before, target_before = params(agent.actor), params(agent.critic_target)
        critic_before = params(agent.critic)
        agent.update(random_batch(seed=i))
        moved_actor.append(any(not torch.equal(b, a) for b, a in zip(actor_before, agent.actor.parameters(),
                                                                     strict=True)))
        moved_target.append(any(not torch.equal(b, a) for b, a in
                                zip(target_before, agent.critic_target.parameters(), strict=True)))
        assert any(not torch.equal(b, a) for b, a in zip(critic_before, agent.critic.parameters(), strict=True))
    expected = [(i + 1) % delay == 0 for i in range(6)]
    assert moved_actor == expected and moved_target == expected


def test_target_noise_is_clipped_relative_to_half_the_action_range_and_kept_in_bounds() -> None:
    agent = make_agent(target_noise=10.0, target_noise_clip=0.01)  # noise 1000x the clip: every sample hits it
    batch = random_batch(n=256, dones=0.0)
    recorder = ConstantQ(0.0)
    agent.critic_target = recorder
    agent.critic_target_values(batch.rewards, batch.next_obs, batch.dones)
    smoothed = recorder.seen[0]
    clean = agent.actor_target(batch.next_obs)
    half_range = torch.as_tensor((SPEC.action_high - SPEC.action_low) / 2)
    offset = smoothed - clean
    assert torch.all(offset.abs() <= 0.01 * half_range + 1e-6)
    assert torch.all(smoothed >= torch.as_tensor(SPEC.action_low)) and torch.all(
        smoothed <= torch.as_tensor(SPEC.action_high))
    inside = (smoothed > torch.as_tensor(SPEC.action_low)) & (smoothed < torch.as_tensor(SPEC.action_high))
    at_the_clip = torch.isclose(offset.abs(), (0.01 * half_range).expand_as(offset), atol=1e-6)[inside]
    assert at_the_clip.float().mean() > 0.98  # |ε| < clip has probability 0.0008 at this σ


def test_without_target_noise_the_target_action_is_the_target_actors() -> None:
    agent = make_agent()
    batch = random_batch(dones=0.0)
    recorder = ConstantQ(0.0)
    agent.critic_target = recorder
    agent.critic_target_values(batch.rewards, batch.next_obs, batch.dones)
    torch.testing.assert_close(recorder.seen[0], agent.actor_target(batch.next_obs))


def test_td3_state_round_trips_with_the_update_count() -> None:
    agent = make_agent(twin_critics=True, policy_delay=2)
    agent.update(random_batch())
    clone = make_agent(twin_critics=True, policy_delay=2)
    clone.load_state_dict(agent.state_dict())
    assert clone.critic_updates == 1
    for a, b in zip(agent.critic2_target.parameters(), clone.critic2_target.parameters(), strict=True):
        assert torch.equal(a, b)
