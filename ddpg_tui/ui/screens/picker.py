"""Choose an environment: a shipped preset, or any Gymnasium env id."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, TypeAlias

from textual import events, on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, VerticalScroll
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
    runs = sorted((p for p in Path(root).glob("*") if (p / "checkpoints" / "latest.pt").exists()),
                  key=lambda p: p.stat().st_mtime, reverse=True)[:count]
    return "recent runs: " + ", ".join(str(p) for p in runs) if runs else ""


class FinishedRun(Exception):
    """The run to resume has done all its steps: the picker offers to give it more."""

    def __init__(self, run_dir: Path, step: int, total_steps: int) -> None:
        super().__init__(f"{run_dir} already finished {step:,} of {total_steps:,} steps. To train on, type a new "
                         f"total above {step:,} in 'train on to' and press Enter.")
        self.run_dir, self.step, self.total_steps = run_dir, step, total_steps


def preset_description(preset: Preset) -> str:
    """The description, and how to install the extra the preset needs when it is missing (and only then)."""
    # Descriptions end in "; needs box2d": true only while the extra is missing, so the picker says it itself.
    description = preset.description.removesuffix(f"; needs {preset.extra}") if preset.extra else preset.description
    if preset.missing_extra:
        description += f"\nneeds {preset.missing_extra}, which is not installed: {preset.install_hint}"
    return description


WIDE_TABLE = 100  # columns from which the table has room for the env id
ENV_DIMS = {"Pendulum-v1": (3, 1), "MountainCarContinuous-v0": (2, 1), "LunarLanderContinuous-v3": (8, 2),
            "BipedalWalker-v3": (24, 4), "HalfCheetah-v5": (17, 6), "Hopper-v5": (11, 3)}


class PickerScreen(Screen):
    """The first screen: presets in a table, or an env id typed below it."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "choose", "Choose", show=True),
        Binding("slash", "focus_env", "Type an env id"),
        Binding("c", "open_runs", "Compare runs"),
        Binding("q", "app.quit", "Quit"),
    ]

    class Checked(Message):
        """A choice was checked in the worker: `error` is empty, or says why it cannot be used."""

        def __init__(self, field: str, choice: Choice | None, error: str, finished: FinishedRun | None = None) -> None:
            super().__init__()
            self.field = field
            self.choice = choice
            self.error = error
            self.finished = finished

    def compose(self) -> ComposeResult:
        yield Header()
        with VerticalScroll(id="picker"):  # at 60x18 the boxes are below the table
            yield Static("Choose an environment preset, or type any Gymnasium env id with Box spaces.",
                         id="picker-intro")
            yield DataTable(id="presets", cursor_type="row", zebra_stripes=True)
            # Data, not markup: a hint such as 'ddpg-tui[mujoco]' or a path with brackets must show as written.
            yield Label("", id="preset-description", markup=False)
            with Horizontal(id="custom-env", classes="picker-row"):
                yield Label("env id", classes="field-name")
                yield Input(placeholder="e.g. BipedalWalker-v3, then Enter", id="env-id", compact=True)
            with Horizontal(id="resume-row", classes="picker-row"):
                yield Label("resume run", classes="field-name")
                yield Input(placeholder="runs/<name>, then Enter", id="resume-run", compact=True)
            # Right under the resume box, so that the message below can grow without pushing it out of view.
            with Horizontal(id="extend-row", classes="picker-row"):
                yield Label("train on to", classes="field-name")
                # Not type="integer": that refuses the 'e' of 1e5, the way RL users write step counts.
                yield Input(placeholder="total steps (6e5 works), then Enter", id="extend-steps", compact=True,
                            restrict=r"[0-9eE.,_+]*")
            yield Label(recent_runs_hint(self.app.runs_root), id="recent-runs", classes="field-hint", markup=False)
            yield Label("", id="env-error", classes="field-hint", markup=False)
        yield Footer()

    def on_mount(self) -> None:
        self.presets: list[Preset] = [load_preset(name) for name in list_presets()]
        self.finished: FinishedRun | None = None  # the finished run the extend box would train on
        self.query_one("#extend-row").display = False
        self.fill_table(narrow=self.size.width < WIDE_TABLE)
        default = next((i for i, p in enumerate(self.presets) if p.name == "pendulum"), 0)
        table = self.query_one("#presets", DataTable)
        table.move_cursor(row=default)
        table.focus()

    def fill_table(self, narrow: bool) -> None:
        """One row per preset. Below WIDE_TABLE columns the env id moves to the description line, so that
        the table fits without scrolling sideways; "needs" lists only extras that are not installed."""
        self._narrow = narrow
        table = self.query_one("#presets", DataTable)
        row = table.cursor_row
        table.clear(columns=True)
        missing = any(p.missing_extra for p in self.presets)
        columns = ["preset", *([] if narrow else ["env id"]), "obs/act", "steps", "solved at",
                   *(["needs"] if missing else [])]
        table.add_columns(*columns)
        for preset in self.presets:
            obs, act = ENV_DIMS.get(preset.env_id, ("?", "?"))
            solved = "" if preset.solved_threshold is None else f"{preset.solved_threshold:g}"
            cells = [preset.name, *([] if narrow else [preset.env_id]), f"{obs}/{act}",
                     f"{preset.config.total_steps:,}", solved, *([preset.missing_extra or ""] if missing else [])]
            table.add_row(*cells, key=preset.name)
        table.move_cursor(row=row)

    def on_resize(self, event: events.Resize) -> None:
        narrow = event.size.width < WIDE_TABLE
        if narrow != self._narrow:
            self.fill_table(narrow)

    @on(DataTable.RowHighlighted)
    def describe(self, event: DataTable.RowHighlighted) -> None:
        preset = self.presets[event.cursor_row]
        text = preset_description(preset)
        if self._narrow:
            text = f"{preset.env_id}: {text}"
        self.query_one("#preset-description", Label).update(text)

    @on(DataTable.RowSelected)
    def choose_row(self, event: DataTable.RowSelected) -> None:
        self.open_preset(self.presets[event.cursor_row])

    def action_choose(self) -> None:
        table = self.query_one("#presets", DataTable)
        if table.has_focus:
            self.open_preset(self.presets[table.cursor_row])

    def action_focus_env(self) -> None:
        self.query_one("#env-id", Input).focus()

    def action_open_runs(self) -> None:
        from ddpg_tui.sweeps.history import list_runs
        from ddpg_tui.ui.screens.runs import RunsScreen

        root = self.app.runs_root
        self.app.push_screen(RunsScreen(lambda: list_runs(root)))

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

    @on(Input.Submitted, "#extend-steps")
    def extend_run(self, event: Input.Submitted) -> None:
        """Resume the finished run with a new total, as `train --resume RUN --steps N` would."""
        from agents.config import ConfigError, parse_value

        finished = self.finished
        if finished is None:
            return
        try:
            total = parse_value("total_steps", event.value.strip())
        except ConfigError as error:
            self.show_error(str(error), field="#extend-steps")
            return
        if total <= finished.step:
            self.show_error(f"total_steps: {total:,} is not more than the {finished.step:,} steps already done",
                            field="#extend-steps")
            return
        self.start_check(f"checking {finished.run_dir}…", "#extend-steps", check_resume, finished.run_dir, total)

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
        finished: FinishedRun | None = None
        try:
            choice = check(*args)
            error = ""
        except FinishedRun as problem:
            error, finished = str(problem), problem
        except (EnvError, CheckpointError, ConfigError) as problem:  # each says what to do in one line
            error = str(problem)
        except Exception as problem:  # e.g. OSError reading a checkpoint: still one line, never a crash
            error = f"{type(problem).__name__}: {first_line(problem)}"
        if not get_current_worker().is_cancelled:  # a newer choice replaced this one
            self.post_message(self.Checked(field, choice, error, finished))

    @on(Checked)
    def checked(self, message: Checked) -> None:
        if message.field != "#extend-steps":  # a new choice: the offer to extend another run is gone
            self.offer_extension(message.finished)
        if message.error or message.choice is None:
            self.show_error(message.error, message.field)
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

    def show_error(self, message: str, field: str = "") -> None:
        """The line under the boxes; `field` is the box to mark, if any (the others are cleared)."""
        label = self.query_one("#env-error", Label)
        label.update(message)
        label.set_class(bool(message), "invalid")
        # Not Input's own -invalid class, which its validation on blur would take away again.
        for selector in ("#env-id", "#resume-run", "#extend-steps"):
            self.query_one(selector, Input).set_class(selector == field and bool(message), "-refused")

    def offer_extension(self, finished: FinishedRun | None) -> None:
        """Show the box for a new total under a finished run (filled in with twice its steps), or hide it."""
        self.finished = finished
        row = self.query_one("#extend-row")
        row.display = finished is not None
        if finished is not None:
            box = self.query_one("#extend-steps", Input)
            box.value = str(max(2 * finished.total_steps, finished.step + 1))
            self.call_after_refresh(box.focus)  # once the row is laid out, so that focus can scroll to it


# The checks: they run in the worker thread and raise one-line errors -------------------


def check_env(config: DDPGConfig, label: str) -> tuple[DDPGConfig, str]:
    """An extra that is missing, or an id that is not a continuous task, says so here, not later."""
    from agents.envs import make_env

    make_env(config.env_id).close()
    return config, label


def check_resume(run_dir: Path, total_steps: int | None = None) -> TrainingRequest:
    """Everything the trainer would refuse, refused here: a missing or foreign checkpoint, a run
    that has already finished (FinishedRun, so that the picker can offer more steps), an env id
    from the file that would import a module. `total_steps` extends the run."""
    from agents.checkpoint import CheckpointError, load_checkpoint, resolve_checkpoint_path
    from agents.checkpoint_payload import FOR_RESUME, RunFinishedError, require_keys, resumed_config
    from agents.envs import make_env
    from ddpg_tui.request import TrainingRequest

    if not run_dir.is_dir():
        raise CheckpointError(f"{run_dir} is not a run folder")
    checkpoint = resolve_checkpoint_path(run_dir)
    payload = load_checkpoint(checkpoint)
    require_keys(payload, checkpoint, FOR_RESUME)
    try:
        config = resumed_config(payload, checkpoint, total_steps, None)
    except RunFinishedError:
        saved_total = payload["config"].get("total_steps") if isinstance(payload["config"], dict) else None
        step = int(payload["counters"]["step"])
        raise FinishedRun(run_dir, step, total_steps or int(saved_total or step)) from None
    make_env(config.env_id).close()
    return TrainingRequest(None, run_dir, checkpoint, total_steps=total_steps)
