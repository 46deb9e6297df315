"""Axis ticks that fit the plot: plotext drops a label that would overlap its neighbour, which left gaps such as
`0 500  1.5k 2k`; so only as many round ticks are asked for as fit, and y ticks are round numbers too."""

from __future__ import annotations

import itertools

import pytest

from ddpg_tui.ui.widgets.panels import sparkline
from ddpg_tui.ui.widgets.plots import fitted_count_ticks, value_ticks


@pytest.mark.parametrize("columns", [12, 20, 30, 45, 70, 110])
@pytest.mark.parametrize(("smallest", "largest"), [(0, 2_000), (200, 11_000), (1_000, 300_000), (0, 7)])
def test_fitted_ticks_are_evenly_spaced_and_every_label_has_room(smallest: int, largest: int, columns: int) -> None:
    ticks, labels = fitted_count_ticks(largest, columns, smallest)
    assert ticks and all(smallest <= t <= largest for t in ticks)
    gaps = {b - a for a, b in itertools.pairwise(ticks)}
    assert len(gaps) <= 1  # even
    if gaps:
        cells = gaps.pop() / (largest - smallest) * columns
        assert cells >= max(len(label) for label in labels) + 2


def test_a_wide_plot_gets_more_ticks_than_a_narrow_one() -> None:
    assert len(fitted_count_ticks(2_000, 110)[0]) > len(fitted_count_ticks(2_000, 20)[0]) >= 2


@pytest.mark.parametrize(("low", "high", "ticks", "labels"), [
    (-1403.2, -101.7, [-1000.0, -500.0], ["-1000", "-500"]),
    (-0.52, 0.71, [-0.5, 0.0, 0.5], ["-0.5", "0", "0.5"]),
    (0.04, 0.09, [0.04, 0.06, 0.08], ["0.04", "0.06", "0.08"]),
    (12_000.0, 48_000.0, [20_000.0, 30_000.0, 40_000.0], ["20k", "30k", "40k"]),
])
def test_value_ticks_are_round_numbers_inside_the_range(low, high, ticks, labels) -> None:
    assert value_ticks(low, high, most=4) == (pytest.approx(ticks), labels)


def test_value_ticks_give_two_ticks_even_when_the_range_falls_between_round_ones() -> None:
    ticks, _ = value_ticks(0.12, 0.31, most=2)
    assert len(ticks) >= 2 and all(0.12 <= t <= 0.31 for t in ticks)


def test_the_sigma_sparkline_falls_with_a_decay_and_is_flat_when_constant() -> None:
    assert sparkline([0.3, 0.2, 0.1], 3) == "█▆▃"
    assert sparkline([0.1] * 50, 10) == "▄" * 10
    assert len(sparkline([float(i) for i in range(240)], 17)) == 17
