"""Edit every hyperparameter of the chosen preset, then start training, or a sweep over seeds and marked fields."""

from __future__ import annotations

from typing import ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import Button, Footer, Header, Input, Label

from agents.config import FIELDS, DDPGConfig
from ddpg_tui.ui.screens.form import HyperparameterForm


class HyperparametersScreen(Screen):
    BINDINGS: ClassVar[list[BindingType]] = [
        # Short names, so that the whole footer fits in 80 columns; the buttons and tooltips say the rest.
        Binding("ctrl+s", "start", "Start", priority=True, tooltip="Start training"),
        # Neither key is an Input's own (ctrl+w deletes a word there).
        Binding("ctrl+g", "toggle_sweep", "Sweep field", priority=True, tooltip="Mark this field to sweep"),
        Binding("ctrl+t", "sweep", "Sweep…", priority=True, tooltip="Start a sweep of the form's configs"),
        Binding("ctrl+r", "reset", "Reset", tooltip="Reset to the preset's values"),
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
            yield HyperparameterForm(self.preset_config, FIELDS, sweepable=True, id="form")
            with Horizontal(id="form-buttons"):
                yield Button("Start training", id="start", variant="success")
                yield Button("Sweep…", id="sweep")
                yield Button("Reset to preset", id="reset")
                yield Button("Back", id="back")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.query_one(".field-input").focus()

    @on(HyperparameterForm.Validity)
    def update_start(self, event: HyperparameterForm.Validity) -> None:
        self.query_one("#start", Button).disabled = not event.valid

    def checked_form(self) -> HyperparameterForm | None:
        """The form if every field is valid; otherwise None, after taking the user to the first bad field."""
        form = self.query_one(HyperparameterForm)
        if form.is_valid:
            return form
        form.refuse()
        return None

    @on(Button.Pressed, "#start")
    def action_start(self) -> None:
        form = self.checked_form()
        if form is None:
            return
        if form.swept:
            self.notify(f"{', '.join(sorted(form.swept))} marked to sweep: start a sweep (ctrl+t), or unmark "
                        "with ctrl+g on the field", severity="warning")
            return
        config = DDPGConfig.from_mapping(form.values(), base=self.preset_config)
        self.app.start_training(config, self.label)

    def action_toggle_sweep(self) -> None:
        focused = self.focused
        name = (focused.id or "").removeprefix("field-") if isinstance(focused, Input) else ""
        if name not in FIELDS:
            self.notify("put the cursor in a field first, then ctrl+g marks it to sweep", severity="warning")
            return
        form = self.query_one(HyperparameterForm)
        refused = form.toggle_sweep(name)
        if refused:
            self.notify(refused, severity="warning")
        elif name in form.swept:
            self.notify(f"{name}: type the values to sweep, separated by commas, or a distribution to draw "
                        "configs from, such as loguniform(1e-4,1e-2) (ctrl+g again: one value)", timeout=8)

    @on(Button.Pressed, "#sweep")
    def action_sweep(self) -> None:
        from ddpg_tui.ui.screens.sweep_setup import SweepSetupScreen
        from presets import PresetError, load_preset

        form = self.checked_form()
        if form is None:
            return
        base = DDPGConfig.from_mapping(form.values(), base=self.preset_config)
        try:
            threshold = load_preset(self.label).solved_threshold
        except PresetError:  # an env id typed in the picker: no solved threshold to count steps to
            threshold = None
        setup = SweepSetupScreen(base, form.grid(), self.label, threshold, self.app.runs_root / "sweeps",
                                 samples=form.samples())

        def started(request: object) -> None:
            if request is not None:
                self.app.start_sweep(request)
        self.app.push_screen(setup, started)

    @on(Button.Pressed, "#reset")
    def action_reset(self) -> None:
        self.query_one(HyperparameterForm).reset(self.preset_config)

    @on(Button.Pressed, "#back")
    def action_back(self) -> None:
        self.app.pop_screen()
