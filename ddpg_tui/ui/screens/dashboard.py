"""The live dashboard of one training session."""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import sys
import threading
import time
from typing import Any, ClassVar, Protocol

from textual import events, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import Footer, Header, Static
from textual.worker import Worker, WorkerError

from agents.config import ConfigError, DDPGConfig
from agents.controls import Controls
from agents.events import TrainerState
from ddpg_tui.request import EXIT_OK
from ddpg_tui.ui.screens.modals import ConfirmQuitScreen, DetachOrStopScreen, LiveEditScreen
from ddpg_tui.ui.session import Snapshot
from ddpg_tui.ui.widgets.agent_panel import AgentPanel
from ddpg_tui.ui.widgets.panels import EventLog, StatusPanel
from ddpg_tui.ui.widgets.plots import LossPlot, RewardPlot

# What drawing costs training is GIL time: while the UI thread draws, the trainer's thread waits. On small
# nets that train fast (pendulum's 64x64 at ~500 steps/s on one thread) the trainer is mostly Python, and
# each redraw showed in its steps/s: text panels at 2 Hz and plots every 2 s kept 0.89 of headless, both
# every 2 s 0.96 (benchmarks/live_run_cost.py). So the text panels redraw twice a second, once a second
# while a run trains faster than FAST_STEPS_PER_SECOND, and at once after a key: what the trainer
# confirms between two steps shows ANSWER_SECONDS later, not at the next tick. The plots (a plotext
# figure rebuilt holds the GIL for ~25 ms) redraw at every PLOT_EVERY-th drawing of the text.
REFRESH_HZ = 2
FAST_STEPS_PER_SECOND = 300.0
ANSWER_SECONDS = 0.1
STARTING_SECONDS = 3.0  # after the screen opens, it redraws every ANSWER_SECONDS while anything changes
PLOT_EVERY = 4
# The smallest terminal the dashboard lays out in: the footer's seven keys take 57 columns (p Resume),
# and below 18 rows the events panel has no line left. Smaller, one line says so instead.
MIN_SIZE = (60, 18)


def resume_in_background(run_dir: str) -> str:
    """`ddpg-tui train --resume RUN --detach`, which returns once the background process is live; what it said."""
    result = subprocess.run([sys.executable, "-m", "ddpg_tui", "train", "--resume", run_dir, "--detach"],
                            stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=300)
    return (result.stdout + result.stderr).strip()


class Session(Protocol):
    controls: Controls
    record_evaluations: threading.Event

    def run(self) -> Any: ...

    @property
    def version(self) -> int: ...

    def snapshot(self) -> Snapshot: ...


class DashboardScreen(Screen):
    # Short descriptions: all seven keys fit the footer down to 60 columns (56 and the palette's key,
    # hidden below 70); the help screen (? or F1) shows each key's tooltip in full.
    BINDINGS: ClassVar[list[BindingType]] = [
        # One key, two descriptions: check_action shows the one that says what p does now.
        Binding("p", "pause", "Pause", tooltip="Pause training"),
        Binding("p", "resume", "Resume", tooltip="Resume training"),
        Binding("space", "toggle_pause", "Pause / resume", show=False, tooltip="Pause or resume training"),
        Binding("e", "evaluate", "Eval", tooltip="Evaluate now, with the exploration noise off"),
        Binding("s", "save", "Save", tooltip="Save a checkpoint (checkpoints/latest.pt)"),
        Binding("h", "edit_live", "Params", tooltip="Change hyperparameters live"),
        Binding("l", "toggle_log", "Events", tooltip="The event log on the whole screen, and back"),
        Binding("w", "toggle_agent", "Agent", tooltip="Watch the agent in place of the curves, and back"),
        Binding("q", "quit_session", "Quit", tooltip="Quit (asks first while training runs)"),
    ]

    def __init__(self, session: Session, config: DDPGConfig | None) -> None:
        super().__init__()
        self.session = session
        self.config = config
        self.worker: Worker | None = None
        self.last_snapshot = Snapshot()
        self._ticks = 0  # drawings
        self._timer_ticks = 0
        self._opened = time.monotonic()
        self._plotted_version = -1  # the snapshot version the plots last showed
        self._toasted_saves = 0
        self._error_shown = False
        self._confirm: ConfirmQuitScreen | DetachOrStopScreen | None = None
        self._quitting = False
        self._paused = False  # what p does: resume while paused (also while evaluating from a pause)

    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal(id="dashboard"):
            with Vertical(id="plots"):
                yield RewardPlot(id="reward-plot")
                with Horizontal(id="loss-plots"):
                    yield LossPlot("Critic loss", "critic_losses", log_scale=True, id="critic-plot")
                    yield LossPlot("Actor loss (-Q)", "actor_losses", log_scale=False, id="actor-plot")
                yield AgentPanel(id="agent")  # hidden until w; then it takes the plots' place
            with Vertical(id="side"):
                yield StatusPanel(id="status", classes="panel")
                # Another panel (e.g. the agent's env frames) mounts here, before the log,
                # with a height of its own; the log takes what is left.
                yield EventLog(id="log", classes="panel")
        yield Static("", id="too-small", markup=False)  # shown in place of the rest, below MIN_SIZE
        yield Footer(compact=True)  # six keys and the palette's fit 80 columns only this way

    def on_mount(self) -> None:
        for panel, title in (("#status", "Status"), ("#log", "Events")):
            self.query_one(panel).border_title = title
        self.worker = self.train()
        self.set_interval(1 / REFRESH_HZ, self.on_tick)
        # The history of a resumed or attached run is folded in the worker soon after this: show it as soon as
        # it is there, not at the next tick (up to a second later on a fast run).
        self.set_interval(ANSWER_SECONDS, self.refresh_from_session, repeat=round(STARTING_SECONDS / ANSWER_SECONDS))
        self.refresh_from_session()

    def on_resize(self, event: events.Resize) -> None:
        width, height = event.size
        too_small = width < MIN_SIZE[0] or height < MIN_SIZE[1]
        self.set_class(too_small, "-too-small")
        if too_small:  # the keys still work: q quits, as ever
            self.query_one("#too-small", Static).update(
                f"The window is {width}×{height}; the dashboard needs at least {MIN_SIZE[0]}×{MIN_SIZE[1]}.")

    @work(thread=True, exclusive=True, exit_on_error=False, name="training")
    def train(self) -> Any:
        # The whole run happens here; it reports only through the session's sink.
        return self.session.run()

    def on_tick(self) -> None:
        """The timer's turn: while a run trains fast, only every other one draws."""
        self._timer_ticks += 1
        snapshot = self.last_snapshot
        fast = snapshot.state == TrainerState.TRAINING and snapshot.progress is not None \
            and snapshot.progress.steps_per_second >= FAST_STEPS_PER_SECOND
        if fast and self._timer_ticks % 2:
            return
        self.refresh_from_session()

    def refresh_from_session(self) -> None:
        if self.session.version == self.last_snapshot.version and self._ticks \
                and self._plotted_version == self.last_snapshot.version:
            return
        snapshot = self.session.snapshot()
        self._ticks += 1
        self.last_snapshot = snapshot
        self.query_one(StatusPanel).show(snapshot)
        self.query_one(EventLog).show(snapshot)
        self.query_one(AgentPanel).show(snapshot.recording, evaluations=len(snapshot.evals), active=snapshot.active,
                                        run_dir=snapshot.run_dir)
        starting = time.monotonic() - self._opened < STARTING_SECONDS
        if self._ticks % PLOT_EVERY == 1 or not snapshot.active or starting:
            # Also when no event comes after (a paused run, a history loaded after the first tick): the
            # plots catch up at their next turn instead of waiting for the next event.
            self._plotted_version = snapshot.version
            self.query_one(RewardPlot).show(snapshot)
            for plot in self.query(LossPlot):
                plot.show(snapshot)
        self.sub_title = f"{snapshot.env_id}  {snapshot.state.value}"
        if snapshot.state != TrainerState.EVALUATING and self._paused != (snapshot.state == TrainerState.PAUSED):
            self._paused = snapshot.state == TrainerState.PAUSED
            self.refresh_bindings()  # the footer's p says Resume, or Pause again
        if snapshot.toasted_saves != self._toasted_saves:  # the same latest.pt is saved again and again
            self._toasted_saves = snapshot.toasted_saves
            self.notify(f"saved {snapshot.last_saved}", title="Checkpoint")
        if snapshot.state == TrainerState.ERROR and snapshot.message and not self._error_shown:
            self._error_shown = True
            self.notify(snapshot.message, title="Training stopped", severity="error", timeout=10)

    # Actions: each only asks; the next snapshot shows what the trainer did --------------
    # The controls refuse (return False) once training has ended; the user hears so.

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "pause":
            return not self._paused
        if action == "resume":
            return self._paused
        return True

    def action_pause(self) -> None:
        # Still a toggle: p pressed twice before the trainer answers pauses and resumes, as it always did.
        self.action_toggle_pause()

    def action_resume(self) -> None:
        self.action_toggle_pause()

    def action_toggle_pause(self) -> None:
        if not self.session.controls.toggle_pause():
            self.notify_ended()
        self.show_answer()

    def action_evaluate(self) -> None:
        if self.session.controls.evaluate():
            self.notify("evaluating (noise off)…", timeout=2)
        else:
            self.notify_ended()
        self.show_answer()

    def action_save(self) -> None:
        if not self.session.controls.save():
            self.notify_ended()
        self.show_answer()

    def show_answer(self) -> None:
        """Draw the trainer's confirmation of a key soon, instead of at the next tick up to half a second later."""
        self.set_timer(ANSWER_SECONDS, self.refresh_from_session)

    def action_edit_live(self) -> None:
        if self.config is None:
            self.config = getattr(self.session, "config", None)
        if self.session.controls.closed:
            self.notify_ended()
            return
        if self.config is None:
            self.notify("nothing is training yet", severity="warning")
            return

        def apply(changes: dict[str, Any] | None) -> None:
            if not changes:
                return
            try:
                self.session.controls.set(**changes)
            except ConfigError as error:  # a bad value, or training ended while the dialog was open
                self.notify(str(error), severity="error")
                return
            assert self.config is not None
            self.config = self.config.replace(**changes)
            self.show_answer()

        self.app.push_screen(LiveEditScreen(self.config), apply)

    def action_toggle_log(self) -> None:
        """The event log on the whole screen, and back (esc also brings it back): at 80x24 it has a few lines."""
        if self.maximized is not None:
            self.minimize()
        else:
            self.maximize(self.query_one(EventLog), container=False)

    def action_toggle_agent(self) -> None:
        """The agent in place of the curves, and back. Evaluations are recorded only while it shows."""
        panel = self.query_one(AgentPanel)
        panel.display = not panel.display
        self.query_one("#reward-plot").display = self.query_one("#loss-plots").display = not panel.display
        if panel.display:
            self.session.record_evaluations.set()
        else:
            self.session.record_evaluations.clear()

    def notify_ended(self) -> None:
        self.notify("training has ended", severity="warning", timeout=3)

    # Quitting: q, Ctrl+C, Ctrl+Q, the palette and SIGTERM/SIGHUP all end up here ---------

    def action_quit_session(self) -> None:
        """Ask first while training runs; asked again while the question is open, save and quit."""
        if self._quitting:
            self.notify("stopping…", timeout=2)
        elif self._confirm is not None:
            self._close_confirm()
            if self.attached:
                self.detach_and_exit()
            else:
                self.stop_and_exit(save=True)
        elif not self.last_snapshot.active:
            self.stop_and_exit(save=False)  # nothing to save, but the worker may still be closing its files
        elif self.attached:
            self._confirm = DetachOrStopScreen()
            self.app.push_screen(self._confirm, self._quit_chosen)
        else:
            self._confirm = ConfirmQuitScreen()
            self.app.push_screen(self._confirm, self._quit_chosen)

    @property
    def attached(self) -> bool:
        """The run is another process's (ddpg-tui attach): quitting may leave it going."""
        return getattr(self.session, "detachable", False)

    def _quit_chosen(self, choice: str | None) -> None:
        self._confirm = None
        if choice == "detach":
            self.detach_and_exit()
        elif choice == "background":
            self.hand_over_and_exit()
        elif choice in ("save", "discard"):
            self.stop_and_exit(save=choice == "save")

    def detach_and_exit(self, return_code: int = EXIT_OK) -> None:
        if self._quitting:
            return
        self._quitting = True
        self.session.detach()  # type: ignore[attr-defined]
        self._wait_then_exit(return_code)

    def _close_confirm(self) -> None:
        confirm, self._confirm = self._confirm, None
        if confirm is not None and self.app.screen is confirm:
            confirm.dismiss(None)  # its callback then does nothing

    def quit_now(self, return_code: int) -> None:
        """Save and quit without asking (on a signal); an open question is closed unanswered."""
        self._close_confirm()
        if self.attached:  # a closed terminal or Ctrl+C twice ends the client, never the run it watches
            self.detach_and_exit(return_code)
        else:
            self.stop_and_exit(save=True, return_code=return_code)

    def stop_and_exit(self, save: bool, return_code: int = EXIT_OK) -> None:
        if self._quitting:
            return
        self._quitting = True
        if self.session.controls.stop(save=save) and self.last_snapshot.active:
            self.notify("stopping…" + (" saving a checkpoint" if save else ""), timeout=5)
        self._wait_then_exit(return_code)

    def hand_over_and_exit(self) -> None:
        """Keep training in the background: stop at the next episode end with a save (bit-exact to resume from),
        then a detached process resumes the run there; `ddpg-tui attach` shows it again."""
        if self._quitting:
            return
        self._quitting = True
        if not self.session.controls.stop_at_episode_end():
            self.notify_ended()
            self._wait_then_exit(EXIT_OK)
            return
        self.notify("handing the run over to a background process at the next episode end…", timeout=10)
        self._hand_over_then_exit()

    @work(exclusive=True, group="quit")
    async def _hand_over_then_exit(self) -> None:
        if self.worker is not None:
            with contextlib.suppress(WorkerError):
                await self.worker.wait()  # the trainer has saved and let go of the run's lock
        self.refresh_from_session()
        run_dir = self.last_snapshot.run_dir
        if self.last_snapshot.state == TrainerState.STOPPED and run_dir:
            self.session.handover = await asyncio.to_thread(resume_in_background, run_dir)  # type: ignore[attr-defined]
        self.app.exit(return_code=EXIT_OK)

    @work(exclusive=True, group="quit")
    async def _wait_then_exit(self, return_code: int) -> None:
        # The trainer stops within one step (or one evaluation episode), saves if asked,
        # and ends its thread; only then may the app exit, or that thread would keep the
        # process alive after the screen is gone.
        if self.worker is not None:
            with contextlib.suppress(WorkerError):
                await self.worker.wait()
        self.refresh_from_session()
        if self.attached and len(self.app.screen_stack) > 2:  # opened from the runs screen: back to it
            self.app.pop_screen()
        else:
            self.app.exit(return_code=return_code)

    def on_unmount(self) -> None:
        # However the screen goes (a crash, a test ending), training must not run on unseen; an attached
        # run is seen by its own process, and goes on.
        if self.attached:
            self.session.detach()  # type: ignore[attr-defined]
        else:
            self.session.controls.stop(save=True)
