"""TD3's target-policy noise has a generator of its own, saved with the checkpoint."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from agents.checkpoint import load_checkpoint, save_checkpoint
from agents.checkpoint_payload import build_payload, new_save_id
from agents.config import DDPGConfig
from agents.replay_buffer import Batch
from agents.trainer import Trainer

TD3 = {"twin_critics": True, "policy_delay": 2, "target_noise": 0.2, "target_noise_clip": 0.5}
DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(),
                                                                 reason="needs CUDA"))]


def pendulum_batch(seed: int, device: str, n: int = 32) -> Batch:
    g = torch.Generator().manual_seed(seed)
    obs, next_obs = torch.randn(n, 3, generator=g), torch.randn(n, 3, generator=g)
    actions = 4 * torch.rand(n, 1, generator=g) - 2
    batch = Batch(obs, actions, torch.randn(n, generator=g), next_obs, torch.zeros(n))
    return Batch(*(t.to(device) for t in batch))


def all_params(trainer: Trainer) -> list[torch.Tensor]:
    agent = trainer.agent
    return [p.detach().cpu().clone() for p in agent._online_params + agent._target_params]


@pytest.mark.parametrize("device", DEVICES)
def test_resume_through_a_checkpoint_continues_the_target_noise_bit_exactly(
        tiny_config: DDPGConfig, tmp_path: Path, device: str) -> None:
    config = tiny_config.replace(device=device, **TD3)
    straight = Trainer(config, run_dir=tmp_path / "straight")
    for seed in range(3):  # the generator has moved on from its seed when the save happens
        straight.agent.update(pendulum_batch(seed, device))
    path = save_checkpoint(tmp_path / "saved.pt", build_payload(straight, new_save_id()))
    assert load_checkpoint(path)["rng"]["target_noise"]["device"] == torch.device(device).type

    resumed = Trainer(None, run_dir=tmp_path / "resumed", resume_from=path)
    assert not any("target noise" in note for note in resumed.resume_notes)
    assert all(torch.equal(a, b) for a, b in zip(all_params(straight), all_params(resumed), strict=True))
    torch.manual_seed(12345)  # whatever the global generators hold, the update must not depend on it
    for seed in (3, 4):
        straight.agent.update(pendulum_batch(seed, device))
        resumed.agent.update(pendulum_batch(seed, device))
    for a, b in zip(all_params(straight), all_params(resumed), strict=True):
        assert torch.equal(a, b)


def test_a_checkpoint_without_the_generator_state_reseeds_and_says_so(tiny_config: DDPGConfig,
                                                                      tmp_path: Path) -> None:
    straight = Trainer(tiny_config.replace(**TD3), run_dir=tmp_path / "straight")
    straight.agent.update(pendulum_batch(0, "cpu"))
    payload = build_payload(straight, new_save_id())
    del payload["rng"]["target_noise"]  # as written before the generator had its own state
    path = save_checkpoint(tmp_path / "old.pt", payload)

    resumed = Trainer(None, run_dir=tmp_path / "resumed", resume_from=path)
    fresh = torch.Generator().manual_seed(tiny_config.seed + 4)
    assert torch.equal(resumed.agent.target_noise_generator.get_state(), fresh.get_state())
    assert any("TD3's target noise restarts from the run's seed" in note for note in resumed.resume_notes)


@pytest.mark.parametrize("device", DEVICES)
def test_an_update_leaves_the_global_torch_generators_alone(tiny_config: DDPGConfig, device: str) -> None:
    trainer = Trainer(tiny_config.replace(device=device, **TD3))
    batch = pendulum_batch(0, device)
    cpu_state = torch.get_rng_state()
    cuda_state = torch.cuda.get_rng_state() if device == "cuda" else None
    trainer.agent.update(batch)
    assert torch.equal(torch.get_rng_state(), cpu_state)
    if cuda_state is not None:
        assert torch.equal(torch.cuda.get_rng_state(), cuda_state)
