"""Text panels: run status, exploration noise, replay buffer, and the event log."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Label, ProgressBar, RichLog, Sparkline, Static

from agents.events import TrainerState
from ddpg_tui.session import Snapshot

STATE_STYLES = {
    TrainerState.STARTING: "dim", TrainerState.WARMING_UP: "yellow", TrainerState.TRAINING: "bold green",
    TrainerState.PAUSED: "bold yellow", TrainerState.EVALUATING: "bold cyan", TrainerState.FINISHED: "bold blue",
    TrainerState.STOPPED: "bold", TrainerState.ERROR: "bold red",
}
LOG_STYLES = {"eval": "cyan", "save": "blue", "config": "magenta", "state": "yellow", "warning": "yellow",
              "error": "bold red", "info": ""}


def duration(seconds: float) -> str:
    seconds = int(seconds)
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02}:{rest % 60:02}" if hours else f"{rest // 60}:{rest % 60:02}"


class StatusPanel(Static):
    def show(self, snapshot: Snapshot) -> None:
        table = Table.grid(padding=(0, 1))
        table.add_column(style="dim", no_wrap=True)
        table.add_column(no_wrap=True, overflow="ellipsis")
        state = Text(snapshot.state.value, style=STATE_STYLES.get(snapshot.state, ""))
        table.add_row("state", state)
        if snapshot.message and snapshot.state == TrainerState.ERROR:
            table.add_row("", Text(snapshot.message, style="red"))
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
        self.update(table)


class NoisePanel(Vertical):
    def compose(self) -> ComposeResult:
        yield Label("sigma -", id="sigma-value")
        yield Sparkline([], id="sigma-history")

    def show(self, snapshot: Snapshot) -> None:
        if snapshot.progress is None:
            return
        self.query_one("#sigma-value", Label).update(f"sigma {snapshot.progress.noise_sigma:.3f}")
        self.query_one("#sigma-history", Sparkline).data = list(snapshot.sigma_history)


class BufferPanel(Vertical):
    def compose(self) -> ComposeResult:
        yield Label("0 / 0", id="buffer-count")
        yield ProgressBar(total=1, show_eta=False, id="buffer-bar")

    def show(self, snapshot: Snapshot) -> None:
        p = snapshot.progress
        if p is None:
            return
        self.query_one("#buffer-count", Label).update(f"{p.buffer_size:,} / {p.buffer_capacity:,}")
        self.query_one("#buffer-bar", ProgressBar).update(total=p.buffer_capacity, progress=p.buffer_size)


class EventLog(RichLog):
    """Appends the log lines it has not shown yet; the session keeps the last thousand."""

    def __init__(self, **kwargs) -> None:
        super().__init__(max_lines=1000, wrap=False, markup=False, **kwargs)
        self._shown = 0

    def show(self, snapshot: Snapshot) -> None:
        for number, level, text in snapshot.log:
            if number > self._shown:
                self.write(Text(text, style=LOG_STYLES.get(level, "")))
                self._shown = number
