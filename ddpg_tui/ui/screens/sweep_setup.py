"""Start a sweep from the hyperparameter form: the form's fields, the ones marked to sweep, and the seeds.

The dialog asks only what the form cannot: which seeds, how many CPUs, whether ASHA may
stop hopeless configs, whether a config's seeds train together as one population, and how
many fresh episodes re-evaluate each final policy; when a field is given a distribution
(`--sample`), also how many configs to draw and whether TPE proposes them. It checks
everything exactly as `ddpg-tui sweep` does (`ddpg_tui.sweeps.request.new_sweep_request`),
so the app and the command line refuse the same sweeps with the same line.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Checkbox, Footer, Input, Label

from agents.config import ConfigError, DDPGConfig
from ddpg_tui.request import UsageError, plural
from ddpg_tui.sweeps.request import SweepRequest, new_sweep_request
from ddpg_tui.sweeps.space import SampleSpec, format_value, parse_seeds

DEFAULT_SEEDS = "0-2"
DEFAULT_SAMPLES = 4  # as the command line's --samples


def describe_grid(grid: dict[str, tuple[Any, ...]], samples: tuple[SampleSpec, ...] = ()) -> str:
    if not grid and not samples:
        return "no field is marked to sweep: every trial runs the form's config on its own seed"
    parts = [f"{key} = {', '.join(format_value(v) for v in values)}" for key, values in grid.items()]
    parts += [f"{sample.key} ~ {sample.text().partition('=')[2]}" for sample in samples]
    return "swept: " + "; ".join(parts)


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
                 root: Path, samples: tuple[SampleSpec, ...] = ()) -> None:
        super().__init__()
        self.base = base
        self.grid = grid
        self.samples = samples
        self.label = label
        self.threshold = threshold
        self.root = root

    def compose(self) -> ComposeResult:
        with Vertical(id="sweep-dialog", classes="dialog"):
            yield Label(f"Sweep {self.label}: every config on every seed, on Ray Tune", classes="dialog-title")
            # The settings scroll between the title and the buttons, so Start stays in view at 80x24.
            with VerticalScroll(id="sweep-settings"):
                yield Label(describe_grid(self.grid, self.samples), id="sweep-grid", markup=False)
                with Horizontal(classes="field-row"):
                    yield Label("seeds", classes="field-name")
                    yield Input(DEFAULT_SEEDS, id="sweep-seeds", classes="field-input", compact=True)
                    yield Label("a range 0-4 or a list 0,2,7", classes="field-hint")
                with Horizontal(classes="field-row", id="samples-row"):
                    yield Label("samples", classes="field-name")
                    yield Input(str(DEFAULT_SAMPLES), id="sweep-samples", classes="field-input", compact=True,
                                type="integer")
                    yield Label("configs to draw from the distributions", classes="field-hint")
                with Horizontal(classes="field-row"):
                    yield Label("jobs", classes="field-name")
                    yield Input(str(os.cpu_count() or 1), id="sweep-jobs", classes="field-input", compact=True,
                                type="integer")
                    yield Label("CPUs to use; trials at once share them", classes="field-hint")
                with Horizontal(classes="field-row"):
                    yield Label("reeval", classes="field-name")
                    yield Input("0", id="sweep-reeval", classes="field-input", compact=True, type="integer")
                    yield Label("episodes re-scoring each final policy", classes="field-hint")
                yield Checkbox("TPE: propose each config from the results so far (Optuna)",
                               id="sweep-tpe", compact=True)
                yield Checkbox("ASHA: stop configs with a hopeless evaluation return early", id="sweep-asha",
                               compact=True)
                yield Checkbox("seeds together: train a config's seeds as one population",
                               id="sweep-together", compact=True)
                yield Label("", id="sweep-count")
                yield Label("", id="sweep-error", markup=False)
            with Horizontal(classes="dialog-buttons"):
                yield Button("Start sweep", id="start-sweep", variant="success")
                yield Button("Cancel", id="cancel")
        yield Footer()

    def on_mount(self) -> None:
        # Only a distribution has configs to draw, or a space for TPE to search.
        self.query_one("#samples-row").display = bool(self.samples)
        self.query_one("#sweep-tpe").display = bool(self.samples)
        self.query_one("#sweep-seeds", Input).focus()
        self.show_count()

    def _sample_count(self) -> int:
        return self._integer("#sweep-samples", "samples", 1) if self.samples else 0

    @on(Input.Changed, "#sweep-seeds")
    @on(Input.Changed, "#sweep-samples")
    def show_count(self) -> None:
        """Configs × seeds = trials; a box that does not parse yet is named instead of its count."""
        configs: int | None
        try:
            configs = config_count(self.grid) * max(1, self._sample_count())
        except UsageError:
            configs = None
        config_text = plural(configs, "config") if configs is not None else "? configs (samples: an integer >= 1)"
        try:
            seeds = len(parse_seeds(self.query_one("#sweep-seeds", Input).value))
        except ConfigError:
            text = config_text
        else:
            total = f"{plural(configs * seeds, 'trial')} of {self.base.total_steps:,} steps" \
                if configs is not None else "? trials"
            text = f"{config_text} × {plural(seeds, 'seed')} = {total}"
        self.query_one("#sweep-count", Label).update(text)

    def request(self) -> SweepRequest:
        """The sweep as `ddpg-tui sweep` would check it; raises UsageError or ConfigError with one line."""
        seeds = parse_seeds(self.query_one("#sweep-seeds", Input).value)
        jobs = self._integer("#sweep-jobs", "jobs", 1)
        reeval = self._integer("#sweep-reeval", "reeval", 0)
        scheduler = "asha" if self.query_one("#sweep-asha", Checkbox).value else None
        search = "tpe" if self.samples and self.query_one("#sweep-tpe", Checkbox).value else "random"
        if search == "tpe" and self.grid:
            key, values = next(iter(self.grid.items()))
            raise UsageError(f"TPE chooses every swept value itself: give {key} a distribution, such as "
                             f"choice({','.join(format_value(v) for v in values)}), instead of values")
        return new_sweep_request(self.base, self.label, self.threshold, seeds, self.grid, samples=self.samples,
                                 sample_count=self._sample_count(), search=search, scheduler=scheduler, jobs=jobs,
                                 reeval=reeval or None, root=self.root,
                                 seeds_together=self.query_one("#sweep-together", Checkbox).value)

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
            # The boxes here, not the command line's flags.
            text = str(error).replace("--seeds ", "seeds ", 1).replace("--seeds-together", "seeds together")
            message.update(text.replace("--scheduler asha", "ASHA"))
            message.add_class("invalid")
            return
        self.dismiss(request)

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)
