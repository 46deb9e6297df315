"""The replay ring: fixed memory, oldest overwritten first, uniform sampling of the filled part."""

from __future__ import annotations

import numpy as np
import torch

from agents.replay_buffer import ReplayBuffer


def fill(buffer: ReplayBuffer, count: int, start: int = 0) -> None:
    for i in range(start, start + count):
        buffer.add(np.full(3, i, np.float32), np.full(2, i, np.float32), float(i),
                   np.full(3, i + 0.5, np.float32), i % 2 == 0)


def test_memory_is_capacity_times_bytes_per_transition() -> None:
    buffer = ReplayBuffer(1000, obs_dim=3, act_dim=2)
    assert buffer.bytes_per_transition == (3 + 3 + 2 + 1 + 1) * 4
    assert buffer.nbytes == 1000 * buffer.bytes_per_transition
    assert all(a.dtype == np.float32 for a in (buffer.obs, buffer.actions, buffer.rewards, buffer.dones))


def test_wrap_around_overwrites_the_oldest() -> None:
    buffer = ReplayBuffer(4, obs_dim=3, act_dim=2)
    fill(buffer, 6)
    assert len(buffer) == 4
    assert sorted(buffer.rewards.tolist()) == [2.0, 3.0, 4.0, 5.0]
    assert buffer.position == 2


def test_sampling_draws_only_from_the_filled_part() -> None:
    buffer = ReplayBuffer(100, obs_dim=3, act_dim=2, seed=1)
    fill(buffer, 5)
    batch = buffer.sample(500)
    assert set(batch.rewards.tolist()) == {0.0, 1.0, 2.0, 3.0, 4.0}
    assert batch.obs.shape == (500, 3) and batch.actions.shape == (500, 2) and batch.dones.shape == (500,)
    assert batch.obs.dtype == torch.float32


def test_sampled_fields_stay_aligned() -> None:
    buffer = ReplayBuffer(50, obs_dim=3, act_dim=2, seed=2)
    fill(buffer, 50)
    batch = buffer.sample(64)
    torch.testing.assert_close(batch.obs[:, 0], batch.rewards)
    torch.testing.assert_close(batch.next_obs[:, 0], batch.rewards + 0.5)
    torch.testing.assert_close(batch.actions[:, 1], batch.rewards)
    torch.testing.assert_close(batch.dones, (batch.rewards % 2 == 0).float())


def test_sampling_is_roughly_uniform() -> None:
    buffer = ReplayBuffer(10, obs_dim=3, act_dim=2, seed=3)
    fill(buffer, 10)
    counts = np.bincount(buffer.sample(20_000).rewards.numpy().astype(int), minlength=10)
    assert counts.min() > 1700 and counts.max() < 2300


def test_state_dict_round_trip_keeps_contents_position_and_rng() -> None:
    buffer = ReplayBuffer(8, obs_dim=3, act_dim=2, seed=4)
    fill(buffer, 11)
    state = buffer.state_dict()
    assert state["obs"].shape == (8, 3)
    restored = ReplayBuffer(8, obs_dim=3, act_dim=2, seed=99)
    restored.load_state_dict(state)
    assert (len(restored), restored.position) == (len(buffer), buffer.position)
    torch.testing.assert_close(restored.sample(16).rewards, buffer.sample(16).rewards)


def test_state_dict_saves_only_the_filled_part() -> None:
    buffer = ReplayBuffer(10_000, obs_dim=3, act_dim=2)
    fill(buffer, 10)
    assert buffer.state_dict()["obs"].shape == (10, 3)
