"""Evaluation return of many configs on one plot: a colour per config, as W&B does.

Each config is its median over seeds, drawn bold in its colour, with the min and max over
seeds as two faint lines of the same colour: the band shows at a glance whether two configs
differ by more than their seeds do. A config keeps its colour on every screen (its index in
the sweep's order), so the table's coloured names are the legend.
"""

from __future__ import annotations

from collections.abc import Sequence

from textual_plotext import PlotextPlot

from ddpg_tui.sweeps.history import Series
from ddpg_tui.ui.widgets.plots import count_ticks, thin

# Tableau's ten, the palette W&B and matplotlib use: distinct on dark and light backgrounds.
PALETTE: tuple[tuple[int, int, int], ...] = (
    (31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189),
    (140, 86, 75), (227, 119, 194), (127, 127, 127), (188, 189, 34), (23, 190, 207),
)


def colour(index: int) -> tuple[int, int, int]:
    return PALETTE[index % len(PALETTE)]


def faint(index: int) -> tuple[int, int, int]:
    """The colour mixed 60% into a dark background: a band, not a line competing with the median."""
    return tuple(int(c * 0.4 + 24 * 0.6) for c in colour(index))  # type: ignore[return-value]


def hex_colour(index: int) -> str:
    return "#{:02x}{:02x}{:02x}".format(*colour(index))


class OverlayPlot(PlotextPlot):
    """Eval return against env steps, one median line (and min-max band) per config."""

    def __init__(self, title: str = "Evaluation return (median over seeds, min-max band)", **kwargs) -> None:
        super().__init__(**kwargs)
        self.title = title
        self._drawn: object = None

    def show(self, series: Sequence[Series], colours: Sequence[int] | None = None,
             threshold: float | None = None, legend: bool = False) -> None:
        """Draw `series`; `colours[i]` is series i's palette index (default: its position)."""
        key = (tuple((s.label, s.steps, s.median) for s in series), tuple(colours or ()), threshold, legend)
        if key == self._drawn:
            return
        self._drawn = key
        plt = self.plt
        plt.clear_data()
        plt.title(self.title)
        plt.xlabel("env steps")
        largest, smallest = 0, None
        for position, s in enumerate(series):
            if not s.steps:
                continue
            index = colours[position] if colours else position
            if s.seeds > 1:
                for band in (s.low, s.high):
                    x, y = thin(s.steps, band)
                    plt.plot(x, y, marker="braille", color=faint(index))
            x, y = thin(s.steps, s.median)
            plt.plot(x, y, marker="braille", color=colour(index), label=s.label if legend else None)
            largest = max(largest, s.steps[-1])
            smallest = s.steps[0] if smallest is None else min(smallest, s.steps[0])
        if largest:
            plt.xticks(*count_ticks(largest, smallest=smallest or 0))
            if threshold is not None:
                plt.hline(threshold, color="gray")
        self.refresh()
