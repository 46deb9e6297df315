"""The sweep screen: every trial of a sweep in a table, and one eval-return line per config.

Tune's loop (`SweepRun.fit`) runs in a Textual thread worker. Its driver-side callback folds
each trial's reports into the run's board; this screen takes a snapshot of the board on a
timer, as the dashboard does with a training session, and never reads trial folders (on a
cluster they are on other machines). Keys only ask: the next snapshot shows what happened.

Once the sweep has finished, b trains its best config (the best.toml the summary wrote in the
sweep folder, on the driver's disk): the screen posts `SweepScreen.TrainBest`, and the hosting
app decides how, the main app by opening a dashboard on it, `ddpg-tui sweep`'s own app by closing
and handing the file to the command, which then trains it in the app as `train --preset` would.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, ClassVar, Protocol

from rich.text import Text
from textual import work
from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Static
from textual.worker import Worker, WorkerState

from agents.events import EvalResult, StepStats, TrainerState
from ddpg_tui.sweeps.best import BEST_FILE
from ddpg_tui.sweeps.board import DONE_STATES, PENDING, SweepSnapshot, TrialRow, standings_text
from ddpg_tui.sweeps.history import Series
from ddpg_tui.sweeps.space import config_of_run
from ddpg_tui.ui import lifecycle
from ddpg_tui.ui.widgets.overlay_plot import OverlayPlot, hex_colour

REFRESH_SECONDS = 0.5
PLOT_EVERY = 4  # ticks: the plot at most every 2 s (a plotext figure holds the GIL for tens of ms)
COLUMNS = (("config", "config"), ("seed", "seed"), ("state", "state"), ("step", "step / total"),
           ("last", "last eval"), ("best", "best eval"), ("sps", "steps/s"))
STATE_STYLES = {"training": "bold green", "warming up": "yellow", "evaluating": "bold cyan", "finished": "bold blue",
                "stopped": "bold", "early-stopped": "magenta", "paused": "bold yellow", "error": "bold red",
                "retrying": "bold red", "pending": "dim", "starting": "dim"}
SWEEP_STATES = {"finished", "paused", "error"}  # the run has ended


class Board(Protocol):
    version: int

    def snapshot(self) -> SweepSnapshot: ...

    def row(self, name: str) -> TrialRow | None: ...


class SweepSource(Protocol):
    """What the screen needs of a sweep: `ddpg_tui.sweeps.driver.SweepRun`, or fixed data in tests."""

    board: Board

    def fit(self) -> Any: ...

    def stop_trial(self, name: str) -> bool: ...

    def stop_sweep(self) -> None: ...

    def abort(self) -> None: ...


class FixedBoard:
    def __init__(self, snapshot: SweepSnapshot) -> None:
        self._snapshot = snapshot
        self.version = snapshot.version

    def snapshot(self) -> SweepSnapshot:
        return self._snapshot

    def row(self, name: str) -> TrialRow | None:
        return next((r for r in self._snapshot.trials if r.name == name), None)


class FixedSweep:
    """A sweep that never runs and always shows the same snapshot (screenshots, tests); records requests."""

    def __init__(self, snapshot: SweepSnapshot) -> None:
        self.board = FixedBoard(snapshot)
        self.requests: list[tuple[str, str]] = []

    def fit(self) -> None:
        return None

    def stop_trial(self, name: str) -> bool:
        self.requests.append(("stop_trial", name))
        return True

    def stop_sweep(self) -> None:
        self.requests.append(("stop_sweep", ""))

    def abort(self) -> None:
        self.requests.append(("abort", ""))


def fmt_eval(mean: float, std: float | None = None) -> str:
    if math.isnan(mean):
        return "-"
    return f"{mean:,.1f}" + (f" ± {std:,.0f}" if std is not None and not math.isnan(std) else "")


def variant_series(snapshot: SweepSnapshot) -> tuple[list[Series], list[int]]:
    """One series per config that has evaluations, and each one's colour (its index in the sweep)."""
    series, colours = [], []
    for index, (variant, rows) in enumerate(snapshot.by_variant().items()):
        if any(row.evals for row in rows):
            series.append(Series.of_rows(variant, rows))
            colours.append(index)
    return series, colours


def headline(snapshot: SweepSnapshot) -> str:
    counts = snapshot.counts()
    done = sum(counts.get(s, 0) for s in DONE_STATES)
    running = len(snapshot.trials) - done - counts.get(PENDING, 0) - counts.get("paused", 0)
    minutes, seconds = divmod(int(snapshot.elapsed), 60)
    hours, minutes = divmod(minutes, 60)
    parts = [f"{snapshot.state}", f"{done}/{len(snapshot.trials)} trials done", f"{running} running",
             f"{hours}:{minutes:02d}:{seconds:02d}"]
    if snapshot.message:
        parts.append(snapshot.message)
    return "  ·  ".join(parts)


class SweepScreen(Screen):
    DEFAULT_CSS = """
    SweepScreen #sweep-status { height: auto; max-height: 3; padding: 0 1; }
    SweepScreen #standings { height: auto; max-height: 4; padding: 0 1; }
    SweepScreen #trials { height: 45%; min-height: 6; }
    SweepScreen #overlay { height: 1fr; min-height: 8; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("s", "stop_trial", "Stop trial"),
        Binding("S", "stop_sweep", "Stop sweep"),
        Binding("t", "open_trial", "Trial curves"),  # enter too (the table's own key, see on_data_table_row_selected)
        # Shown once the sweep has finished and wrote best.toml; short, so the footer still fits 80 columns.
        Binding("b", "train_best", "Train best", tooltip="Train the best config (best.toml)"),
        Binding("q", "quit_sweep", "Quit"),
    ]

    class TrainBest(Message):
        """b on a finished sweep: train the config in `path` (its best.toml); the app decides where."""

        def __init__(self, path: Path) -> None:
            super().__init__()
            self.path = path

    def __init__(self, source: SweepSource, run: bool = True, leave: Callable[[Any], None] | None = None) -> None:
        """`leave(result)` is how q leaves once the sweep has ended: by default the app exits with
        the result (the sweep's own app); the main app goes back to its form instead."""
        super().__init__()
        self.source = source
        self.run_sweep = run
        self.leave = leave
        self.worker: Worker | None = None
        self.result: Any = None
        self.last = SweepSnapshot(version=-1)
        self._ticks = 0
        self._leave_when_done: Callable[[Any], None] | None = None
        self._rows: list[str] = []
        self.fit_ended = threading.Event()  # Tune's loop has returned: a signal's watchdog waits for it

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static(id="sweep-status")
        table: DataTable = DataTable(id="trials", cursor_type="row", zebra_stripes=True)
        for key, label in COLUMNS:
            table.add_column(label, key=key)
        yield table
        yield Static(id="standings")
        yield OverlayPlot(id="overlay")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        if self.run_sweep:
            self.worker = self.fit()
        self.set_interval(REFRESH_SECONDS, self.refresh_view)
        self.refresh_view()

    @work(thread=True, exclusive=True, exit_on_error=False, name="sweep")
    def fit(self) -> Any:
        # Tune's whole loop runs here; it reports only through the board.
        try:
            return self.source.fit()
        finally:
            self.fit_ended.set()

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.worker is not self.worker or event.state not in (WorkerState.SUCCESS, WorkerState.ERROR):
            return
        if event.state == WorkerState.ERROR:
            self.notify(f"the sweep's driver failed: {event.worker.error}", severity="error", timeout=15)
        else:
            self.result = event.worker.result
            state = getattr(self.result, "state", "")
            where = getattr(self.result, "summary_md", None)
            if state == "finished":
                best = "; b trains the best config" if self.best_preset() else ""
                self.notify(f"summary: {where}{best}", title="Sweep finished", timeout=15)
            elif state == "paused":
                self.notify(getattr(self.result, "message", ""), title="Sweep stopped", timeout=15)
            elif state == "error":
                self.notify(getattr(self.result, "message", ""), title="Sweep failed", severity="error", timeout=15)
        self.refresh_view()
        if self._leave_when_done is not None:
            self._leave_when_done(self.result)

    # Drawing -----------------------------------------------------------------------------------

    def refresh_view(self) -> None:
        board = self.source.board
        if board.version == self.last.version and self._ticks:
            return
        snapshot = board.snapshot()
        self._ticks += 1
        if snapshot.state != self.last.state:
            self.refresh_bindings()  # b shows once the sweep has finished
        self.last = snapshot
        self.sub_title = f"sweep {snapshot.name}  {snapshot.env_id}"
        self.query_one("#sweep-status", Static).update(headline(snapshot))
        # Configs at equal steps: finished ones ranked by final median, stopped ones apart with their step.
        self.query_one("#standings", Static).update(Text("\n".join(standings_text(snapshot)), style="dim"))
        self._fill_table(snapshot)
        if self._ticks % PLOT_EVERY == 1 or snapshot.state in SWEEP_STATES:
            series, colours = variant_series(snapshot)
            self.query_one(OverlayPlot).show(series, colours, snapshot.threshold)

    def _fill_table(self, snapshot: SweepSnapshot) -> None:
        table = self.query_one(DataTable)
        colours = {variant: hex_colour(i) for i, variant in enumerate(snapshot.variants)}
        names = [row.name for row in snapshot.trials]
        if names != self._rows:  # first fill (or a restored sweep's order): rebuild
            table.clear()
            for row in snapshot.trials:
                table.add_row(*self._cells(row, colours), key=row.name)
            self._rows = names
            return
        for row in snapshot.trials:  # in place, so the cursor stays where the user put it
            for (key, _), value in zip(COLUMNS, self._cells(row, colours), strict=True):
                table.update_cell(row.name, key, value, update_width=True)  # "pending" grows to "early-stopped"

    @staticmethod
    def _cells(row: TrialRow, colours: dict[str, str]) -> tuple[Any, ...]:
        running = not row.done and row.state not in (PENDING, "paused")
        return (Text(row.variant, style=colours.get(row.variant, "")), str(row.seed),
                Text(row.state, style=STATE_STYLES.get(row.state, "")),
                f"{row.step:,} / {row.total_steps:,}", fmt_eval(row.eval_mean, row.eval_std), fmt_eval(row.best_eval),
                f"{row.steps_per_second:,.0f}" if running and row.steps_per_second else "")

    def selected_trial(self) -> str | None:
        table = self.query_one(DataTable)
        if not table.row_count:
            return None
        return str(table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value)

    # Actions -------------------------------------------------------------------------------------

    def action_stop_trial(self) -> None:
        name = self.selected_trial()
        if name is None:
            return
        if self.source.stop_trial(name):
            # The config is the unit: all its seeds stop together, each saving first.
            self.notify(f"{config_of_run(name)}: stopping every seed after a save", timeout=4)
        else:
            self.notify(f"{name} is not running", severity="warning", timeout=3)

    def action_stop_sweep(self) -> None:
        if self._ended():
            self.notify("the sweep has ended", severity="warning", timeout=3)
            return
        self.source.stop_sweep()
        self.notify("stopping: each running trial saves a checkpoint; carry on later with --resume", timeout=6)

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()  # the table takes enter first: it means the same as the screen's binding
        self.action_open_trial()

    def action_open_trial(self) -> None:
        name = self.selected_trial()
        if name is not None:
            self.app.push_screen(TrialScreen(self.source.board, name))

    def best_preset(self) -> Path | None:
        """The sweep's best.toml, once the sweep has finished and written it."""
        if not self.last.sweep_dir or self.last.state != "finished" or not self._ended():
            return None
        path = Path(self.last.sweep_dir) / BEST_FILE
        return path if path.is_file() else None

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "train_best":
            return self.best_preset() is not None  # False hides the key until there is a best config
        return True

    def action_train_best(self) -> None:
        path = self.best_preset()
        if path is not None:
            self.post_message(self.TrainBest(path))

    def action_quit_sweep(self) -> None:
        """q: stop the sweep (each trial saves), then close when Tune's loop has ended. Again: at once."""
        self.stop_then(self.leave or (lambda result: self.app.exit(result)))

    def stop_then(self, leave: Callable[[Any], None]) -> None:
        """Call `leave(result)` once the sweep has ended, stopping it first; a second call stops it at once."""
        if self._ended():
            leave(self.result)
        elif self._leave_when_done is not None:
            self._leave_when_done = leave
            self.source.abort()
            self.notify("stopping now, without waiting for saves", severity="warning", timeout=4)
        else:
            self._leave_when_done = leave
            self.source.stop_sweep()
            self.notify("stopping: each running trial saves, then this closes (q again: at once)", timeout=8)

    @property
    def running(self) -> bool:
        return self.worker is not None and not self._ended()

    def _ended(self) -> bool:
        if self.worker is None:  # showing a sweep run elsewhere (or fixed data): its own state says
            return self.last.state in SWEEP_STATES
        return self.worker.state in (WorkerState.SUCCESS, WorkerState.ERROR, WorkerState.CANCELLED)


class FormSweepScreen(SweepScreen):
    """The sweep screen in the main app, started from the form: q goes back to it (stopping the sweep first)."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("q", "quit_sweep", "Back to the form")]


# One trial, read-only --------------------------------------------------------------------------------

TRIAL_STATES = {"warming up": TrainerState.WARMING_UP, "training": TrainerState.TRAINING,
                "evaluating": TrainerState.EVALUATING, "finished": TrainerState.FINISHED,
                "stopped": TrainerState.STOPPED, "early-stopped": TrainerState.STOPPED,
                "paused": TrainerState.PAUSED, "error": TrainerState.ERROR}


def trial_snapshot(row: TrialRow, env_id: str, run_dir: str) -> Any:
    """A dashboard snapshot of one trial, from what the trial reported to the driver (never its files)."""
    from ddpg_tui.ui.session import Snapshot

    evals = tuple(EvalResult(int(s), m, sd, ()) for s, m, sd in row.evals)
    best = max(evals, key=lambda e: e.mean) if evals else None
    updates = row.losses[-1][0] if row.losses else 0
    progress = StepStats(row.step, row.total_steps, row.episodes_done, row.steps_per_second, 0, 0, 0.0,
                         row.train_seconds, updates)
    return Snapshot(version=row.step, env_id=env_id, run_dir=run_dir,
                    state=TRIAL_STATES.get(row.state, TrainerState.STARTING), message=row.message, progress=progress,
                    episode_steps=tuple(int(s) for s, _ in row.episodes),
                    episode_returns=tuple(r for _, r in row.episodes), evals=evals, best_eval=best,
                    loss_updates=tuple(int(u) for u, _, _ in row.losses),
                    critic_losses=tuple(c for _, c, _ in row.losses), actor_losses=tuple(a for _, _, a in row.losses))


class TrialScreen(Screen):
    """One trial's curves, as its ordinary dashboard draws them, without its controls (read-only)."""

    DEFAULT_CSS = """
    TrialScreen #trial-plots { width: 1fr; }
    TrialScreen #trial-reward { height: 1fr; min-height: 8; }
    TrialScreen #trial-losses { height: 40%; min-height: 6; }
    TrialScreen #trial-status { width: 38; padding: 0 1; border: round $primary; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "back", "Back"), Binding("q", "back", "Back")]

    def __init__(self, board: Board, name: str) -> None:
        super().__init__()
        self.board = board
        self.trial = name
        self._drawn = -1

    def compose(self) -> ComposeResult:
        from ddpg_tui.ui.widgets.panels import StatusPanel
        from ddpg_tui.ui.widgets.plots import LossPlot, RewardPlot

        yield Header()
        with Horizontal():
            with Vertical(id="trial-plots"):
                yield RewardPlot(id="trial-reward")
                with Horizontal(id="trial-losses"):
                    yield LossPlot("Critic loss", "critic_losses", log_scale=True)
                    yield LossPlot("Actor loss (-Q)", "actor_losses", log_scale=False)
            yield StatusPanel(id="trial-status")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#trial-status").border_title = "Status (read-only)"
        self.sub_title = self.trial
        self.set_interval(1.0, self.refresh_view)
        self.refresh_view()

    def refresh_view(self) -> None:
        from ddpg_tui.ui.widgets.panels import StatusPanel
        from ddpg_tui.ui.widgets.plots import LossPlot, RewardPlot

        row = self.board.row(self.trial)
        if row is None or (row.step, len(row.evals), row.state) == self._drawn:
            return
        self._drawn = (row.step, len(row.evals), row.state)
        sweep = self.board.snapshot()
        snapshot = trial_snapshot(row, sweep.env_id, f"{sweep.sweep_dir}/{row.name}")
        self.query_one(StatusPanel).show(snapshot)
        self.query_one(RewardPlot).show(snapshot)
        for plot in self.query(LossPlot):
            plot.show(snapshot)

    def action_back(self) -> None:
        self.app.pop_screen()


# A sweep the main app starts from its form ---------------------------------------------------------


_DEVNULL: Any = None


@contextlib.contextmanager
def stdio_for_ray() -> Iterator[None]:
    """Real files as sys.stdout and sys.stderr while Ray Tune is imported and Ray starts, inside the app.

    Textual captures both with objects that have no `encoding` (Tune's import reads it) and a
    fileno of -1 (Ray's start enables faulthandler on stderr, which refuses it). Both go to
    /dev/null meanwhile: nothing Ray prints belongs on the app's screen.
    """
    global _DEVNULL
    if _DEVNULL is None:
        _DEVNULL = open(os.devnull, "w", encoding="utf-8")  # noqa: SIM115 (kept open: faulthandler keeps its fd)
    saved = sys.stdout, sys.stderr
    sys.stdout = sys.stderr = _DEVNULL
    try:
        yield
    finally:
        if sys.stdout is _DEVNULL:  # the app may have put its own back in the meantime
            sys.stdout, sys.stderr = saved


class LaunchingSweep:
    """A sweep whose Ray is not up yet: `fit` connects (seconds), then runs it; until then, an empty board.

    The form's dialog has checked the request; connecting can still fail (Ray missing, a
    dead address), and that ends the worker with one line. A stop asked for before Ray is
    up is kept and given to the run as soon as it exists.
    """

    def __init__(self, request: Any) -> None:
        from ddpg_tui.sweeps.board import SweepBoard

        self.request = request
        self.sweep_dir = request.sweep_dir
        self.board: Any = SweepBoard.for_sweep(request.spec, str(request.sweep_dir.resolve()))
        self.board.set_state("starting", "starting Ray")
        self.run: Any = None
        self.result: Any = None
        self.finished = threading.Event()
        self._stop = ""  # "", "stop" or "abort"

    def fit(self) -> Any:
        from ddpg_tui.sweeps.request import start_sweep

        try:
            try:
                with stdio_for_ray():
                    import ray.tune  # noqa: F401
                    self.run = start_sweep(self.request)
            except Exception as error:
                self.board.set_state("error", str(error))
                raise
            self.board = self.run.board
            try:
                if self._stop:
                    self.run.abort() if self._stop == "abort" else self.run.stop_sweep()
                self.result = self.run.fit()
            finally:
                self.run.close()
            return self.result
        finally:
            self.finished.set()

    def stop_trial(self, name: str) -> bool:
        return self.run is not None and self.run.stop_trial(name)

    def stop_sweep(self) -> None:
        self._stop = self._stop or "stop"
        if self.run is not None:
            self.run.stop_sweep()

    def abort(self) -> None:
        self._stop = "abort"
        if self.run is not None:
            self.run.abort()

    def closing_lines(self) -> list[str]:
        """What the app prints after it closes, as `ddpg-tui sweep` does."""
        result = self.result
        if result is None:
            return [f"the sweep stopped; carry it on with: ddpg-tui sweep --resume {self.sweep_dir}"]
        lines = [f"sweep {self.request.spec.name}: {result.state}; summary: {result.summary_md}"]
        return lines + ([result.message] if result.message else [])


# The app that hosts it on its own (`ddpg-tui sweep` without --headless) -----------------------------


class SweepApp(App):
    """The sweep screen as an app of its own, until the main app opens it from its forms."""

    TITLE = "ddpg-tui"
    BINDINGS: ClassVar[list[BindingType]] = [Binding("ctrl+c", "quit_sweep", "Quit", show=False, priority=True)]

    def __init__(self, source: SweepSource, run: bool = True) -> None:
        super().__init__()
        self.source = source
        self.run_sweep = run
        self.loop: asyncio.AbstractEventLoop | None = None
        self.train_after: Path | None = None  # b: the best.toml to train once this app has closed
        self.received_signal: int | None = None  # set by run_sweep_app's handler

    def on_mount(self) -> None:
        self.loop = asyncio.get_running_loop()  # for signal handlers, which may only schedule work on it
        self.push_screen(SweepScreen(self.source, run=self.run_sweep))
        if self.received_signal is not None:  # it came while the app was starting: nothing scheduled the quit
            self.call_after_refresh(self.action_quit_sweep)

    @property
    def fit_ended(self) -> bool:
        screen = self.sweep_screen
        return screen is not None and screen.fit_ended.is_set()

    @property
    def sweep_screen(self) -> SweepScreen | None:
        return next((s for s in self.screen_stack if isinstance(s, SweepScreen)), None)

    def action_quit_sweep(self) -> None:
        screen = self.sweep_screen
        if screen is None:
            self.exit()
        else:
            screen.action_quit_sweep()

    def action_quit(self) -> None:  # Ctrl+Q and the palette's Quit: stop the sweep first, as q does
        self.action_quit_sweep()

    def on_sweep_screen_train_best(self, message: SweepScreen.TrainBest) -> None:
        """This app has no dashboard: it closes, and `run_sweep_app` trains the file in the main app."""
        from presets import PresetError, load_preset_file

        try:
            load_preset_file(message.path)  # refuse a bad file here, on the screen, not after closing
        except PresetError as error:
            self.notify(str(error), severity="error", timeout=10)
            return
        self.train_after = message.path
        screen = self.sweep_screen
        self.exit(screen.result if screen is not None else None)


SWEEP_EXIT_GRACE = 10.0  # seconds from the end of Tune's loop for the app to close and Ray to shut down


def run_sweep_app(run: Any, print_line: Callable[[str], None] = print,
                  train: Callable[[Path], int] | None = None) -> int:
    """Run the sweep in the app; afterwards print what it left behind, as the headless sweep does.

    A signal (SIGTERM, SIGHUP when the terminal closes, SIGINT from `kill`) stops the sweep with
    every running trial saving, closes the app and ends with 128 + the signal; a second one stops
    it at once. Textual turns ISIG off, so Ctrl+C is a key here (q's quit), not a signal.
    `train(path)` trains a preset file; it is called with best.toml when b closed the app for it.
    """
    app = SweepApp(run)
    terminal = lifecycle.save_terminal()
    app_returned = threading.Event()  # Textual has given the terminal back itself
    received: list[int] = []

    def give_terminal_back() -> None:
        if not app_returned.is_set():
            lifecycle.restore_terminal(terminal, received[0])

    def on_signal(signum: int, frame: Any) -> None:
        lifecycle.on_signal_received(signum)
        received.append(signum)
        app.received_signal = app.received_signal or signum
        # The stop runs in a thread: the handler may have interrupted this very thread inside
        # stop_sweep's lock (q pressed an instant before), and a lock taken twice never returns.
        stop = run.stop_sweep if len(received) == 1 else run.abort
        threading.Thread(target=stop, name="stop-sweep", daemon=True).start()
        if len(received) == 1:
            lifecycle.end_after(lambda: app.fit_ended, lifecycle.exit_code(signum), bound=lifecycle.SWEEP_STOP_BOUND,
                                grace=SWEEP_EXIT_GRACE, before_end=give_terminal_back)
        # A signal handler runs between two bytecodes of the loop: only schedule the quit (a second
        # quit stops at once, as a second q does).
        if app.loop is not None:
            with contextlib.suppress(RuntimeError):  # the loop has closed: the app is on its way out
                app.loop.call_soon_threadsafe(app.action_quit_sweep)

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    try:
        app.run()
    finally:
        app_returned.set()
        lifecycle.keep_handlers_if_signalled(previous, received)
    screen_result = app.return_value
    if screen_result is None:  # the app closed before Tune's loop reported its end
        lifecycle.say(print_line, f"the sweep stopped; carry it on with: ddpg-tui sweep --resume {run.sweep_dir}")
        return lifecycle.exit_code(received[0]) if received else 130
    for line in (screen_result.markdown, f"summary: {screen_result.summary_md}, {screen_result.summary_csv}",
                 *([screen_result.message] if screen_result.message else [])):
        lifecycle.say(print_line, line)
    if screen_result.state == "error":
        return 1
    if received:
        return lifecycle.exit_code(received[0])
    if app.train_after is not None and train is not None:
        print_line(f"training the best config: ddpg-tui train --preset {app.train_after}")
        return train(app.train_after)
    return 0
