"""Modal dialogs: change live hyperparameters, confirm quitting a running session, and the keys (? or F1)."""

from __future__ import annotations

from typing import Any, ClassVar

from rich.table import Table
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen, Screen
from textual.widget import Widget
from textual.widgets import Button, Footer, Label, Static

from agents.config import LIVE_FIELDS, DDPGConfig
from ddpg_tui.ui.screens.form import HyperparameterForm


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
    """Dismisses with "save", "discard", "background" or "cancel"."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "choose('cancel')", "Cancel"),
                                             Binding("y", "choose('save')", "Save and quit"),
                                             Binding("n", "choose('discard')", "Quit without saving"),
                                             Binding("b", "choose('background')", "Keep training in the background")]

    QUESTION = "Training is running. Save a checkpoint before quitting?"

    def compose(self) -> ComposeResult:
        with Vertical(id="quit-dialog", classes="dialog"):
            yield Label(self.QUESTION, classes="dialog-title")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Save and quit (y)", id="save", variant="primary")
                yield Button("Quit without saving (n)", id="discard", variant="error")
                yield Button("Cancel (esc)", id="cancel")
            yield self.hint()

    def hint(self) -> Widget:
        return Label("b: keep training in the background (attach again with ddpg-tui attach)", classes="dialog-hint")

    def on_mount(self) -> None:
        self.query_one("#save", Button).focus()

    @on(Button.Pressed)
    def pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id or "cancel")

    def action_choose(self, choice: str) -> None:
        self.dismiss(choice)


class DetachOrStopScreen(ModalScreen[str]):
    """Quitting a dashboard attached to another process's run: dismisses with "detach", "save" or "cancel"."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "choose('cancel')", "Cancel"),
                                             Binding("d", "choose('detach')", "Detach"),
                                             Binding("s", "choose('save')", "Stop the run")]

    def compose(self) -> ComposeResult:
        with Vertical(id="quit-dialog", classes="dialog"):
            yield Label("This run trains in another process. Leave it training, or stop it?", classes="dialog-title")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Detach, it goes on (d)", id="detach", variant="primary")
                yield Button("Stop: save and end (s)", id="save", variant="error")
                yield Button("Cancel (esc)", id="cancel")

    def on_mount(self) -> None:
        self.query_one("#detach", Button).focus()

    @on(Button.Pressed)
    def pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id or "cancel")

    def action_choose(self, choice: str) -> None:
        self.dismiss(choice)


def screen_keys(screen: Screen) -> list[tuple[str, str]]:
    """(keys, what they do) for `screen` and then the app, read from their bindings as they are now.

    Left out: keys of the focused widget (an input's cursor keys are not the screen's), and
    Textual's own focus and copy keys, which every screen has. A key bound twice (p: Pause
    or Resume) shows the binding that is enabled now; keys with one action share a row.
    """
    textual_own = {binding.action for binding in Screen.BINDINGS if isinstance(binding, Binding)}
    rows: dict[tuple[bool, str, str], list[str]] = {}
    for active in screen.active_bindings.values():
        binding = active.binding
        if active.node not in (screen, screen.app) or binding.system or not binding.description \
                or binding.action in textual_own:
            continue
        text = binding.tooltip or binding.description
        rows.setdefault((active.node is screen.app, binding.action, text), []).append(
            screen.app.get_key_display(binding))
    ordered = sorted(rows.items(), key=lambda row: row[0][0])  # stable: the screen's keys first, in their order
    return [(" ".join(keys), text) for (_, _, text), keys in ordered]


class HelpScreen(ModalScreen[None]):
    """The keys of the screen it was opened on; esc, q, ? or F1 close it."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape,q,question_mark,f1", "close", "Close")]

    def __init__(self, keys: list[tuple[str, str]]) -> None:
        super().__init__()
        self.keys = keys

    def compose(self) -> ComposeResult:
        table = Table.grid(padding=(0, 2))
        table.add_column(justify="right", style="bold", no_wrap=True)
        table.add_column()  # wraps within its column on a narrow terminal
        for keys, text in self.keys:
            table.add_row(keys, text)
        with Vertical(id="help-dialog", classes="dialog"):
            yield Label("Keys (esc closes)", classes="dialog-title")
            yield Static(table, id="help-keys")

    def action_close(self) -> None:
        self.dismiss(None)
