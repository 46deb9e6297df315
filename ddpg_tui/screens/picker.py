"""Choose an environment: a shipped preset, or any Gymnasium env id."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, TypeAlias

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Input, Label, Static
from textual.worker import get_current_worker

from presets import Preset, list_presets, load_preset

if TYPE_CHECKING:
    from agents.config import DDPGConfig
    from ddpg_tui.request import TrainingRequest

Choice: TypeAlias = "tuple[DDPGConfig, str] | TrainingRequest"  # the form to open, or the run to resume


def recent_runs_hint(root: Path = Path("runs"), count: int = 3) -> str:
    """The newest run folders, so that resuming one needs no looking up."""
    runs = sorted((p for p in root.glob("*") if (p / "checkpoints" / "latest.pt").exists()),
                  key=lambda p: p.stat().st_mtime, reverse=True)[:count]
    return "recent runs: " + ", ".join(str(p) for p in runs) if runs else ""


ENV_DIMS = {"Pendulum-v1": (3, 1), "MountainCarContinuous-v0": (2, 1), "LunarLanderContinuous-v3": (8, 2),
            "BipedalWalker-v3": (24, 4), "HalfCheetah-v5": (17, 6), "Hopper-v5": (11, 3)}


class PickerScreen(Screen):
    """The first screen: presets in a table, or an env id typed below it."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "choose", "Choose", show=True),
        Binding("slash", "focus_env", "Type an env id"),
        Binding("q", "app.quit", "Quit"),
    ]

    class Checked(Message):
        """A choice was checked in the worker: `error` is empty, or says why it cannot be used."""

        def __init__(self, field: str, choice: Choice | None, error: str) -> None:
            super().__init__()
            self.field = field
            self.choice = choice
            self.error = error

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

    # Choosing: each choice is checked in a thread worker, so a slow env never freezes the screen

    def open_preset(self, preset: Preset) -> None:
        self.start_check(f"checking {preset.env_id}…", "#presets", check_env, preset.config, preset.name)

    @on(Input.Submitted, "#env-id")
    def choose_env(self, event: Input.Submitted) -> None:
        from agents.config import DDPGConfig

        env_id = event.value.strip()
        if env_id:
            self.start_check(f"checking {env_id}…", "#env-id", check_env, DDPGConfig(env_id=env_id), env_id)

    @on(Input.Submitted, "#resume-run")
    def resume_run(self, event: Input.Submitted) -> None:
        text = event.value.strip()
        if text:
            self.start_check(f"checking {text}…", "#resume-run", check_resume, Path(text))

    def start_check(self, status: str, field: str, check: Callable[..., Choice], *args: Any) -> None:
        self.show_status(status)
        self.run_check(field, check, *args)

    @work(thread=True, exclusive=True, exit_on_error=False, group="check")
    def run_check(self, field: str, check: Callable[..., Choice], *args: Any) -> None:
        from agents.checkpoint import CheckpointError
        from agents.config import ConfigError
        from agents.envs import EnvError
        from agents.errors import first_line

        choice: Choice | None = None
        try:
            choice = check(*args)
            error = ""
        except (EnvError, CheckpointError, ConfigError) as problem:  # each says what to do in one line
            error = str(problem)
        except Exception as problem:  # e.g. OSError reading a checkpoint: still one line, never a crash
            error = f"{type(problem).__name__}: {first_line(problem)}"
        if not get_current_worker().is_cancelled:  # a newer choice replaced this one
            self.post_message(self.Checked(field, choice, error))

    @on(Checked)
    def checked(self, message: Checked) -> None:
        for selector in ("#env-id", "#resume-run"):
            self.query_one(selector, Input).set_class(selector == message.field and bool(message.error), "-invalid")
        if message.error or message.choice is None:
            self.show_error(message.error)
            return
        self.show_error("")
        if isinstance(message.choice, tuple):
            self.app.open_hyperparameters(*message.choice)
        else:
            self.app.open_dashboard(message.choice)

    def show_status(self, message: str) -> None:
        label = self.query_one("#env-error", Label)
        label.update(message)
        label.remove_class("invalid")

    def show_error(self, message: str) -> None:
        label = self.query_one("#env-error", Label)
        label.update(message)
        label.set_class(bool(message), "invalid")


# The checks: they run in the worker thread and raise one-line errors -------------------


def check_env(config: DDPGConfig, label: str) -> tuple[DDPGConfig, str]:
    """An extra that is missing, or an id that is not a continuous task, says so here, not later."""
    from agents.envs import make_env

    make_env(config.env_id).close()
    return config, label


def check_resume(run_dir: Path) -> TrainingRequest:
    """Everything the trainer would refuse, refused here: a missing or foreign checkpoint, a run
    that has already finished, an env id from the file that would import a module."""
    from agents.checkpoint import CheckpointError, load_checkpoint, resolve_checkpoint_path
    from agents.checkpoint_payload import FOR_RESUME, require_keys, resumed_config
    from agents.envs import make_env
    from ddpg_tui.request import TrainingRequest

    if not run_dir.is_dir():
        raise CheckpointError(f"{run_dir} is not a run folder")
    checkpoint = resolve_checkpoint_path(run_dir)
    payload = load_checkpoint(checkpoint)
    require_keys(payload, checkpoint, FOR_RESUME)
    config = resumed_config(payload, checkpoint, None, None)
    make_env(config.env_id).close()
    return TrainingRequest(None, run_dir, checkpoint)
