"""Line plots of rewards and losses (textual-plotext)."""

from __future__ import annotations

import math
from collections.abc import Sequence

from textual_plotext import PlotextPlot

from ddpg_tui.session import Snapshot

MAX_POINTS = 400  # more points than terminal columns only costs drawing time


def thin(xs: Sequence[float], ys: Sequence[float], limit: int = MAX_POINTS) -> tuple[list[float], list[float]]:
    """Every k-th point so that at most `limit` remain, always keeping the last."""
    if len(xs) <= limit:
        return list(xs), list(ys)
    stride = math.ceil(len(xs) / limit)
    idx = list(range(0, len(xs), stride))
    if idx[-1] != len(xs) - 1:
        idx.append(len(xs) - 1)
    return [xs[i] for i in idx], [ys[i] for i in idx]


def moving_average(values: Sequence[float], window: int) -> list[float]:
    out, total = [], 0.0
    for i, value in enumerate(values):
        total += value
        if i >= window:
            total -= values[i - window]
        out.append(total / min(i + 1, window))
    return out


def count_ticks(largest: float, most: int = 5, smallest: float = 0) -> tuple[list[int], list[str]]:
    """Round tick positions (1, 2 or 5 times a power of ten) from `smallest` up to `largest`,
    labelled 20k or 1.5M: plotext's own ticks are fractions such as 2767.2 steps."""
    if largest <= 0:
        return [0], ["0"]
    raw = largest / most
    magnitude = 10 ** math.floor(math.log10(raw))
    spacing = next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw)
    spacing = max(int(spacing), 1)
    ticks = [tick for tick in range(0, int(largest) + 1, spacing) if tick >= smallest]
    return ticks, [_short_count(t) for t in ticks]


def _short_count(value: int) -> str:
    for divisor, suffix in ((1_000_000, "M"), (1_000, "k")):
        if value >= divisor:
            return f"{value / divisor:g}{suffix}"
    return str(value)


class RewardPlot(PlotextPlot):
    """Episode returns against env steps, their moving average, and evaluations as points."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self._drawn: tuple[int, int] = (-1, -1)

    def show(self, snapshot: Snapshot) -> None:
        key = (len(snapshot.episode_returns), len(snapshot.evals))
        if key == self._drawn:
            return
        self._drawn = key
        plt = self.plt
        plt.clear_data()
        plt.title("Episode return")
        plt.xlabel("env steps")
        steps, returns = snapshot.episode_steps, snapshot.episode_returns
        if steps:
            x, y = thin(steps, returns)
            plt.plot(x, y, marker="braille", label="episode", color="gray")
            x, ma = thin(steps, moving_average(returns, 10))
            plt.plot(x, ma, marker="braille", label="mean of 10", color="cyan")
            plt.xticks(*count_ticks(steps[-1]))
        if snapshot.evals:
            plt.scatter([e.step for e in snapshot.evals], [e.mean for e in snapshot.evals],
                        marker="●", label="evaluation", color="orange")
        self.refresh()


class LossPlot(PlotextPlot):
    """One loss over updates; `log_scale` keeps spikes from flattening the rest."""

    def __init__(self, title: str, attribute: str, log_scale: bool, **kwargs) -> None:
        super().__init__(**kwargs)
        self.title, self.attribute, self.log_scale = title, attribute, log_scale
        self._drawn = -1

    def show(self, snapshot: Snapshot) -> None:
        values: tuple[float, ...] = getattr(snapshot, self.attribute)
        if len(values) == self._drawn:
            return
        self._drawn = len(values)
        plt = self.plt
        plt.clear_data()
        plt.title(self.title)
        plt.xlabel("updates")
        if values:
            x, y = thin(snapshot.loss_updates, values)
            if self.log_scale:
                y = [math.log10(max(v, 1e-8)) for v in y]
                plt.ylabel("log10")
            plt.plot(x, y, marker="braille", color="magenta" if self.log_scale else "green")
            plt.xticks(*count_ticks(x[-1]))
        self.refresh()
