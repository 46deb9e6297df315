"""Line plots of rewards and losses (textual-plotext).

Each plot's title (and the return plot's legend) is its top border's title, not plotext's:
plotext draws its legend inside the canvas, over the start of the curves, and has no
other place for it. Axis ticks are round numbers, as many as fit the plot's width, so
that plotext never has to drop a label that would overlap its neighbour (which left
uneven gaps such as `0 500  1.5k 2k`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from textual import events
from textual_plotext import PlotextPlot

from ddpg_tui.ui.session import Snapshot

MAX_POINTS = 400  # more points than terminal columns only costs drawing time
Y_LABEL_ROOM = 8  # columns plotext takes left of the canvas for y tick labels and the axis, about


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


def fitted_count_ticks(largest: float, columns: int, smallest: float = 0) -> tuple[list[int], list[str]]:
    """`count_ticks` with as many ticks as fit `columns`: each gap must hold the longer label and a space.

    The axis runs from `smallest` to `largest`, as plotext draws it.
    """
    span = max(largest - smallest, 1e-9)
    for most in range(6, 0, -1):
        ticks, labels = count_ticks(largest, most, smallest)
        if len(ticks) < 2:
            return ticks, labels
        gap = (ticks[1] - ticks[0]) / span * columns
        if gap >= max(len(label) for label in labels) + 2:
            return ticks, labels
    return ticks[:1], labels[:1]


def value_ticks(low: float, high: float, most: int = 5) -> tuple[list[float], list[str]]:
    """Round ticks (1, 2 or 5 times a power of ten) inside [low, high], with short labels: -1200, 0.05, 15k."""
    if not (math.isfinite(low) and math.isfinite(high)) or high <= low:
        return [low], [_short_value(low)]
    for wanted in (most, 2 * most, 4 * most):  # a narrow range can fall between two round ticks: at least two
        raw = (high - low) / max(wanted, 1)
        magnitude = 10 ** math.floor(math.log10(raw))
        spacing = next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw)
        first = math.ceil(low / spacing)
        ticks = [round(i * spacing, 12) for i in range(first, math.floor(high / spacing) + 1)]
        if len(ticks) >= 2:
            break
    return ticks, [_short_value(t) for t in ticks]


def _short_value(value: float) -> str:
    if abs(value) >= 10_000:
        return f"{value / 1000:g}k"
    return f"{value:.6g}"


class TitledPlot(PlotextPlot):
    """A plot whose title sits in its top border, left-aligned, where it never covers data."""

    DEFAULT_CSS = """
    TitledPlot {
        border-top: blank;
        border-title-align: left;
        border-title-style: bold;
    }
    """

    def rows(self) -> int:
        """The canvas height in rows, about: the widget less the x axis, its ticks and its label."""
        return max(self.content_size.height - 3, 2)

    def columns(self) -> int:
        return max(self.content_size.width - Y_LABEL_ROOM, 10)

    def on_resize(self, event: events.Resize) -> None:
        self.redraw()  # the ticks are chosen for the width

    def redraw(self) -> None:
        raise NotImplementedError


class RewardPlot(TitledPlot):
    """Episode returns against env steps, their moving average, and evaluations as points."""

    # Plotext's colour names, and the same colours in the border title's markup.
    EPISODE, AVERAGE, EVALUATION = "gray", "cyan", "orange"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._drawn: tuple[int, int] = (-1, -1)
        self._snapshot = Snapshot()

    def legend(self, width: int) -> str:
        """The title and the legend, in the longest wording that fits `width` columns."""
        for title, episodes, average, evaluations, gap in (
                ("Episode return", "episodes", "mean of 10", "evaluations (noise off)", "  "),
                ("Episode return", "episode", "mean of 10", "eval", "  "),
                ("Return", "episode", "mean of 10", "eval", " "),
                ("Return", "ep", "mean", "eval", " ")):
            plain = f"{title}{gap}⣀⣀ {episodes}{gap}⣀⣀ {average}{gap}● {evaluations}"
            if len(plain) <= width - 2:
                break
        return (f"{title}{gap}[{self.EPISODE}]⣀⣀ {episodes}[/]{gap}[{self.AVERAGE}]⣀⣀ {average}[/]{gap}"
                f"[{self.EVALUATION}]● {evaluations}[/]")

    def on_resize(self, event: events.Resize) -> None:
        # Textual calls TitledPlot.on_resize as well, which redraws.
        self.border_title = self.legend(event.size.width)

    def show(self, snapshot: Snapshot) -> None:
        key = (len(snapshot.episode_returns), len(snapshot.evals))
        if key == self._drawn:
            return
        self._drawn = key
        self._snapshot = snapshot
        self.redraw()

    def redraw(self) -> None:
        snapshot = self._snapshot
        plt = self.plt
        plt.clear_data()
        plt.xlabel("env steps")
        steps, returns = snapshot.episode_steps, snapshot.episode_returns
        values: list[float] = list(returns) + [e.mean for e in snapshot.evals]
        if steps:
            x, y = thin(steps, returns)
            plt.plot(x, y, marker="braille", color=self.EPISODE)
            x, ma = thin(steps, moving_average(returns, 10))
            plt.plot(x, ma, marker="braille", color=self.AVERAGE)
        if snapshot.evals:
            plt.scatter([e.step for e in snapshot.evals], [e.mean for e in snapshot.evals],
                        marker="●", color=self.EVALUATION)
        xs = list(steps) + [e.step for e in snapshot.evals]
        if xs:
            plt.xticks(*fitted_count_ticks(max(xs), self.columns(), smallest=min(xs)))
            plt.yticks(*value_ticks(min(values), max(values), most=max(2, min(5, self.rows() // 2))))
        self.refresh()


class LossPlot(TitledPlot):
    """One loss over updates; `log_scale` keeps spikes from flattening the rest."""

    def __init__(self, title: str, attribute: str, log_scale: bool, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.title, self.attribute, self.log_scale = title, attribute, log_scale
        self._drawn = -1
        self._snapshot = Snapshot()

    def on_mount(self) -> None:
        self.border_title = f"{self.title} (log10)" if self.log_scale else self.title

    def show(self, snapshot: Snapshot) -> None:
        values: tuple[float, ...] = getattr(snapshot, self.attribute)
        if len(values) == self._drawn:
            return
        self._drawn = len(values)
        self._snapshot = snapshot
        self.redraw()

    def redraw(self) -> None:
        values: tuple[float, ...] = getattr(self._snapshot, self.attribute)
        plt = self.plt
        plt.clear_data()
        plt.xlabel("updates")
        if values:
            x, y = thin(self._snapshot.loss_updates, values)
            if self.log_scale:
                y = [math.log10(max(v, 1e-8)) for v in y]
            plt.plot(x, y, marker="braille", color="magenta" if self.log_scale else "green")
            plt.xticks(*fitted_count_ticks(x[-1], self.columns(), smallest=x[0]))
            plt.yticks(*value_ticks(min(y), max(y), most=max(2, min(5, self.rows() // 2))))
        self.refresh()
