"""Choose an environment: a shipped preset, or any Gymnasium env id."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Input, Label, Static

from presets import Preset, list_presets, load_preset


def recent_runs_hint(root: Path = Path("runs"), count: int = 3) -> str:
    """The newest run folders, so that resuming one needs no looking up."""
    runs = sorted((p for p in root.glob("*") if (p / "checkpoints" / "latest.pt").exists()),
                  key=lambda p: p.stat().st_mtime, reverse=True)[:count]
    return "recent runs: " + ", ".join(str(p) for p in runs) if runs else ""


ENV_DIMS = {"Pendulum-v1": (3, 1), "MountainCarContinuous-v0": (2, 1), "LunarLanderContinuous-v3": (8, 2)}


class PickerScreen(Screen):
    """The first screen: presets in a table, or an env id typed below it."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "choose", "Choose", show=True),
        Binding("slash", "focus_env", "Type an env id"),
        Binding("q", "app.quit", "Quit"),
    ]

    def compose(self) -> ComposeResult:
        yield Header()
        with Vertical(id="picker"):
            yield Static("Choose an environment preset, or type any Gymnasium env id with Box spaces.",
                         id="picker-intro")
            yield DataTable(id="presets", cursor_type="row", zebra_stripes=True)
            yield Label("", id="preset-description")
            with Horizontal(id="custom-env", classes="picker-row"):
                yield Label("env id", classes="field-name")
                yield Input(placeholder="e.g. BipedalWalker-v3, then Enter", id="env-id", compact=True)
            with Horizontal(id="resume-row", classes="picker-row"):
                yield Label("resume run", classes="field-name")
                yield Input(placeholder="runs/<name>, then Enter", id="resume-run", compact=True)
            yield Label(recent_runs_hint(), id="recent-runs", classes="field-hint")
            yield Label("", id="env-error", classes="field-hint")
        yield Footer()

    def on_mount(self) -> None:
        self.presets: list[Preset] = [load_preset(name) for name in list_presets()]
        table = self.query_one("#presets", DataTable)
        table.add_columns("preset", "env id", "obs", "act", "steps", "solved at", "needs")
        for preset in self.presets:
            obs, act = ENV_DIMS.get(preset.env_id, ("?", "?"))
            solved = "" if preset.solved_threshold is None else f"{preset.solved_threshold:g}"
            needs = f"extra: {preset.extra}" if preset.extra else ""
            table.add_row(preset.name, preset.env_id, str(obs), str(act), f"{preset.config.total_steps:,}",
                          solved, needs, key=preset.name)
        default = next((i for i, p in enumerate(self.presets) if p.name == "pendulum"), 0)
        table.move_cursor(row=default)
        table.focus()

    @on(DataTable.RowHighlighted)
    def describe(self, event: DataTable.RowHighlighted) -> None:
        preset = self.presets[event.cursor_row]
        self.query_one("#preset-description", Label).update(preset.description)

    @on(DataTable.RowSelected)
    def choose_row(self, event: DataTable.RowSelected) -> None:
        self.open_preset(self.presets[event.cursor_row])

    def action_choose(self) -> None:
        table = self.query_one("#presets", DataTable)
        if table.has_focus:
            self.open_preset(self.presets[table.cursor_row])

    def action_focus_env(self) -> None:
        self.query_one("#env-id", Input).focus()

    def open_preset(self, preset: Preset) -> None:
        from agents.envs import EnvError, make_env

        try:
            make_env(preset.env_id).close()  # an extra that is missing says so here, not later
        except EnvError as error:
            self.show_error(str(error))
            return
        self.app.open_hyperparameters(preset.config, preset.name)

    @on(Input.Submitted, "#env-id")
    def choose_env(self, event: Input.Submitted) -> None:
        from agents.config import DDPGConfig
        from agents.envs import EnvError, make_env

        env_id = event.value.strip()
        if not env_id:
            return
        try:
            make_env(env_id).close()
        except EnvError as error:
            self.show_error(str(error))
            event.input.add_class("-invalid")
            return
        event.input.remove_class("-invalid")
        self.show_error("")
        self.app.open_hyperparameters(DDPGConfig(env_id=env_id), env_id)

    @on(Input.Submitted, "#resume-run")
    def resume_run(self, event: Input.Submitted) -> None:
        from agents.checkpoint import CheckpointError, load_checkpoint, resolve_checkpoint_path
        from ddpg_tui.request import TrainingRequest

        run_dir = Path(event.value.strip())
        try:
            if not run_dir.is_dir():
                raise CheckpointError(f"{run_dir} is not a run folder")
            checkpoint = resolve_checkpoint_path(run_dir)
            payload = load_checkpoint(checkpoint)
        except CheckpointError as error:
            self.show_error(str(error))
            event.input.add_class("-invalid")
            return
        step, total = payload["counters"]["step"], payload["config"]["total_steps"]
        if step >= total:
            self.show_error(f"{run_dir} already finished {step:,} of {total:,} steps; to train on: "
                            f"ddpg-tui train --resume {run_dir} --steps N")
            return
        event.input.remove_class("-invalid")
        self.app.open_dashboard(TrainingRequest(None, run_dir, checkpoint))

    def show_error(self, message: str) -> None:
        label = self.query_one("#env-error", Label)
        label.update(message)
        label.set_class(bool(message), "invalid")
