"""The runs screen: every run and sweep under runs/, newest first; select several and compare them.

Comparing draws the sweep screen's overlay plot (a run is one line; a sweep one line per config,
its median over seeds with the min-max band), a table of each config's IQM over seeds with its
bootstrap interval and the config fields that differ, and P(the best config beats each other one).
Everything comes from the folders (`ddpg_tui.sweeps.history`); a run that a process is training now
(its channel answers, see ddpg_tui/channel) is marked `live run`. Reading
every folder under runs/ takes a while with many runs (each metrics.jsonl is read whole), so it
happens in a thread worker: the screen is up at once, and the list fills in when the reading ends.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import ClassVar

from rich.text import Text
from textual import work
from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Static
from textual.worker import get_current_worker

from ddpg_tui.channel.location import is_live
from ddpg_tui.sweeps.history import RunRecord, compare_rows, final_of, list_runs, read_any
from ddpg_tui.ui.run_text import date_text, differences_text, statistics_cells, statistics_lines, steps_text
from ddpg_tui.ui.run_text import fmt_return as fmt
from ddpg_tui.ui.widgets.overlay_plot import OverlayPlot, hex_colour

# The name and the evaluations first: at 80 columns they are what must stay in view.
RUN_COLUMNS = (("mark", " "), ("name", "name"), ("final", "final eval"), ("best", "best eval"), ("kind", "kind"),
               ("steps", "steps"), ("env", "env"), ("date", "date"))


class RunsScreen(Screen):
    DEFAULT_CSS = """
    RunsScreen #runs-help { height: 1; padding: 0 1; color: $text-muted; }
    RunsScreen #runs { height: 1fr; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("space", "toggle", "Select"),
        Binding("c", "compare", "Compare"),
        Binding("r", "reload", "Reload"),
        Binding("q", "leave", "Quit"),
        Binding("a", "attach", "Attach", show=False, tooltip="Open the dashboard on the highlighted live run"),
    ]

    HELP = "space selects, c compares the selected (or the highlighted one)"

    def __init__(self, load: Callable[[], list[RunRecord]], preselect: Sequence[Path] = (),
                 compare_when_read: bool = False) -> None:
        super().__init__()
        self.load = load
        self.records: list[RunRecord] = []
        self.live: set[str] = set()  # resolved paths of the runs a process is training now
        self.selected: set[str] = {str(Path(p).resolve()) for p in preselect}
        self.compare_when_read = compare_when_read  # `compare A B`: open the comparison once A and B are read
        self.reading = False

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static(self.HELP, id="runs-help")
        table: DataTable = DataTable(id="runs", cursor_type="row", zebra_stripes=True)
        for key, label in RUN_COLUMNS:
            table.add_column(label, key=key)
        yield table
        yield Footer()

    def on_mount(self) -> None:
        self.action_reload()

    def action_reload(self) -> None:
        self.reading = True
        self.sub_title = "reading runs and sweeps…"
        self._read_runs()

    @work(thread=True, exclusive=True, group="read-runs")
    def _read_runs(self) -> None:
        """Read every folder off the UI thread; the table is filled on it, from `_show`."""
        try:
            records: list[RunRecord] | str = self.load()
        except (OSError, ValueError) as error:  # a folder named on the command line went away, say
            records = str(error)
        if not isinstance(records, str):  # a run that a process trains now (ddpg-tui attach shows it)
            self.live = {str(r.path.resolve()) for r in records if r.kind == "run" and is_live(r.path)}
        if not get_current_worker().is_cancelled:  # a newer reload (or leaving the screen) supersedes it
            self.app.call_from_thread(self._show, records)

    def _show(self, records: list[RunRecord] | str) -> None:
        if not self.is_attached:
            return
        self.reading = False
        self.sub_title = "runs and sweeps, newest first"
        help_line = self.query_one("#runs-help", Static)
        if isinstance(records, str):
            help_line.update(f"could not read the runs: {records}")
            return
        self.records = sorted(records, key=lambda r: r.modified, reverse=True)
        table = self.query_one(DataTable)
        table.clear()
        for record in self.records:
            table.add_row(*self._cells(record), key=str(record.path.resolve()))
        if self.live:
            help_line.update(f"{self.HELP}; a opens a live run's dashboard")
        if not self.records:
            help_line.update("no runs or sweeps under runs/ yet: ddpg-tui train, or ddpg-tui sweep, makes them")
        if self.compare_when_read:
            self.compare_when_read = False
            self.action_compare()

    def _cells(self, record: RunRecord) -> tuple[object, ...]:
        mark = "✓" if str(record.path.resolve()) in self.selected else ""
        kind = "live run" if str(record.path.resolve()) in self.live else record.kind
        return (mark, record.name, fmt(record.final), fmt(record.best), kind, steps_text(record),
                record.env_id, date_text(record.modified))

    def highlighted(self) -> str | None:
        table = self.query_one(DataTable)
        if not table.row_count:
            return None
        return str(table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value)

    def action_toggle(self) -> None:
        key = self.highlighted()
        if key is None:
            return
        self.selected.symmetric_difference_update({key})
        self.query_one(DataTable).update_cell(key, "mark", "✓" if key in self.selected else "")

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()  # enter on a row: select it, as space does
        self.action_toggle()

    def action_compare(self) -> None:
        chosen = [r for r in self.records if str(r.path.resolve()) in self.selected]
        if not chosen and (key := self.highlighted()) is not None:
            chosen = [r for r in self.records if str(r.path.resolve()) == key]
        if chosen:
            self.app.push_screen(CompareScreen(chosen))

    def action_attach(self) -> None:
        """The highlighted run's dashboard, attached to the process that trains it; a finished run is compared."""
        key = self.highlighted()
        if key is None:
            return
        if key not in self.live:
            self.action_compare()
            return
        from ddpg_tui.channel.location import ChannelError
        from ddpg_tui.ui.remote_session import RemoteSession
        from ddpg_tui.ui.screens.dashboard import DashboardScreen

        try:
            session = RemoteSession(Path(key))
        except ChannelError as error:  # it ended since the list was read
            self.notify(str(error), severity="warning")
            self.action_reload()
            return
        self.app.push_screen(DashboardScreen(session, session.config))

    def action_leave(self) -> None:
        # Opened from the main app's first screen: back to it. As `ddpg-tui compare`'s own app: quit.
        if len(self.app.screen_stack) > 2:
            self.app.pop_screen()
        else:
            self.app.exit()


class CompareScreen(Screen):
    """The chosen runs' curves on one plot, and what differs between their configs."""

    DEFAULT_CSS = """
    CompareScreen #compare-plot { height: 1fr; min-height: 8; }
    CompareScreen #differences { height: auto; max-height: 45%; }
    CompareScreen #statistics { height: auto; padding: 0 1; color: $text-muted; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "back", "Back"), Binding("q", "back", "Back")]

    def __init__(self, records: Sequence[RunRecord]) -> None:
        super().__init__()
        self.records = list(records)

    def compose(self) -> ComposeResult:
        yield Header()
        yield OverlayPlot(title="Evaluation return (a sweep: median over seeds, min-max band)", id="compare-plot")
        table: DataTable = DataTable(id="differences", cursor_type="row", zebra_stripes=True)
        yield table
        yield Static(id="statistics")
        yield Footer()

    def on_mount(self) -> None:
        self.sub_title = f"comparing {len(self.records)}: " + ", ".join(r.name for r in self.records)
        series, fields_that_differ = compare_rows(self.records)
        differences = differences_text(fields_that_differ)
        self.query_one(OverlayPlot).show(series, list(range(len(series))))
        table = self.query_one(DataTable)
        table.add_column("run / config", key="label")
        for column, label in (("seeds", "seeds"), ("final", "final eval"), ("iqm", "IQM"), ("ci", "IQM 95% CI"),
                              ("best", "best eval")):
            table.add_column(label, key=column)
        for key, _ in differences:
            table.add_column(key, key=f"field-{key}")
        for index, s in enumerate(series):
            best = max(s.high) if s.high else math.nan
            values = [value[index] for _, value in differences]
            table.add_row(Text(s.label, style=hex_colour(index)), str(s.seeds), fmt(final_of(s)),
                          *statistics_cells(s), fmt(best), *values, key=f"{index}")
        self.query_one("#statistics", Static).update(Text("\n".join(statistics_lines(series))))  # labels: no markup
        if not differences:
            self.notify("the configs are the same in every field", timeout=4)

    def action_back(self) -> None:
        self.app.pop_screen()


class RunsApp(App):
    """The runs screen as an app of its own (`ddpg-tui compare`), until the main app opens it."""

    TITLE = "ddpg-tui"

    def __init__(self, root: Path = Path("runs"), preselect: Sequence[Path] = (),
                 load: Callable[[], list[RunRecord]] | None = None) -> None:
        super().__init__()
        self.preselect = list(preselect)
        self.load = load or (lambda: with_chosen(list_runs(root), self.preselect))

    def on_mount(self) -> None:
        self.push_screen(RunsScreen(self.load, self.preselect, compare_when_read=bool(self.preselect)))


def with_chosen(records: list[RunRecord], chosen: Sequence[Path]) -> list[RunRecord]:
    """The runs under runs/, plus those named on the command line that live elsewhere."""
    known = {r.path.resolve() for r in records}
    extra = []
    for path in chosen:  # each folder once, however it is named: the table keys its rows by the resolved path
        if (real := Path(path).resolve()) not in known:
            known.add(real)
            extra.append(read_any(path))
    return extra + records


def run_runs_app(root: Path, preselect: Sequence[Path]) -> int:
    RunsApp(root, preselect).run()
    return 0
