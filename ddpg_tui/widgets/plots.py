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
        self.refresh()
