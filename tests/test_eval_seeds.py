"""Evaluation episodes: each seed has its own, apart from training and re-evaluation."""

from __future__ import annotations

import numpy as np
import pytest

from agents.config import FIELDS, DDPGConfig
from agents.ddpg import TARGET_NOISE_SEED_OFFSET
from agents.evaluation import (
    EPISODE_STRIDE,
    MAX_RUN_SEED,
    REEVAL_SEED,
    TRAINING_SEEDS_PER_RUN,
    evaluation_seed,
)
from agents.trainer import Trainer

MAX_EPISODES = int(FIELDS["eval_episodes"].maximum or 0)
# Property-style without hypothesis (not in the venv): many random draws, plus the edges of the
# allowed ranges, which is where an overlap between rules would show first.
EDGE_SEEDS = [0, 1, 2, 9, 10, 11, 40_000, 50_000, MAX_RUN_SEED - 1, MAX_RUN_SEED]


def random_seeds(n: int, draw: int = 0) -> list[int]:
    rng = np.random.default_rng(draw)
    return EDGE_SEEDS + rng.integers(0, MAX_RUN_SEED, n, endpoint=True).tolist()


def test_two_seeds_never_share_an_evaluation_episode() -> None:
    seeds = random_seeds(2000)
    for s, t in zip(seeds, seeds[1:] + seeds[:1], strict=True):
        if s != t:
            mine = {evaluation_seed(s, i) for i in range(MAX_EPISODES)}
            assert mine.isdisjoint(evaluation_seed(t, j) for j in range(MAX_EPISODES))


def test_neighbouring_seeds_share_nothing_even_at_the_most_episodes() -> None:
    # The case that went wrong: seed+10000+i gave seeds k and k+1 nine of their ten episodes.
    for s in random_seeds(2000, draw=1):
        if s < MAX_RUN_SEED:
            assert evaluation_seed(s, MAX_EPISODES - 1) < evaluation_seed(s + 1, 0)


def test_a_range_of_seeds_at_the_most_episodes_has_no_repeats() -> None:
    block = [evaluation_seed(s, i) for s in range(300) for i in range(MAX_EPISODES)]
    assert len(set(block)) == len(block)


def test_evaluation_episodes_are_not_training_seeds_nor_re_evaluation_episodes() -> None:
    highest_training = MAX_RUN_SEED + TRAINING_SEEDS_PER_RUN - 1
    lowest = min(evaluation_seed(s, 0) for s in random_seeds(500, draw=2))
    highest = max(evaluation_seed(s, MAX_EPISODES - 1) for s in random_seeds(500, draw=3))
    assert highest_training < lowest and highest < REEVAL_SEED  # re-evaluation i uses REEVAL_SEED + i, i >= 0
    assert evaluation_seed(0, 0) > highest_training and evaluation_seed(MAX_RUN_SEED, MAX_EPISODES - 1) < REEVAL_SEED


def test_the_stride_holds_the_longest_evaluation_config_allows() -> None:
    assert EPISODE_STRIDE >= MAX_EPISODES
    assert TARGET_NOISE_SEED_OFFSET < TRAINING_SEEDS_PER_RUN  # the agent's generator is one of the run's
    with pytest.raises(ValueError):
        evaluation_seed(0, EPISODE_STRIDE)
    with pytest.raises(ValueError):
        evaluation_seed(MAX_RUN_SEED + 1)


def test_the_trainer_evaluates_on_its_seeds_block(tiny_config: DDPGConfig) -> None:
    trainer = Trainer(tiny_config.replace(seed=3, eval_episodes=3))
    seen: list[int | None] = []
    reset = trainer.eval_env.reset

    def recording_reset(*, seed: int | None = None, options: dict | None = None):
        seen.append(seed)
        return reset(seed=seed, options=options)

    trainer.eval_env.reset = recording_reset  # type: ignore[method-assign]
    trainer._evaluate()
    assert seen == [evaluation_seed(3, i) for i in range(3)]
