"""Evaluation: actions clipped to the env's bounds, and checkpoints that do not fit refused."""

from __future__ import annotations

from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch

from agents.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from agents.config import DDPGConfig
from agents.evaluation import evaluate, evaluate_checkpoint
from agents.trainer import Trainer


class BoundsRecordingEnv(gym.Env):
    observation_space = gym.spaces.Box(-1.0, 1.0, shape=(2,), dtype=np.float32)
    action_space = gym.spaces.Box(-1.0, 1.0, shape=(1,), dtype=np.float32)

    def __init__(self) -> None:
        self.actions: list[float] = []

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return np.zeros(2, np.float32), {}

    def step(self, action):
        self.actions.append(float(action[0]))
        return np.zeros(2, np.float32), 0.0, len(self.actions) % 3 == 0, False, {}


def test_evaluation_clips_whatever_the_policy_returns_to_the_env_bounds() -> None:
    env = BoundsRecordingEnv()
    evaluate(lambda obs: np.array([5.0]), env, episodes=1, seed=0)
    evaluate(lambda obs: np.array([-7.0]), env, episodes=1, seed=0)
    assert env.actions == [1.0] * 3 + [-1.0] * 3


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    config = DDPGConfig(total_steps=150, learning_starts=100, batch_size=16, hidden_sizes=(8,), eval_every=0,
                        eval_episodes=1, threads=1, device="cpu")
    run_dir = tmp_path_factory.mktemp("eval") / "run"
    Trainer(config, None, run_dir).run()
    return run_dir / "checkpoints" / "latest.pt"


def test_a_checkpoint_trained_with_other_action_bounds_is_refused(checkpoint: Path, tmp_path: Path) -> None:
    payload = load_checkpoint(checkpoint)
    payload["agent"]["actor"]["action_scale"] = torch.tensor([1.0])  # as if trained on [-1, 1]
    payload["agent"]["actor"]["action_bias"] = torch.tensor([0.0])
    save_checkpoint(tmp_path / "bounds.pt", payload)
    with pytest.raises(CheckpointError, match=r"trained with action bounds \[-1..1\], but Pendulum-v1 has \[-2..2\]"):
        evaluate_checkpoint(tmp_path / "bounds.pt", episodes=1, seed=0)


@pytest.mark.parametrize("missing", ["counters", "agent.actor", "env_id", "config"])
def test_a_checkpoint_without_a_needed_key_is_one_line(checkpoint: Path, tmp_path: Path, missing: str) -> None:
    payload = load_checkpoint(checkpoint)
    parent, _, key = missing.rpartition(".")
    node = payload[parent] if parent else payload
    del node[key]
    save_checkpoint(tmp_path / "partial.pt", payload)  # a valid checksum: only the key is missing
    with pytest.raises(CheckpointError, match=f"lacks '{missing}"):
        evaluate_checkpoint(tmp_path / "partial.pt", episodes=1, seed=0)
    with pytest.raises(CheckpointError, match="lacks"):
        Trainer(None, resume_from=tmp_path / "partial.pt")


def test_evaluating_a_run_folder_reports_the_file_it_loaded(checkpoint: Path) -> None:
    result = evaluate_checkpoint(checkpoint.parent.parent, episodes=1, seed=0)
    assert result.path == checkpoint
