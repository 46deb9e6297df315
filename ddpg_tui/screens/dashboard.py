"""The live dashboard of one training session."""

from __future__ import annotations

from typing import Any, ClassVar, Protocol

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import Footer, Header, Label
from textual.worker import Worker

from agents.config import ConfigError, DDPGConfig
from agents.controls import Controls
from agents.events import TrainerState
from ddpg_tui.screens.modals import ConfirmQuitScreen, LiveEditScreen
from ddpg_tui.session import Snapshot
from ddpg_tui.widgets.panels import BufferPanel, EventLog, NoisePanel, StatusPanel
from ddpg_tui.widgets.plots import LossPlot, RewardPlot

REFRESH_HZ = 4  # text panels; the plots redraw only when they have new points
PLOT_EVERY = 4  # plots at most once a second: rebuilding a plotext figure holds the GIL for ~10-30 ms


class Session(Protocol):
    controls: Controls

    def run(self) -> Any: ...

    @property
    def version(self) -> int: ...

    def snapshot(self) -> Snapshot: ...


class DashboardScreen(Screen):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("p", "toggle_pause", "Pause/Resume"),
        Binding("space", "toggle_pause", "Pause", show=False),
        Binding("e", "evaluate", "Evaluate"),
        Binding("s", "save", "Save"),
        Binding("h", "edit_live", "Hyperparameters"),
        Binding("q", "quit_session", "Quit"),
    ]

    def __init__(self, session: Session, config: DDPGConfig | None) -> None:
        super().__init__()
        self.session = session
        self.config = config
        self.worker: Worker | None = None
        self.last_snapshot = Snapshot()
        self._ticks = 0
        self._notified_save = ""
        self._error_shown = False

    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal(id="dashboard"):
            with Vertical(id="plots"):
                yield RewardPlot(id="reward-plot")
                with Horizontal(id="loss-plots"):
                    yield LossPlot("Critic loss", "critic_losses", log_scale=True, id="critic-plot")
                    yield LossPlot("Actor loss (-Q)", "actor_losses", log_scale=False, id="actor-plot")
            with Vertical(id="side"):
                yield StatusPanel(id="status", classes="panel")
                with Vertical(classes="panel", id="noise-box"):
                    yield Label("Exploration noise", classes="panel-title")
                    yield NoisePanel(id="noise")
                with Vertical(classes="panel", id="buffer-box"):
                    yield Label("Replay buffer", classes="panel-title")
                    yield BufferPanel(id="buffer")
                yield EventLog(id="log", classes="panel")
        yield Footer()

    def on_mount(self) -> None:
        for panel, title in (("#status", "Status"), ("#log", "Events")):
            self.query_one(panel).border_title = title
        self.worker = self.train()
        self.set_interval(1 / REFRESH_HZ, self.refresh_from_session)
        self.refresh_from_session()

    @work(thread=True, exclusive=True, exit_on_error=False, name="training")
    def train(self) -> Any:
        # The whole run happens here; it reports only through the session's sink.
        return self.session.run()

    def refresh_from_session(self) -> None:
        if self.session.version == self.last_snapshot.version and self._ticks:
            return
        snapshot = self.session.snapshot()
        self._ticks += 1
        self.last_snapshot = snapshot
        self.query_one(StatusPanel).show(snapshot)
        self.query_one(NoisePanel).show(snapshot)
        self.query_one(BufferPanel).show(snapshot)
        self.query_one(EventLog).show(snapshot)
        if self._ticks % PLOT_EVERY == 1 or not snapshot.active:
            self.query_one(RewardPlot).show(snapshot)
            for plot in self.query(LossPlot):
                plot.show(snapshot)
        self.sub_title = f"{snapshot.env_id}  {snapshot.state.value}"
        if snapshot.last_saved and snapshot.last_saved != self._notified_save:
            self._notified_save = snapshot.last_saved
            self.notify(f"saved {snapshot.last_saved}", title="Checkpoint")
        if snapshot.state == TrainerState.ERROR and snapshot.message and not self._error_shown:
            self._error_shown = True
            self.notify(snapshot.message, title="Training stopped", severity="error", timeout=10)

    # Actions: each only asks; the next snapshot shows what the trainer did --------------

    def action_toggle_pause(self) -> None:
        if self.last_snapshot.active:
            self.session.controls.toggle_pause()

    def action_evaluate(self) -> None:
        if self.last_snapshot.active:
            self.session.controls.evaluate()
            self.notify("evaluating (noise off)…", timeout=2)

    def action_save(self) -> None:
        if self.last_snapshot.active:
            self.session.controls.save()

    def action_edit_live(self) -> None:
        if self.config is None:
            self.config = getattr(self.session, "config", None)
        if not self.last_snapshot.active or self.config is None:
            self.notify("nothing is training", severity="warning")
            return

        def apply(changes: dict[str, Any] | None) -> None:
            if not changes:
                return
            try:
                self.session.controls.set(**changes)
            except ConfigError as error:
                self.notify(str(error), severity="error")
                return
            assert self.config is not None
            self.config = self.config.replace(**changes)

        self.app.push_screen(LiveEditScreen(self.config), apply)

    def action_quit_session(self) -> None:
        if not self.last_snapshot.active:
            self.app.exit()
            return

        def chosen(choice: str | None) -> None:
            if choice in ("save", "discard"):
                self.stop_and_exit(save=choice == "save")

        self.app.push_screen(ConfirmQuitScreen(), chosen)

    @work(exclusive=True, group="quit")
    async def stop_and_exit(self, save: bool) -> None:
        self.session.controls.stop(save=save)
        self.notify("stopping…" + (" saving a checkpoint" if save else ""), timeout=5)
        if self.worker is not None:
            await self.worker.wait()
        self.refresh_from_session()
        self.app.exit()
