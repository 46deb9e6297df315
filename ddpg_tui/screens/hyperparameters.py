"""Edit every hyperparameter of the chosen preset, then start training."""

from __future__ import annotations

from typing import ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import Button, Footer, Header, Label

from agents.config import FIELDS, DDPGConfig
from ddpg_tui.screens.form import HyperparameterForm


class HyperparametersScreen(Screen):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+s", "start", "Start training", priority=True),
        Binding("ctrl+r", "reset", "Reset to preset"),
        Binding("escape", "back", "Back"),
    ]

    def __init__(self, config: DDPGConfig, label: str) -> None:
        super().__init__()
        self.preset_config = config
        self.label = label

    def compose(self) -> ComposeResult:
        yield Header()
        with Vertical(id="hyperparameters"):
            yield Label(f"{self.label}: {self.preset_config.env_id}", id="form-title")
            yield HyperparameterForm(self.preset_config, FIELDS, id="form")
            with Horizontal(id="form-buttons"):
                yield Button("Start training", id="start", variant="success")
                yield Button("Reset to preset", id="reset")
                yield Button("Back", id="back")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one(".field-input").focus()

    @on(HyperparameterForm.Validity)
    def update_start(self, event: HyperparameterForm.Validity) -> None:
        self.query_one("#start", Button).disabled = not event.valid

    @on(Button.Pressed, "#start")
    def action_start(self) -> None:
        form = self.query_one(HyperparameterForm)
        if not form.is_valid:
            form.refuse()
            return
        config = DDPGConfig.from_mapping(form.values(), base=self.preset_config)
        self.app.start_training(config, self.label)

    @on(Button.Pressed, "#reset")
    def action_reset(self) -> None:
        self.query_one(HyperparameterForm).reset(self.preset_config)

    @on(Button.Pressed, "#back")
    def action_back(self) -> None:
        self.app.pop_screen()
