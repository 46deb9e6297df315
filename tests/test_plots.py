"""The dashboard plots' helpers: thinning, the moving average and round axis ticks."""

from __future__ import annotations

import pytest

from ddpg_tui.ui.widgets.plots import count_ticks, moving_average, thin


def test_thin_keeps_at_most_the_limit_and_always_the_last_point() -> None:
    xs = list(range(1001))
    x, y = thin(xs, [2 * v for v in xs], limit=100)
    assert len(x) <= 101 and x[0] == 0 and x[-1] == 1000
    assert y == [2 * v for v in x]
    assert thin([1, 2], [3, 4], limit=5) == ([1, 2], [3, 4])


def test_moving_average_over_a_short_start_and_a_full_window() -> None:
    assert moving_average([1.0, 3.0, 5.0, 7.0], window=2) == [1.0, 2.0, 4.0, 6.0]


@pytest.mark.parametrize(("largest", "ticks", "labels"), [
    (300_000, [0, 100_000, 200_000, 300_000], ["0", "100k", "200k", "300k"]),
    (27_672, [0, 10_000, 20_000], ["0", "10k", "20k"]),
    (1_500_000, [0, 500_000, 1_000_000, 1_500_000], ["0", "500k", "1M", "1.5M"]),
    (999, [0, 200, 400, 600, 800], ["0", "200", "400", "600", "800"]),
    (3, [0, 1, 2, 3], ["0", "1", "2", "3"]),
    (0, [0], ["0"]),
])
def test_count_ticks_are_round_integers_with_short_labels(largest, ticks, labels) -> None:
    assert count_ticks(largest) == (ticks, labels)
