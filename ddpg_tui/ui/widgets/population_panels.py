"""A population's text panels: its status (one step, one speed, one state for all members) and a row per member."""

from __future__ import annotations

from typing import Any

from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual.widgets import DataTable, Static

from agents.events import TrainerState
from ddpg_tui.population import quartiles
from ddpg_tui.ui.population_session import PopulationSnapshot
from ddpg_tui.ui.widgets.panels import LABEL_WIDTH, STATE_STYLES, duration, short_count


class PopulationStatus(Static):
    """State, the population's step and speed (member env steps too: the figure the batching buys), the eval median."""

    def show(self, snapshot: PopulationSnapshot) -> None:
        table = Table.grid(padding=(0, 1))
        table.add_column(style="dim", no_wrap=True, min_width=LABEL_WIDTH)
        table.add_column(no_wrap=True, overflow="ellipsis")
        table.add_row("state", Text(snapshot.state.value, style=STATE_STYLES.get(snapshot.state, "")))
        n = len(snapshot.members)
        table.add_row("members", f"{n} seeds: {', '.join(str(m.seed) for m in snapshot.members)}")
        p = snapshot.progress
        if p is not None:
            table.add_row("step", f"{p.step:,} / {p.total_steps:,}")
            # The members step in lockstep: the population's rate, and what it is worth in single-run steps.
            table.add_row("steps/s", f"{p.steps_per_second:,.0f} ({p.steps_per_second * n:,.0f} member)"
                          if p.steps_per_second else "-")
            remaining = (p.total_steps - p.step) / p.steps_per_second if p.steps_per_second else None
            eta = duration(remaining) if remaining is not None and snapshot.active else "-"
            table.add_row("elapsed", f"{duration(p.elapsed)}  eta {eta}")
            table.add_row("buffer", f"{short_count(p.buffer_size)} / {short_count(p.buffer_capacity)} each")
        rounds = snapshot.eval_rounds()
        if rounds:
            step, means = rounds[-1]
            median, q1, q3 = quartiles(means)
            table.add_row("eval", f"median {median:,.1f} @{step:,}")
            table.add_row("IQR", f"{q1:,.1f} to {q3:,.1f}")
        else:
            table.add_row("eval", "-")
        if snapshot.message and snapshot.state == TrainerState.ERROR:
            # Below the grid, whose columns never wrap: the reason is read in full, however long.
            self.update(Group(table, Text(snapshot.message, style="red")))
        else:
            self.update(table)


class MemberTable(DataTable, can_focus=False):
    """One row per member: its seed, episodes, last episode return and last evaluation.

    Four narrow columns, numbers without thousands separators: the side panel is 30 columns
    wide at 80x24, and a fifth column or "-1,316.4" pushed the table into a sideways scroll.
    """

    COLUMNS = ("seed", "eps", "return", "eval")

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(cursor_type="none", zebra_stripes=True, show_row_labels=False, **kwargs)
        self._shown: tuple[object, ...] = ()

    def on_mount(self) -> None:
        self.border_title = "Members"
        self.add_columns(*self.COLUMNS)

    def show(self, snapshot: PopulationSnapshot) -> None:
        key = tuple((len(m.episode_returns), len(m.evals)) for m in snapshot.members)
        if key == self._shown:
            return
        self._shown = key
        last_step = max((m.last_eval.step for m in snapshot.members if m.last_eval), default=None)
        self.border_title = "Members" if last_step is None else f"Members (eval @{last_step:,})"
        self.clear()
        for member in snapshot.members:
            last = member.last_eval
            self.add_row(str(member.seed), str(len(member.episode_returns)),
                         Text(f"{member.episode_returns[-1]:.1f}" if member.episode_returns else "-", justify="right"),
                         Text(f"{last.mean:.1f}" if last else "-", justify="right"))
