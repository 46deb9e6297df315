"""The statistics a config is judged by, checked against cases worked out by hand."""

from __future__ import annotations

import math

import pytest

from ddpg_tui.stats import (
    estimate,
    few_seeds_note,
    iqm,
    probability_of_improvement,
    seeds_needed,
)


def test_iqm_is_the_mean_of_the_middle_half() -> None:
    assert iqm([1, 2, 3, 4, 5, 6, 7, 8]) == pytest.approx(4.5)  # (3 + 4 + 5 + 6) / 4
    assert iqm([8, 1, 100, 2, 3, 4, 5, -50]) == pytest.approx(3.5)  # the outliers are cut: (2 + 3 + 4 + 5) / 4
    assert iqm([1, 2, 9]) == pytest.approx(4.0)  # int(3 / 4) = 0 cut from each end: the mean


def test_the_interval_contains_the_median_and_the_iqm_and_is_reproducible() -> None:
    returns = [-150.0, -130.0, -170.0, -120.0, -400.0, -140.0]
    first = estimate(returns)
    # int(6 / 4) = 1 seed cut from each end: (-170 - 150 - 140 - 130) / 4
    assert first.median == pytest.approx(-145.0) and first.iqm == pytest.approx(-147.5)
    assert first.low <= first.median <= first.high and first.low <= first.iqm <= first.high
    assert first.low > -400.0  # the IQM's interval is not dragged to the one bad seed
    assert estimate(returns) == first  # a fixed bootstrap seed


def test_one_seed_has_no_interval() -> None:
    single = estimate([5.0])
    assert single.median == 5.0 and math.isnan(single.low) and math.isnan(single.high)


def test_clearly_separated_samples_improve_with_probability_one() -> None:
    better = probability_of_improvement([10, 11, 12, 13, 14], [0, 1, 2, 3, 4])
    assert better is not None and better.probability == 1.0 and better.low > 0.9
    worse = probability_of_improvement([0, 1, 2, 3, 4], [10, 11, 12, 13, 14])
    assert worse is not None and worse.probability == 0.0


def test_identical_samples_improve_with_probability_one_half() -> None:
    same = probability_of_improvement([1, 2, 3, 4, 5], [1, 2, 3, 4, 5])
    assert same is not None and same.probability == pytest.approx(0.5)
    assert same.low < 0.5 < same.high


def test_several_tasks_are_resampled_within_each_task() -> None:
    # Two envs on different scales: pooled, the IQM is that of all seven returns.
    both = estimate({"Pendulum-v1": [-200.0, -150.0, -100.0], "Hopper-v5": [1000.0, 1200.0, 1400.0, 1600.0]})
    assert both.seeds == 7 and both.iqm == pytest.approx(iqm([-200, -150, -100, 1000, 1200, 1400, 1600]))
    # A stratified resample always draws 3 Pendulum seeds and 4 Hopper seeds, so the IQM (mean of the middle
    # 5 after cutting one from each end) can never fall to Pendulum's range, as a pooled resample could.
    assert both.low > -150.0
    # P(X > Y) is taken per task and averaged: X wins Pendulum outright and ties Hopper.
    x = {"Pendulum-v1": [-100.0, -90.0], "Hopper-v5": [1000.0, 2000.0]}
    y = {"Pendulum-v1": [-300.0, -290.0], "Hopper-v5": [1000.0, 2000.0]}
    improvement = probability_of_improvement(x, y)
    assert improvement is not None and improvement.probability == pytest.approx(0.75)


def test_configs_on_different_envs_have_no_probability_of_improvement() -> None:
    assert probability_of_improvement({"a": [1, 2]}, {"b": [1, 2]}) is None


def test_seeds_needed_follows_the_normal_approximation() -> None:
    # 2 (1.96 + 0.8416)^2 (σ/Δ)^2 = 15.70 for σ = Δ: 16 seeds; four times the spread ratio squared for σ = 2Δ.
    assert seeds_needed(10.0, 10.0) == 16
    assert seeds_needed(20.0, 10.0) == 63
    assert seeds_needed(0.0, 10.0) is None and seeds_needed(10.0, 0.0) is None


def test_fewer_than_five_seeds_say_the_interval_is_wide_in_one_line() -> None:
    note = few_seeds_note(3, 20.0, 10.0, "the gap to the runner-up")
    assert note == ("3 seeds: the 95% interval is wide; telling the gap to the runner-up (10.0) apart at this "
                    "spread between seeds (std 20.0) needs about 63 seeds per config")
    assert few_seeds_note(5, 20.0, 10.0, "the gap") is None
    assert few_seeds_note(3, 10.0, 100.0, "the gap") == (
        "3 seeds: the 95% interval is wide, but the gap (100.0) is large: at this spread between seeds (std 10.0) "
        "about 2 seeds per config tell it apart")
