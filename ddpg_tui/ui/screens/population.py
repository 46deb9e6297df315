"""The live dashboard of a population (`train --seeds`): every member's curves, their median band, a row each.

It is a DashboardScreen for everything but what it draws: the worker that trains, the way
p, e and s only ask the controls and the next snapshot shows what the trainer did, and
every way out (q, Ctrl+C, SIGTERM, SIGHUP) are the single run's, so the app's quit routes
find it as they find any dashboard. The keys steer the whole population: its one set of
controls pauses, evaluates, saves or stops every member at once.
"""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.widget import Widget
from textual.widgets import Footer, Header, Static

from agents.events import TrainerState
from ddpg_tui.ui.population_session import PopulationSession, PopulationSnapshot
from ddpg_tui.ui.screens.dashboard import DashboardScreen
from ddpg_tui.ui.screens.modals import ConfirmQuitScreen
from ddpg_tui.ui.widgets.agent_panel import AgentPanel
from ddpg_tui.ui.widgets.panels import EventLog
from ddpg_tui.ui.widgets.population_panels import MemberTable, PopulationStatus
from ddpg_tui.ui.widgets.population_plot import PopulationPlot

PLOT_EVERY = 4  # plots at most once a second, as the single-run dashboard's


class PopulationQuitScreen(ConfirmQuitScreen, inherit_bindings=False):
    """The single run's quit question without "keep training in the background": dismisses with
    "save", "discard" or "cancel". A population has no control channel to attach to, so no
    background process could take it over; `ddpg-tui train --resume RUN` carries it on instead."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "choose('cancel')", "Cancel"),
                                             Binding("y", "choose('save')", "Save and quit"),
                                             Binding("n", "choose('discard')", "Quit without saving")]
    DEFAULT_CSS = """
    PopulationQuitScreen {
        align: center middle;
    }
    """
    QUESTION = "The population is training. Save every member's checkpoint before quitting?"

    def hint(self) -> Widget:
        # A Static wraps where a Label would be cut at 80 columns.
        return Static("A population cannot keep training in the background yet; carry it on later with "
                      "ddpg-tui train --resume RUN_DIR", classes="dialog-hint", markup=False)


class PopulationDashboardScreen(DashboardScreen, inherit_bindings=False):
    DEFAULT_CSS = """
    PopulationDashboardScreen #population-returns {
        height: 3fr;
    }
    PopulationDashboardScreen #population-evals {
        height: 2fr;
    }
    PopulationDashboardScreen #members {
        height: auto;
        max-height: 12;
        overflow-x: hidden;
    }
    PopulationDashboardScreen.-agent PopulationPlot {
        display: none;
    }
    PopulationDashboardScreen.-tiny #population-evals {
        display: none;
    }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("p", "pause", "Pause", tooltip="Pause every member"),
        Binding("p", "resume", "Resume", tooltip="Resume every member"),
        Binding("space", "toggle_pause", "Pause / resume", show=False, tooltip="Pause or resume every member"),
        Binding("e", "evaluate", "Eval", tooltip="Evaluate every member now, with the exploration noise off"),
        Binding("s", "save", "Save", tooltip="Save every member's checkpoint (RUN/seed-K/checkpoints/latest.pt)"),
        Binding("h", "edit_live", "Params", tooltip="Change hyperparameters live, for every member at once"),
        Binding("l", "toggle_log", "Events", tooltip="The event log on the whole screen, and back"),
        Binding("w", "toggle_agent", "Agent",
                tooltip="Watch the median member's latest evaluation in place of the curves, and back"),
        Binding("q", "quit_session", "Quit", tooltip="Quit (asks first while training runs)"),
    ]

    def __init__(self, session: PopulationSession) -> None:
        super().__init__(session, session.config)
        self.session: PopulationSession = session
        self.last_snapshot: PopulationSnapshot = PopulationSnapshot()  # type: ignore[assignment]

    def compose(self) -> ComposeResult:
        yield Header()
        # The ids the single-run dashboard's layout rules and its on_mount use (titles for #status and #log).
        with Horizontal(id="dashboard"):
            with Vertical(id="plots"):
                yield PopulationPlot("episodes", id="population-returns")
                yield PopulationPlot("evals", id="population-evals")
                yield AgentPanel(id="agent")  # hidden until w; then it takes the plots' place
            with Vertical(id="side"):
                yield PopulationStatus(id="status", classes="panel")
                yield MemberTable(id="members", classes="panel")
                yield EventLog(id="log", classes="panel")
        yield Static("", id="too-small", markup=False)
        yield Footer(compact=True)

    # No on_mount here: Textual calls every class's own on_mount, and DashboardScreen's already starts the
    # worker and the timer (which calls this class's refresh_from_session). A second one would train twice.

    def refresh_from_session(self) -> None:
        if self.session.version == self.last_snapshot.version and self._ticks \
                and self._plotted_version == self.last_snapshot.version:
            return
        snapshot = self.session.snapshot()
        self._ticks += 1
        self.last_snapshot = snapshot  # type: ignore[assignment]
        self.query_one(PopulationStatus).show(snapshot)
        self.query_one(MemberTable).show(snapshot)
        self.query_one(EventLog).show(snapshot)  # type: ignore[arg-type]  # it reads only `log`
        self.show_agent(snapshot)
        if self._ticks % PLOT_EVERY == 1 or not snapshot.active:
            self._plotted_version = snapshot.version
            for plot in self.query(PopulationPlot):
                plot.show(snapshot)
        self.sub_title = f"{snapshot.env_id}  {len(snapshot.members)} seeds  {snapshot.state.value}"
        if snapshot.state != TrainerState.EVALUATING and self._paused != (snapshot.state == TrainerState.PAUSED):
            self._paused = snapshot.state == TrainerState.PAUSED
            self.refresh_bindings()
        if snapshot.toasted_saves != self._toasted_saves:
            self._toasted_saves = snapshot.toasted_saves
            self.notify(f"saved {snapshot.last_saved}", title="Checkpoints")
        if snapshot.state == TrainerState.ERROR and snapshot.message and not self._error_shown:
            self._error_shown = True
            self.notify(snapshot.message, title="Training stopped", severity="error", timeout=10)

    def action_toggle_agent(self) -> None:
        """The median member's latest evaluation in place of the curves, and back; recorded only while shown."""
        panel = self.query_one(AgentPanel)
        panel.display = not panel.display
        self.set_class(panel.display, "-agent")
        if panel.display:
            self.session.record_evaluations.set()
        else:
            self.session.record_evaluations.clear()

    def show_agent(self, snapshot: PopulationSnapshot) -> None:
        panel = self.query_one(AgentPanel)
        seed = snapshot.recording_seed
        members = len(snapshot.members)
        panel.border_title = f"Agent: seed {seed}, the median of {members}" if seed is not None else "Agent"
        evaluations = len(snapshot.members[0].evals) if snapshot.members else 0
        run_dir = f"{snapshot.run_dir}/seed-{seed if seed is not None else snapshot.members[0].seed}" \
            if snapshot.members else snapshot.run_dir
        panel.show(snapshot.recording, evaluations=evaluations, active=snapshot.active, run_dir=run_dir)

    def action_quit_session(self) -> None:
        """The single run's quit, asking with the population's question (no background hand-over)."""
        if self._quitting or self._confirm is not None or not self.last_snapshot.active:
            super().action_quit_session()  # stopping already, asked twice (save and quit), or nothing runs
            return
        self._confirm = PopulationQuitScreen()  # type: ignore[assignment]
        self.app.push_screen(self._confirm, self._quit_chosen)
