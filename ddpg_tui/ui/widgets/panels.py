"""Text panels: run status (with exploration noise and the replay buffer), and the event log."""

from __future__ import annotations

import textwrap
from collections import deque
from collections.abc import Sequence
from typing import Any

from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual import events
from textual.geometry import Size
from textual.scroll_view import ScrollView
from textual.strip import Strip
from textual.widgets import Static

from agents.events import TrainerState
from ddpg_tui.ui.session import LOG_LINES, LogLine, Snapshot

STATE_STYLES = {
    TrainerState.STARTING: "dim", TrainerState.WARMING_UP: "yellow", TrainerState.TRAINING: "bold green",
    TrainerState.PAUSED: "bold yellow", TrainerState.EVALUATING: "bold cyan", TrainerState.FINISHED: "bold blue",
    TrainerState.STOPPED: "bold", TrainerState.ERROR: "bold red",
}
LOG_STYLES = {"eval": "cyan", "save": "blue", "config": "magenta", "state": "yellow", "warning": "yellow",
              "error": "bold red", "info": ""}
LABEL_WIDTH = 7  # "steps/s", the longest label of the status panel
STEP_COLUMN = 7  # the event log's step column: up to 999,999 steps; longer steps push their text right
DIM = Style(dim=True)
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
        self._rows = 0  # rows in the table last shown: its height, with `height: auto`

    def on_resize(self, event: events.Resize) -> None:
        if self._snapshot is not None:
            self.show(self._snapshot)  # the sparkline and the bar are as wide as the panel

    def show(self, snapshot: Snapshot) -> None:
        self._snapshot = snapshot
        value_width = max(self.content_size.width - LABEL_WIDTH - 1, 8)
        rows: list[tuple[str, str | Text]] = [("state", Text(snapshot.state.value,
                                                             style=STATE_STYLES.get(snapshot.state, "")))]
        if snapshot.message and snapshot.state == TrainerState.ERROR:
            rows += [("", Text(line, style="red")) for line in textwrap.wrap(snapshot.message, value_width)]
        p = snapshot.progress
        if p is not None:
            remaining = (p.total_steps - p.step) / p.steps_per_second if p.steps_per_second else None
            rows.append(("step", f"{p.step:,} / {p.total_steps:,}"))
            rows.append(("episode", f"{p.episode:,}"))
            rows.append(("steps/s", f"{p.steps_per_second:,.0f}" if p.steps_per_second else "-"))
            eta = duration(remaining) if remaining is not None and snapshot.active else "-"
            rows.append(("elapsed", f"{duration(p.elapsed)}  eta {eta}"))
        last = snapshot.evals[-1] if snapshot.evals else None
        best = snapshot.best_eval
        rows.append(("eval", f"{last.mean:,.1f} ± {last.std:,.0f} @{last.step:,}" if last else "-"))
        rows.append(("best", f"{best.mean:,.1f} ± {best.std:,.0f} @{best.step:,}" if best else "-"))
        if p is not None and snapshot.sigma_history:
            sigma = f"σ {p.noise_sigma:.3f} "
            rows.append(("noise", Text.assemble(sigma, (sparkline(snapshot.sigma_history,
                                                                   value_width - len(sigma)), "cyan"))))
        if p is not None and p.buffer_capacity:
            fill = f"{short_count(p.buffer_size)} / {short_count(p.buffer_capacity)} "
            percent = f" {p.buffer_size / p.buffer_capacity:.0%}"
            room = max(value_width - len(fill) - len(percent), 3)
            rows.append(("buffer", Text.assemble(fill, bar(p.buffer_size / p.buffer_capacity, room), percent)))
        # Plain lines of Text, not a rich Table: laying a table out took most of each tick's drawing, and
        # the labels have one fixed width anyway. A value too long for the panel ends in an ellipsis.
        lines = []
        for label, value in rows:
            text = value if isinstance(value, Text) else Text(value)
            text.truncate(value_width, overflow="ellipsis")
            lines.append(Text.assemble((label.ljust(LABEL_WIDTH), "dim"), " ", text))
        # A layout pass re-renders every widget on the screen, the plots' plotext figures included: at 4 Hz that
        # was most of the UI thread's time, taken from training (the GIL). Only a change of height needs one.
        resized = len(lines) != self._rows
        self._rows = len(lines)
        self.update(Text("\n").join(lines), layout=resized)


class EventLog(ScrollView, can_focus=True):
    """The session's log lines, wrapped to the panel's width (never scrolled sideways).

    Each line is a step column and a text column; a long text wraps within its column.
    Lines are wrapped as plain text and drawn one screen line at a time (Textual's line
    API), so that a change of width (a resize, or the log maximized with `l`) re-wraps
    the thousand kept lines in milliseconds: RichLog renders every line when it is
    written and took 0.8 s to write them again.
    """

    ALLOW_MAXIMIZE = True
    DEFAULT_CSS = """
    EventLog {
        overflow-x: hidden;
        overflow-y: auto;
    }
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._shown = 0
        self._kept: deque[LogLine] = deque(maxlen=LOG_LINES)
        self._rows: list[tuple[str, str, str]] = []  # (step column, text, level) of each screen line
        self._width = 0  # the text width the rows were wrapped at
        # Whether new lines scroll into view: true while the user has not scrolled up from the end.
        # Kept as a flag, not read off the geometry when lines arrive: when the log shrinks back from
        # maximized (l twice), the scroll offset is unchanged but the end moved down, so it looked
        # scrolled up and stopped following for good.
        self._follow = True

    def show(self, snapshot: Snapshot) -> None:
        new = [line for line in snapshot.log if line[0] > self._shown]
        if not new:
            return
        self._shown = new[-1][0]
        dropped = len(self._kept) + len(new) > LOG_LINES
        self._kept.extend(new)
        if dropped or not self._width:
            self._rewrap()
        else:
            for line in new:
                self._rows.extend(self._wrap(line))
            self._resize_virtual()
        if self._follow:
            self.scroll_end(animate=False, immediate=False, x_axis=False)

    def watch_scroll_y(self, old_value: float, new_value: float) -> None:
        super().watch_scroll_y(old_value, new_value)
        # Only a scroll changes it: the user's, ours to the end, or a clamp when the log grows.
        self._follow = new_value >= self.max_scroll_y

    def _text_width(self) -> int:
        """The text column's width for a step of up to STEP_COLUMN characters (the width rows are wrapped for)."""
        return max(self.scrollable_content_region.width - STEP_COLUMN - 1, 8)

    def _wrap(self, line: LogLine) -> list[tuple[str, str, str]]:
        _, level, step, text = line
        column = f"{step:,}".rjust(STEP_COLUMN)  # a longer step widens its own line's column
        width = max(self._width - (len(column) - STEP_COLUMN), 8)
        pieces = textwrap.wrap(text, width, break_on_hyphens=False) or [""]
        return [(column if i == 0 else " " * len(column), piece, level) for i, piece in enumerate(pieces)]

    def _rewrap(self) -> None:
        self._width = self._text_width()
        self._rows = [row for line in self._kept for row in self._wrap(line)]
        self._resize_virtual()

    def _resize_virtual(self) -> None:
        self.virtual_size = Size(self.scrollable_content_region.width, len(self._rows))
        self.refresh()

    def on_resize(self, event: events.Resize) -> None:
        if self._text_width() != self._width:
            self._rewrap()
        if self._follow:  # also at the same width: a shorter log has its end further down
            self.scroll_end(animate=False, immediate=False, x_axis=False)

    def render_line(self, y: int) -> Strip:
        width = self.scrollable_content_region.width
        base = self.rich_style
        index = self.scroll_offset.y + y
        if index >= len(self._rows):
            return Strip.blank(width, base)
        step, text, level = self._rows[index]
        style = base + Style.parse(LOG_STYLES.get(level) or "none")
        segments = [Segment(step + " ", base + DIM), Segment(text, style)]
        return Strip(segments).crop_extend(0, width, base)
