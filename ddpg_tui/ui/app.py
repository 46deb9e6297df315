"""DDPGApp: choose an environment, set hyperparameters, and watch training live.

Every way out (q, Ctrl+C, Ctrl+Q, the palette's Quit, SIGTERM, SIGHUP, SIGINT) takes one
path: `DDPGApp.action_quit`, or `quit_for_signal` for signals, both of which hand over
to the dashboard when one is open. It stops the trainer, waits for the training thread
to end, and only then exits, so no thread keeps the process alive after the screen is
gone. `run_app` then prints what the run left behind, as a headless run does.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import signal
import sys
import threading
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, ClassVar

from textual.app import App, SystemCommand
from textual.binding import Binding, BindingType
from textual.driver import Driver
from textual.screen import Screen

from agents.config import DDPGConfig
from agents.events import TrainerState
from ddpg_tui.population import PopulationRequest
from ddpg_tui.request import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_SIGHUP,
    EXIT_SIGINT,
    EXIT_SIGTERM,
    TrainingRequest,
    closing_lines,
)
from ddpg_tui.ui import lifecycle

# The dashboard, the session and everything they import (torch, gymnasium, plotext) load
# only when a dashboard opens: the picker comes up without them, in well under a second.
if TYPE_CHECKING:
    from ddpg_tui.sweeps.request import SweepRequest
    from ddpg_tui.ui.population_session import PopulationSession
    from ddpg_tui.ui.screens.dashboard import DashboardScreen, Session
    from ddpg_tui.ui.screens.sweep import LaunchingSweep, SweepScreen
    from ddpg_tui.ui.session import TrainingSession

SIGNAL_EXIT_CODES = {signal.SIGTERM: EXIT_SIGTERM, signal.SIGHUP: EXIT_SIGHUP, signal.SIGINT: EXIT_SIGINT}


class DDPGApp(App):
    CSS_PATH = "app.tcss"
    TITLE = "ddpg-tui"
    # Ctrl+C quits (asking first while training runs) even where an input would take it as
    # "copy": users press it to get out. Ctrl+Q is Textual's own binding to action_quit.
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+c", "quit", "Quit", show=False, priority=True, tooltip="Quit (asks first while training runs)"),
        # The first keys people press for help. In a text box ? is typed; F1 still opens it.
        Binding("question_mark,f1", "help", "Keys", show=False, tooltip="These keys"),
    ]
    # Screens get -tiny below 70 columns, -narrow below 100 and -short below 30 rows; app.tcss lays out
    # small terminals with them.
    HORIZONTAL_BREAKPOINTS: ClassVar[list[tuple[int, str]]] = [(0, "-tiny"), (70, "-narrow"), (100, "-wide")]
    VERTICAL_BREAKPOINTS: ClassVar[list[tuple[int, str]]] = [(0, "-short"), (30, "-tall")]

    def __init__(self, request: TrainingRequest | PopulationRequest | None = None, runs_root: Path = Path("runs"),
                 session: Session | None = None, driver_class: type[Driver] | None = None) -> None:
        """`request` opens straight on a training dashboard (a population's, for a PopulationRequest);
        `session` shows a given session instead (screenshots and tests feed fixed data this way). `driver_class`
        is Textual's (None: the terminal's); `ddpg-tui serve` passes its web driver."""
        super().__init__(driver_class=driver_class)
        self.request = request
        self.runs_root = runs_root
        self.session = session
        # The run (or population) this app started, if any: a signal's fallback stops it through its controls.
        self.training_session: TrainingSession | PopulationSession | None = None
        self.sweep: LaunchingSweep | None = None  # the sweep this app started from the form, if any
        self.received_signal: signal.Signals | None = None
        self._signal_loop: asyncio.AbstractEventLoop | None = None

    def on_mount(self) -> None:
        self._signal_loop = asyncio.get_running_loop()
        if self.received_signal is not None:  # arrived while the app was starting
            self.quit_for_signal(self.received_signal)
            return
        if self.session is not None:
            from ddpg_tui.ui.screens.dashboard import DashboardScreen

            self.push_screen(DashboardScreen(self.session, None))
        elif self.request is None:
            from ddpg_tui.ui.screens.picker import PickerScreen

            self.push_screen(PickerScreen())
        elif isinstance(self.request, PopulationRequest):
            self.open_population(self.request)
        else:
            self.open_dashboard(self.request)

    # Quitting ---------------------------------------------------------------------------

    @property
    def dashboard(self) -> DashboardScreen | None:
        from ddpg_tui.ui.screens.dashboard import DashboardScreen

        return next((s for s in self.screen_stack if isinstance(s, DashboardScreen)), None)

    @property
    def running_sweep(self) -> SweepScreen | None:
        """The sweep screen, while its sweep runs (trials save before the app may exit)."""
        if self.sweep is None:
            return None
        from ddpg_tui.ui.screens.sweep import SweepScreen

        screen = next((s for s in self.screen_stack if isinstance(s, SweepScreen)), None)
        return screen if screen is not None and screen.running else None

    def action_quit(self) -> None:
        """Ctrl+C, Ctrl+Q, the palette's Quit and the picker's q: the dashboard's own quit, or the sweep's."""
        sweep = self.running_sweep
        if sweep is not None:
            sweep.stop_then(lambda result: self.exit(return_code=EXIT_OK))
            return
        dashboard = self.dashboard
        if dashboard is None:
            self.exit(return_code=EXIT_OK)
        else:
            dashboard.action_quit_session()

    def handle_signal(self, signum: int) -> None:
        """SIGTERM, SIGHUP or SIGINT arrived; `run_app` installs this with `signal.signal`.

        Python runs a signal handler in the main thread between two bytecodes of whatever
        the event loop was doing, so this only schedules the quit: `call_soon_threadsafe`
        is the one loop call that is safe from there (asyncio's own signal handling uses it).
        """
        if self.received_signal is not None:
            return  # already on the way out
        self.received_signal = signal.Signals(signum)
        loop = self._signal_loop
        if loop is None:
            return  # not mounted yet: on_mount quits
        with contextlib.suppress(RuntimeError):  # the loop has already closed: the app is gone
            loop.call_soon_threadsafe(self.quit_for_signal, self.received_signal)

    def quit_for_signal(self, signum: signal.Signals) -> None:
        """SIGTERM, SIGHUP (terminal closed), SIGINT: save a checkpoint and exit with 128 + signum."""
        code = SIGNAL_EXIT_CODES[signum]
        sweep = self.running_sweep
        if sweep is not None:
            sweep.stop_then(lambda result: self.exit(return_code=code))
            return
        dashboard = self.dashboard
        if dashboard is None:
            self.exit(return_code=code)
        else:
            dashboard.quit_now(code)

    @property
    def exit_code(self) -> int:
        """What `run_app` returns: the signal's code, 1 for a crash or a run that ended in an error, else 0."""
        if self.received_signal is not None:
            return SIGNAL_EXIT_CODES[self.received_signal]
        if self.return_code:
            return self.return_code
        session = self.training_session
        if session is not None and session.snapshot().state == TrainerState.ERROR:
            return EXIT_FAILED
        return EXIT_OK

    def action_help(self) -> None:
        """The keys of the screen on top, read from its bindings (so the list cannot go stale)."""
        from ddpg_tui.ui.screens.modals import HelpScreen, screen_keys

        self.push_screen(HelpScreen(screen_keys(self.screen)))

    # The command palette ---------------------------------------------------------------

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        from ddpg_tui.ui.screens.dashboard import DashboardScreen
        from ddpg_tui.ui.screens.population import PopulationDashboardScreen

        for command in super().get_system_commands(screen):
            if command.title == "Quit":  # Textual's would exit with the trainer still running
                yield SystemCommand("Quit", "asks first while training runs (ctrl+c twice: save and quit)",
                                    self.action_quit)
            else:
                yield command
        if isinstance(screen, DashboardScreen):
            yield SystemCommand("Pause / resume training", "p or space", screen.action_toggle_pause)
            config = screen.config or getattr(screen.session, "config", None)
            episodes = f"{config.eval_episodes} episodes" if config is not None else "a few episodes"
            yield SystemCommand("Evaluate now", f"e: {episodes} with the exploration noise off, then training "
                                "goes on", screen.action_evaluate)
            yield SystemCommand("Save a checkpoint", "s: writes checkpoints/latest.pt", screen.action_save)
            every = ", for every member" if isinstance(screen, PopulationDashboardScreen) else ""
            yield SystemCommand("Change live hyperparameters", "h: noise, learning rates, tau and more, applied "
                                f"between two steps{every}", screen.action_edit_live)
            yield SystemCommand("Show the event log on the whole screen", "l, and l or esc to come back",
                                screen.action_toggle_log)

    # Navigation ------------------------------------------------------------------------

    def open_hyperparameters(self, config: DDPGConfig, label: str) -> None:
        from ddpg_tui.ui.screens.hyperparameters import HyperparametersScreen

        self.push_screen(HyperparametersScreen(config, label))

    def start_training(self, config: DDPGConfig, label: str) -> None:
        from agents.run_files import claim_run_dir

        self.open_dashboard(TrainingRequest(config, claim_run_dir(self.runs_root, label), claimed_run_dir=True))

    def start_sweep(self, request: SweepRequest) -> None:
        """A sweep from the form: its screen opens at once and Ray starts in the screen's worker."""
        from ddpg_tui.ui.screens.sweep import FormSweepScreen, LaunchingSweep

        self.sweep = LaunchingSweep(request)
        self.push_screen(FormSweepScreen(self.sweep, leave=lambda result: self.leave_sweep()))

    def on_sweep_screen_train_best(self, message: SweepScreen.TrainBest) -> None:
        """b on a finished sweep's screen: its best config in a new dashboard, over the sweep screen."""
        from presets import PresetError, load_preset_file, preset_file_label

        try:
            config = load_preset_file(message.path).config
        except PresetError as error:
            self.notify(str(error), severity="error", timeout=10)
            return
        self.start_training(config, preset_file_label(message.path))

    def leave_sweep(self) -> None:
        """Back from an ended sweep to the form it was started from."""
        from ddpg_tui.ui.screens.sweep import SweepScreen

        while any(isinstance(s, SweepScreen) for s in self.screen_stack):
            self.pop_screen()

    def open_dashboard(self, request: TrainingRequest) -> None:
        from ddpg_tui.ui.screens.dashboard import DashboardScreen
        from ddpg_tui.ui.session import TrainingSession

        self.training_session = TrainingSession(request)
        self.push_screen(DashboardScreen(self.training_session, request.config))

    def open_population(self, request: PopulationRequest) -> None:
        from ddpg_tui.ui.population_session import PopulationSession
        from ddpg_tui.ui.screens.population import PopulationDashboardScreen

        session = PopulationSession(request)
        self.training_session = session
        self.push_screen(PopulationDashboardScreen(session))


LOOP_ANSWER_TIMEOUT = 1.0  # seconds: an event loop that takes longer to run a callback is taken for wedged
EXIT_CAP = 10.0  # seconds after training has ended that a responsive app still gets to exit on its own


@contextlib.contextmanager
def signals_quit(app: DDPGApp) -> Iterator[None]:
    """Route SIGTERM, SIGHUP and SIGINT to the app's quit while it runs, then restore the old handlers.

    Textual turns off the terminal's ISIG, so Ctrl+C arrives as a key, not as SIGINT; a
    SIGINT can still come from `kill -INT` (or TEXTUAL_ALLOW_SIGNALS). The terminal's settings
    are saved before the app changes them, for a fallback end that skips Textual's own restore.
    """
    terminal = lifecycle.save_terminal()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        lifecycle.on_signal_received(signum)
        first = app.received_signal is None
        app.handle_signal(signum)
        if first:
            threading.Thread(target=exit_when_stuck, args=(app, terminal), name="exit-after-signal",
                             daemon=True).start()

    def wake() -> None:
        loop = app._signal_loop
        if loop is not None:
            loop.call_soon_threadsafe(lambda: None)

    previous = {sig: signal.signal(sig, on_signal) for sig in SIGNAL_EXIT_CODES}
    try:
        with lifecycle.wake_on_signals(wake):
            yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def exit_when_stuck(app: DDPGApp, terminal: lifecycle.SavedTerminal | None = None) -> None:
    """The fallback for a signal the event loop cannot act on.

    A closed terminal (SIGHUP) can wedge Textual: its output thread dies on EIO, and the
    UI thread then blocks for good on that thread's full queue, so nothing scheduled on
    the loop runs any more. This thread needs neither: it stops the trainer itself and
    lets it write its checkpoint. Then, while the loop still answers, the app is exiting
    normally and is left to it; once the loop stops answering, the process is ended here
    with the signal's exit code. Ended here, the app never gives the terminal back, so
    unless it hung up, `terminal` (its settings from before the app) is restored first.
    """
    session = app.training_session
    if session is not None:
        session.controls.stop(save=True)
        session.finished.wait(lifecycle.SAVE_BOUND)
    if app.sweep is not None:
        app.sweep.stop_sweep()
        app.sweep.finished.wait(lifecycle.SAVE_BOUND)
    deadline = time.monotonic() + EXIT_CAP
    while time.monotonic() < deadline:
        loop = app._signal_loop
        if loop is None:  # the app is still starting; on_mount sees the signal and exits
            time.sleep(0.1)
            continue
        answered = threading.Event()
        try:
            loop.call_soon_threadsafe(answered.set)
        except RuntimeError:
            # Closed: the app has exited and given the terminal back. The process may still be
            # held in threading._shutdown by a toolkit thread on a dead terminal, so it gets a
            # grace period to end on its own (this daemon thread ends with it), then is ended here.
            time.sleep(lifecycle.EXIT_GRACE)
            # Textual gave the terminal back; another ?1049l would put the cursor back over what was printed since.
            lifecycle.end_process(app.exit_code)
            return
        if not answered.wait(LOOP_ANSWER_TIMEOUT):
            break
        time.sleep(0.1)
    lifecycle.restore_terminal(terminal, app.received_signal)  # wedged, or past the cap: the app is still on it
    lifecycle.end_process(app.exit_code)


def print_closing_lines(lines: list[str]) -> None:
    """After the app has given the terminal back; a closed terminal (SIGHUP) just gets nothing."""
    try:
        for line in lines:
            print(line)
        sys.stdout.flush()
    except (OSError, ValueError):
        # Also keep Python's own flush at exit from complaining about the dead terminal.
        with contextlib.suppress(OSError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


def run_attached(run_dir: Path) -> int:
    """The dashboard on a run that another process trains (`ddpg-tui attach`); ChannelError if it is not live."""
    from ddpg_tui.ui.remote_session import RemoteSession

    session = RemoteSession(run_dir)
    app = DDPGApp(session=session)
    with signals_quit(app):
        app.run()
    if not session.detached and session.snapshot().message:
        print(f"{run_dir}: {session.snapshot().message}")
    return app.exit_code


def run_app(request: TrainingRequest | PopulationRequest | None, runs_root: Path = Path("runs"),
            driver_class: type[Driver] | None = None) -> int:
    app = DDPGApp(request, runs_root, driver_class=driver_class)
    with signals_quit(app):
        app.run()
    session = app.training_session
    if session is not None and session.handover:
        print_closing_lines(session.handover.splitlines())  # the run goes on; how to attach to it
    elif session is not None and session.outcome is not None:
        from ddpg_tui.ui.population_session import PopulationSession

        # A population's outcome says its members' folders; a run's, its checkpoint.
        print_closing_lines(session.closing_lines() if isinstance(session, PopulationSession)
                            else closing_lines(session.outcome))
    if app.sweep is not None:
        print_closing_lines(app.sweep.closing_lines())
    # The process ends next. Python's last garbage collections would walk every object torch
    # made, which took 0.5-0.9 s at exit (0.17 s frozen); nothing left needs collecting.
    gc.freeze()
    return app.exit_code
