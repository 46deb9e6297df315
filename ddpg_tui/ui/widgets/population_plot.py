"""A population's curves: every member faintly, the median over members and its interquartile band boldly.

That is what a reader of a seeds plot looks at: the median says where the config goes, the
band how far its seeds disagree, and the faint members show the one seed that does
something else. Members end their episodes at different steps, so the band is taken on the
steps where any member has a point, each member counted at its latest value up to that step.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from textual import events

from ddpg_tui.ui.population_session import PopulationSnapshot
from ddpg_tui.ui.widgets.plots import (
    MAX_POINTS,
    TitledPlot,
    fitted_count_ticks,
    moving_average,
    thin,
    value_ticks,
)

Curve = tuple[Sequence[float], Sequence[float]]  # (steps, values), steps increasing
SMOOTHING = 10  # episodes in each member's moving average: raw returns of eight seeds are a blur


@dataclass(frozen=True)
class Band:
    """The median and quartiles over the members at each of `steps`."""

    steps: tuple[float, ...] = ()
    median: tuple[float, ...] = ()
    q1: tuple[float, ...] = ()
    q3: tuple[float, ...] = ()


def band_over_members(curves: Sequence[Curve], limit: int = MAX_POINTS) -> Band:
    """The band from the first step at which every member has a value; empty until then.

    At most `limit` steps, evenly chosen, always keeping the last.
    """
    if not curves or any(len(steps) == 0 for steps, _ in curves):
        return Band()
    arrays = [(np.asarray(steps, dtype=float), np.asarray(values, dtype=float)) for steps, values in curves]
    start = max(steps[0] for steps, _ in arrays)
    grid = np.unique(np.concatenate([steps for steps, _ in arrays]))
    grid = grid[grid >= start]
    if len(grid) > limit:
        stride = -(-len(grid) // limit)
        grid = np.unique(np.append(grid[::stride], grid[-1]))
    # Each member's latest value at or before each grid step: [members, steps].
    values = np.stack([values[np.searchsorted(steps, grid, side="right") - 1] for steps, values in arrays])
    q1, median, q3 = np.percentile(values, [25, 50, 75], axis=0)
    return Band(tuple(grid.tolist()), tuple(median.tolist()), tuple(q1.tolist()), tuple(q3.tolist()))


@dataclass(frozen=True)
class PlotData:
    """What a population plot drew last: the members' curves and the band (tests read this, not pixels)."""

    members: tuple[Curve, ...] = ()
    band: Band = field(default_factory=Band)


def episode_curves(snapshot: PopulationSnapshot) -> list[Curve]:
    return [(m.episode_steps, moving_average(m.episode_returns, SMOOTHING)) for m in snapshot.members]


def eval_curves(snapshot: PopulationSnapshot) -> list[Curve]:
    return [([e.step for e in m.evals], [e.mean for e in m.evals]) for m in snapshot.members]


# What each plot shows: its title (long, and short for narrow plots), and the members' curves it takes from a snapshot.
KINDS: dict[str, tuple[tuple[str, str], Callable[[PopulationSnapshot], list[Curve]]]] = {
    "episodes": (("Episode return (mean of 10)", "Return, mean of 10"), episode_curves),
    "evals": (("Evaluation return (noise off)", "Eval return"), eval_curves),
}


class PopulationPlot(TitledPlot):
    """One quantity of every member against env steps: episode returns, or evaluations."""

    # RGB, as ddpg_tui/ui/widgets/overlay_plot.py gives plotext: a dim member under a bright median.
    MEMBER, QUARTILE, MEDIAN = (88, 88, 88), (0, 135, 175), (80, 225, 255)

    def __init__(self, kind: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.titles, self._curves = KINDS[kind]
        self.kind = kind
        self.data = PlotData()
        self._drawn: tuple[int, ...] = ()

    def legend(self, width: int) -> str:
        """The title and the legend, in the longest wording that fits `width` columns (about 44 at 80x24)."""
        long_title, short_title = self.titles
        for title, members, median, band, gap in (
                (long_title, "each seed", "median", "interquartile range", "  "),
                (long_title, "seeds", "median", "IQR", "  "),
                (short_title, "seeds", "median", "IQR", " "),
                (short_title, "seed", "med", "IQR", " ")):
            plain = f"{title}{gap}⣀⣀ {members}{gap}⣀⣀ {median}{gap}⣀⣀ {band}"
            if len(plain) <= width - 2:
                break
        colour = "#{:02x}{:02x}{:02x}".format
        return (f"{title}{gap}[{colour(*self.MEMBER)}]⣀⣀ {members}[/]{gap}[bold {colour(*self.MEDIAN)}]⣀⣀ "
                f"{median}[/]{gap}[{colour(*self.QUARTILE)}]⣀⣀ {band}[/]")

    def on_resize(self, event: events.Resize) -> None:
        # Textual calls TitledPlot.on_resize as well, which redraws.
        self.border_title = self.legend(event.size.width)

    def show(self, snapshot: PopulationSnapshot) -> None:
        # Told apart by their lengths before any curve is built: the moving averages are the costly part.
        key = tuple(len(m.episode_steps) if self.kind == "episodes" else len(m.evals) for m in snapshot.members)
        if key == self._drawn:
            return
        self._drawn = key
        curves = self._curves(snapshot)
        self.data = PlotData(tuple((tuple(s), tuple(v)) for s, v in curves), band_over_members(curves))
        self.redraw()

    def redraw(self) -> None:
        plt = self.plt
        plt.clear_data()
        plt.xlabel("env steps")
        members, band = self.data.members, self.data.band
        for steps, values in members:
            if steps:
                plt.plot(*thin(steps, values), marker="braille", color=self.MEMBER)
        if band.steps:
            for edge in (band.q1, band.q3):
                plt.plot(list(band.steps), list(edge), marker="braille", color=self.QUARTILE)
            plt.plot(list(band.steps), list(band.median), marker="braille", color=self.MEDIAN, style="bold")
            if self.kind == "evals":  # a few evaluations: each median must show even where no line joins them
                plt.scatter(list(band.steps), list(band.median), marker="●", color=self.MEDIAN)
        xs = [x for steps, _ in members for x in steps]
        ys = [y for _, values in members for y in values]
        if xs:
            plt.xticks(*fitted_count_ticks(max(xs), self.columns(), smallest=min(xs)))
            plt.yticks(*value_ticks(min(ys), max(ys), most=max(2, min(5, self.rows() // 2))))
        self.refresh()
