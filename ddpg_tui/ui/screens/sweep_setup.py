"""Start a sweep from the hyperparameter form: the form's fields, the ones marked to sweep, and the seeds.

The dialog asks only what the form cannot: which seeds, how many CPUs, whether ASHA may
stop hopeless configs, and how many fresh episodes re-evaluate each final policy. It
checks everything exactly as `ddpg-tui sweep` does (`ddpg_tui.sweeps.request.new_sweep_request`), so the app and
the command line refuse the same sweeps with the same line.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Checkbox, Footer, Input, Label

from agents.config import ConfigError, DDPGConfig
from ddpg_tui.request import UsageError, plural
from ddpg_tui.sweeps.request import SweepRequest, new_sweep_request
from ddpg_tui.sweeps.space import format_value, parse_seeds

DEFAULT_SEEDS = "0-2"


def describe_grid(grid: dict[str, tuple[Any, ...]]) -> str:
    if not grid:
        return "no field is marked to sweep: every trial runs the form's config on its own seed"
    return "swept: " + "; ".join(f"{key} = {', '.join(format_value(v) for v in values)}"
                                 for key, values in grid.items())


def config_count(grid: dict[str, tuple[Any, ...]]) -> int:
    count = 1
    for values in grid.values():
        count *= len(values)
    return count


class SweepSetupScreen(ModalScreen[SweepRequest | None]):
    """Dismisses with a checked `SweepRequest`, or None when cancelled."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel"),
                                             Binding("ctrl+s", "start", "Start sweep", priority=True)]

    def __init__(self, base: DDPGConfig, grid: dict[str, tuple[Any, ...]], label: str, threshold: float | None,
                 root: Path) -> None:
        super().__init__()
        self.base = base
        self.grid = grid
        self.label = label
        self.threshold = threshold
        self.root = root

    def compose(self) -> ComposeResult:
        with Vertical(id="sweep-dialog", classes="dialog"):
            yield Label(f"Sweep {self.label}: every config on every seed, on Ray Tune", classes="dialog-title")
            yield Label(describe_grid(self.grid), id="sweep-grid", markup=False)
            with Horizontal(classes="field-row"):
                yield Label("seeds", classes="field-name")
                yield Input(DEFAULT_SEEDS, id="sweep-seeds", classes="field-input", compact=True)
                yield Label("a range 0-4 or a list 0,2,7", classes="field-hint")
            with Horizontal(classes="field-row"):
                yield Label("jobs", classes="field-name")
                yield Input(str(os.cpu_count() or 1), id="sweep-jobs", classes="field-input", compact=True,
                            type="integer")
                yield Label("CPUs to use; trials at once share them", classes="field-hint")
            with Horizontal(classes="field-row"):
                yield Label("reeval", classes="field-name")
                yield Input("0", id="sweep-reeval", classes="field-input", compact=True, type="integer")
                yield Label("fresh episodes per final policy at the end", classes="field-hint")
            yield Checkbox("ASHA: stop configs with a hopeless evaluation return early", id="sweep-asha")
            yield Label("", id="sweep-count")
            yield Label("", id="sweep-error", markup=False)
            with Horizontal(classes="dialog-buttons"):
                yield Button("Start sweep", id="start-sweep", variant="success")
                yield Button("Cancel", id="cancel")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#sweep-seeds", Input).focus()
        self.show_count()

    @on(Input.Changed, "#sweep-seeds")
    def show_count(self) -> None:
        configs = config_count(self.grid)
        try:
            seeds = len(parse_seeds(self.query_one("#sweep-seeds", Input).value))
        except ConfigError:
            text = plural(configs, "config")
        else:
            text = (f"{plural(configs, 'config')} × {plural(seeds, 'seed')} = "
                    f"{plural(configs * seeds, 'trial')} of {self.base.total_steps:,} steps")
        self.query_one("#sweep-count", Label).update(text)

    def request(self) -> SweepRequest:
        """The sweep as `ddpg-tui sweep` would check it; raises UsageError or ConfigError with one line."""
        seeds = parse_seeds(self.query_one("#sweep-seeds", Input).value)
        jobs = self._integer("#sweep-jobs", "jobs", 1)
        reeval = self._integer("#sweep-reeval", "reeval", 0)
        scheduler = "asha" if self.query_one("#sweep-asha", Checkbox).value else None
        return new_sweep_request(self.base, self.label, self.threshold, seeds, self.grid, scheduler=scheduler,
                                 jobs=jobs, reeval=reeval or None, root=self.root)

    def _integer(self, selector: str, name: str, least: int) -> int:
        text = self.query_one(selector, Input).value.strip()
        if not text.isdigit() or int(text) < least:
            raise UsageError(f"{name}: {text!r} is not allowed; expected an integer >= {least}")
        return int(text)

    @on(Button.Pressed, "#start-sweep")
    def action_start(self) -> None:
        try:
            request = self.request()
        except (UsageError, ConfigError) as error:
            message = self.query_one("#sweep-error", Label)
            message.update(str(error).replace("--seeds ", "seeds ", 1))  # the box here, not the CLI flag
            message.add_class("invalid")
            return
        self.dismiss(request)

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)
