"""Modal dialogs: change live hyperparameters, and confirm quitting a running session."""

from __future__ import annotations

from typing import Any, ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Footer, Label

from agents.config import LIVE_FIELDS, DDPGConfig
from ddpg_tui.screens.form import HyperparameterForm


class LiveEditScreen(ModalScreen[dict[str, Any] | None]):
    """The hyperparameters the trainer can change mid-run; dismisses with the changed ones.

    The form scrolls between a fixed title and fixed buttons, so Apply and Cancel are in
    view at 80x24 too, and Tab scrolls each field into view as it takes focus.
    """

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel"),
                                             Binding("ctrl+s", "apply", "Apply", priority=True)]

    def __init__(self, config: DDPGConfig) -> None:
        super().__init__()
        self.config = config

    def compose(self) -> ComposeResult:
        with Vertical(id="live-dialog", classes="dialog"):
            yield Label("Change while training (applied between steps)", classes="dialog-title")
            yield HyperparameterForm(self.config, LIVE_FIELDS, id="live-form")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Apply", id="apply", variant="primary")
                yield Button("Cancel", id="cancel")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one(".field-input").focus()

    @on(HyperparameterForm.Validity)
    def update_apply(self, event: HyperparameterForm.Validity) -> None:
        self.query_one("#apply", Button).disabled = not event.valid

    @on(Button.Pressed, "#apply")
    def action_apply(self) -> None:
        form = self.query_one(HyperparameterForm)
        if not form.is_valid:  # Ctrl+S works while Apply is disabled: say why nothing happens
            form.refuse()
            return
        self.dismiss(form.changed_values())

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)


class ConfirmQuitScreen(ModalScreen[str]):
    """Dismisses with "save", "discard" or "cancel"."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "choose('cancel')", "Cancel"),
                                             Binding("y", "choose('save')", "Save and quit"),
                                             Binding("n", "choose('discard')", "Quit without saving")]

    def compose(self) -> ComposeResult:
        with Vertical(id="quit-dialog", classes="dialog"):
            yield Label("Training is running. Save a checkpoint before quitting?", classes="dialog-title")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Save and quit (y)", id="save", variant="primary")
                yield Button("Quit without saving (n)", id="discard", variant="error")
                yield Button("Cancel (esc)", id="cancel")

    def on_mount(self) -> None:
        self.query_one("#save", Button).focus()

    @on(Button.Pressed)
    def pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id or "cancel")

    def action_choose(self, choice: str) -> None:
        self.dismiss(choice)
