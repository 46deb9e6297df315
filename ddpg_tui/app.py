"""DDPGApp: choose an environment, set hyperparameters, and watch training live."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import ClassVar

from textual.app import App, SystemCommand
from textual.binding import Binding, BindingType
from textual.screen import Screen

from agents.config import DDPGConfig
from ddpg_tui.request import TrainingRequest
from ddpg_tui.screens.dashboard import Session


class DDPGApp(App):
    CSS_PATH = "app.tcss"
    TITLE = "ddpg-tui"
    BINDINGS: ClassVar[list[BindingType]] = [Binding("ctrl+c", "quit", "Quit", show=False)]

    def __init__(self, request: TrainingRequest | None = None, runs_root: Path = Path("runs"),
                 session: Session | None = None) -> None:
        """`request` opens straight on a training dashboard; `session` shows a given
        session instead (screenshots and tests feed fixed data this way)."""
        super().__init__()
        self.request = request
        self.runs_root = runs_root
        self.session = session

    def on_mount(self) -> None:
        if self.session is not None:
            from ddpg_tui.screens.dashboard import DashboardScreen

            self.push_screen(DashboardScreen(self.session, None))
        elif self.request is None:
            from ddpg_tui.screens.picker import PickerScreen

            self.push_screen(PickerScreen())
        else:
            self.open_dashboard(self.request)

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        from ddpg_tui.screens.dashboard import DashboardScreen

        if isinstance(screen, DashboardScreen):
            yield SystemCommand("Pause / resume training", "p or space", screen.action_toggle_pause)
            yield SystemCommand("Evaluate now", "e: eval_episodes episodes with noise off", screen.action_evaluate)
            yield SystemCommand("Save a checkpoint", "s: writes checkpoints/latest.pt", screen.action_save)
            yield SystemCommand("Change live hyperparameters", "h: noise, learning rates, tau, ...",
                                screen.action_edit_live)
            yield SystemCommand("Quit", "q: asks first while training runs", screen.action_quit_session)

    def open_hyperparameters(self, config: DDPGConfig, label: str) -> None:
        from ddpg_tui.screens.hyperparameters import HyperparametersScreen

        self.push_screen(HyperparametersScreen(config, label))

    def start_training(self, config: DDPGConfig, label: str) -> None:
        from agents.run_files import claim_run_dir

        self.open_dashboard(TrainingRequest(config, claim_run_dir(self.runs_root, label), claimed_run_dir=True))

    def open_dashboard(self, request: TrainingRequest) -> None:
        from ddpg_tui.screens.dashboard import DashboardScreen
        from ddpg_tui.session import TrainingSession

        self.push_screen(DashboardScreen(TrainingSession(request), request.config))


def run_app(request: TrainingRequest | None) -> int:
    DDPGApp(request).run()
    return 0
