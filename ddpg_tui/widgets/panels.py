"""Text panels: run status (with exploration noise and the replay buffer), and the event log."""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from typing import Any

from rich.table import Table
from rich.text import Text
from textual import events
from textual.widgets import RichLog, Static

from agents.events import TrainerState
from ddpg_tui.session import LOG_LINES, LogLine, Snapshot

STATE_STYLES = {
    TrainerState.STARTING: "dim", TrainerState.WARMING_UP: "yellow", TrainerState.TRAINING: "bold green",
    TrainerState.PAUSED: "bold yellow", TrainerState.EVALUATING: "bold cyan", TrainerState.FINISHED: "bold blue",
    TrainerState.STOPPED: "bold", TrainerState.ERROR: "bold red",
}
LOG_STYLES = {"eval": "cyan", "save": "blue", "config": "magenta", "state": "yellow", "warning": "yellow",
              "error": "bold red", "info": ""}
LABEL_WIDTH = 7  # "steps/s", the longest label of the status panel
BLOCKS = "▁▂▃▄▅▆▇█"


def duration(seconds: float) -> str:
    seconds = int(seconds)
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02}:{rest % 60:02}" if hours else f"{rest // 60}:{rest % 60:02}"


def short_count(value: int) -> str:
    """12k, 1.5M: the buffer row must fit the side column at 80 columns."""
    for divisor, suffix in ((1_000_000, "M"), (1_000, "k")):
        if value >= divisor:
            return f"{value / divisor:.3g}{suffix}"
    return str(value)


def sparkline(values: Sequence[float], width: int) -> str:
    """The history in `width` block characters, scaled from 0 to its largest value (a decay reads as a fall)."""
    if width <= 0 or not values:
        return ""
    if len(values) > width:  # evenly spaced samples, always the newest last
        step = (len(values) - 1) / (width - 1) if width > 1 else 0
        values = [values[round(i * step)] for i in range(width - 1)] + [values[-1]]
    top = max(values)
    if top <= 0:
        return BLOCKS[0] * len(values)
    if min(values) == top:  # constant: a flat line at mid height, not a solid block
        return BLOCKS[3] * len(values)
    return "".join(BLOCKS[min(int(v / top * (len(BLOCKS) - 1) + 0.5), len(BLOCKS) - 1)] for v in values)


def bar(fraction: float, width: int) -> Text:
    filled = round(max(0.0, min(fraction, 1.0)) * width)
    return Text.assemble(("━" * filled, "green"), ("━" * (width - filled), "grey30"))


class StatusPanel(Static):
    """State, progress, evaluations, the noise's sigma and its history, and the replay buffer's fill.

    Noise and buffer are rows here rather than panels of their own: at 80x24 two more
    panels with titles left the event log two lines.
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._snapshot: Snapshot | None = None

    def on_resize(self, event: events.Resize) -> None:
        if self._snapshot is not None:
            self.show(self._snapshot)  # the sparkline and the bar are as wide as the panel

    def show(self, snapshot: Snapshot) -> None:
        self._snapshot = snapshot
        value_width = max(self.content_size.width - LABEL_WIDTH - 1, 8)
        table = Table.grid(padding=(0, 1))
        table.add_column(style="dim", no_wrap=True, min_width=LABEL_WIDTH)
        table.add_column(no_wrap=True, overflow="ellipsis")
        state = Text(snapshot.state.value, style=STATE_STYLES.get(snapshot.state, ""))
        table.add_row("state", state)
        if snapshot.message and snapshot.state == TrainerState.ERROR:
            table.add_row("", Text(snapshot.message, style="red", overflow="fold"))
        p = snapshot.progress
        if p is not None:
            remaining = (p.total_steps - p.step) / p.steps_per_second if p.steps_per_second else None
            table.add_row("step", f"{p.step:,} / {p.total_steps:,}")
            table.add_row("episode", f"{p.episode:,}")
            table.add_row("steps/s", f"{p.steps_per_second:,.0f}" if p.steps_per_second else "-")
            eta = duration(remaining) if remaining is not None and snapshot.active else "-"
            table.add_row("elapsed", f"{duration(p.elapsed)}  eta {eta}")
        last = snapshot.evals[-1] if snapshot.evals else None
        best = snapshot.best_eval
        table.add_row("eval", f"{last.mean:,.1f} ± {last.std:,.0f} @{last.step:,}" if last else "-")
        table.add_row("best", f"{best.mean:,.1f} ± {best.std:,.0f} @{best.step:,}" if best else "-")
        if p is not None and snapshot.sigma_history:
            sigma = f"σ {p.noise_sigma:.3f} "
            table.add_row("noise", Text.assemble(sigma, (sparkline(snapshot.sigma_history,
                                                                    value_width - len(sigma)), "cyan")))
        if p is not None and p.buffer_capacity:
            fill = f"{short_count(p.buffer_size)} / {short_count(p.buffer_capacity)} "
            percent = f" {p.buffer_size / p.buffer_capacity:.0%}"
            room = max(value_width - len(fill) - len(percent), 3)
            table.add_row("buffer", Text.assemble(fill, bar(p.buffer_size / p.buffer_capacity, room), percent))
        self.update(table)


class EventLog(RichLog):
    """The session's log lines, wrapped to the panel's width (never scrolled sideways).

    Each line is a step column and a text column, so a wrapped text keeps to its column.
    RichLog wraps a line once, when it is written; on a change of width (a resize, or
    the log maximized with `l`) every kept line is written again at the new width.
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(max_lines=LOG_LINES, wrap=True, min_width=1, markup=False, **kwargs)
        self._shown = 0
        self._kept: deque[LogLine] = deque(maxlen=LOG_LINES)
        self._width = 0

    def show(self, snapshot: Snapshot) -> None:
        for line in snapshot.log:
            if line[0] > self._shown:
                self._kept.append(line)
                self._write(line)
                self._shown = line[0]

    def _write(self, line: LogLine) -> None:
        _, level, step, text = line
        grid = Table.grid(padding=(0, 1))
        grid.add_column(justify="right", style="dim", no_wrap=True, min_width=7)
        grid.add_column(overflow="fold")
        grid.add_row(f"{step:,}", Text(text, style=LOG_STYLES.get(level, "")))
        self.write(grid)

    def on_resize(self, event: events.Resize) -> None:
        # RichLog's own on_resize runs after this one and writes what was deferred before the first size.
        width = event.size.width
        if self._width and width != self._width:
            self.clear()
            for line in self._kept:
                self._write(line)
        self._width = width
