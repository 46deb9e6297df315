"""Every way out of the app stops the trainer first: Ctrl+C, Ctrl+Q, the palette's Quit, SIGTERM, SIGHUP.

Each test trains a tiny run with a million steps, so that only the quit can end it, and
checks that the training thread has ended (the process would otherwise live on
invisibly) and, when the route saves, that the checkpoint loads. The signal tests call
the handler that `run_app` installs; tests/test_app_pty.py sends the real signals.
"""

from __future__ import annotations

import signal
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from test_app import TINY, wait_until
from textual import events
from textual.command import CommandList, CommandPalette
from textual.pilot import Pilot

from agents.checkpoint import load_checkpoint
from agents.events import TrainerState
from ddpg_tui.request import EXIT_OK, TrainingRequest
from ddpg_tui.ui.app import DDPGApp
from ddpg_tui.ui.screens.dashboard import DashboardScreen
from ddpg_tui.ui.screens.modals import ConfirmQuitScreen
from ddpg_tui.ui.screens.picker import PickerScreen

QUIT_WITHIN = 10.0  # seconds from the decision to the app's exit: a stop, a save, a thread join (generous for CI)


@asynccontextmanager
async def training(run_dir: Path) -> AsyncIterator[tuple[DDPGApp, Pilot, DashboardScreen]]:
    """The app training TINY for a million steps; whatever the test does, training is stopped at the end."""
    app = DDPGApp(TrainingRequest(TINY, run_dir))
    screen: DashboardScreen | None = None
    try:
        async with app.run_test(size=(120, 40)) as pilot:
            screen = app.screen
            assert isinstance(screen, DashboardScreen)
            await wait_until(pilot, lambda: screen.last_snapshot.state == TrainerState.TRAINING)
            yield app, pilot, screen
    finally:
        if screen is not None:  # a failing test must not leave a million steps running
            screen.session.controls.stop(save=False)


def press(app: DDPGApp, *keys: str) -> None:
    """Keys as the terminal driver sends them. (Pilot.press waits up to a second per key for the
    process to go idle, which a training process never does.)"""
    for key in keys:
        app.post_message(events.Key(key, key if len(key) == 1 else None))


async def wait_for_exit(app: DDPGApp, pilot: Pilot) -> None:
    start = time.monotonic()
    await wait_until(pilot, lambda: not app.is_running, timeout=QUIT_WITHIN)
    assert time.monotonic() - start < QUIT_WITHIN


def assert_stopped(screen: DashboardScreen, run_dir: Path, saved: bool) -> None:
    session = screen.session
    assert session.finished.is_set(), "the training thread is still running"
    outcome = session.outcome
    assert outcome is not None and outcome.state == TrainerState.STOPPED
    assert 0 < outcome.step < outcome.total_steps
    latest = run_dir / "checkpoints" / "latest.pt"
    if saved:
        assert outcome.checkpoint == latest
        assert load_checkpoint(latest)["counters"]["step"] == outcome.step
    else:
        assert outcome.checkpoint is None and not latest.exists()


async def test_ctrl_c_asks_then_y_saves_and_quits(tmp_path: Path) -> None:
    async with training(tmp_path / "run") as (app, pilot, screen):
        press(app, "ctrl+c")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmQuitScreen), timeout=5)
        assert app.is_running and not screen.session.controls.stop_requested  # asking stops nothing
        press(app, "y")
        await wait_for_exit(app, pilot)
    assert_stopped(screen, tmp_path / "run", saved=True)
    assert app.exit_code == EXIT_OK


async def test_ctrl_c_twice_saves_and_quits_at_once(tmp_path: Path) -> None:
    async with training(tmp_path / "run") as (app, pilot, screen):
        press(app, "ctrl+c")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmQuitScreen), timeout=5)
        press(app, "ctrl+c")
        await wait_for_exit(app, pilot)
    assert_stopped(screen, tmp_path / "run", saved=True)
    assert app.exit_code == EXIT_OK


async def test_ctrl_q_asks_then_n_quits_without_saving(tmp_path: Path) -> None:
    async with training(tmp_path / "run") as (app, pilot, screen):
        press(app, "ctrl+q")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmQuitScreen), timeout=5)
        press(app, "n")
        await wait_for_exit(app, pilot)
    assert_stopped(screen, tmp_path / "run", saved=False)


async def test_escape_in_the_quit_dialog_keeps_training(tmp_path: Path) -> None:
    async with training(tmp_path / "run") as (app, pilot, screen):
        press(app, "ctrl+c")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmQuitScreen), timeout=5)
        press(app, "escape")
        await wait_until(pilot, lambda: app.screen is screen, timeout=5)
        assert screen.last_snapshot.state == TrainerState.TRAINING
        press(app, "ctrl+c")  # cancelled means the next Ctrl+C asks again, not saves
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmQuitScreen), timeout=5)
        assert not screen.session.controls.stop_requested


async def test_the_palettes_one_quit_asks_then_saves_a_paused_run(tmp_path: Path) -> None:
    async with training(tmp_path / "run") as (app, pilot, screen):
        # A paused trainer waits for commands in its own loop; the stop must reach it there too.
        press(app, "p")
        await wait_until(pilot, lambda: screen.last_snapshot.state == TrainerState.PAUSED, timeout=5)
        press(app, "ctrl+p")
        await wait_until(pilot, lambda: isinstance(app.screen, CommandPalette), timeout=5)
        press(app, *"quit")
        commands = app.screen.query_one(CommandList)
        await wait_until(pilot, lambda: commands.option_count == 1, timeout=5)  # the one Quit: ours
        press(app, "enter")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmQuitScreen), timeout=5)
        press(app, "y")
        await wait_for_exit(app, pilot)
    assert_stopped(screen, tmp_path / "run", saved=True)


async def test_sigterm_saves_and_exits_143_without_asking(tmp_path: Path) -> None:
    async with training(tmp_path / "run") as (app, pilot, screen):
        app.handle_signal(signal.SIGTERM)
        await wait_for_exit(app, pilot)
    assert_stopped(screen, tmp_path / "run", saved=True)
    assert app.exit_code == 143 and app.return_code == 143


async def test_sighup_with_the_quit_dialog_open_saves_and_exits_129(tmp_path: Path) -> None:
    async with training(tmp_path / "run") as (app, pilot, screen):
        press(app, "ctrl+c")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmQuitScreen), timeout=5)
        app.handle_signal(signal.SIGHUP)  # the terminal was closed while the question was open
        await wait_for_exit(app, pilot)
    assert_stopped(screen, tmp_path / "run", saved=True)
    assert app.exit_code == 129


async def test_ctrl_c_on_the_picker_just_exits(tmp_path: Path) -> None:
    app = DDPGApp(runs_root=tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_until(pilot, lambda: isinstance(app.screen, PickerScreen))
        press(app, "ctrl+c")
        await wait_until(pilot, lambda: not app.is_running, timeout=5)
    assert app.exit_code == EXIT_OK and app.training_session is None


async def test_refused_commands_after_training_ended_are_reported(tmp_path: Path) -> None:
    async with training(tmp_path / "run") as (app, pilot, screen):
        screen.session.controls.stop(save=False)
        await wait_until(pilot, lambda: screen.last_snapshot.state == TrainerState.STOPPED)
        await wait_until(pilot, lambda: screen.session.controls.closed)
        said: list[str] = []
        app.notify = lambda message, **kwargs: said.append(str(message))  # type: ignore[method-assign]
        for key in ("p", "e", "s", "h"):
            await pilot.press(key)
        await pilot.pause()
        assert said == ["training has ended"] * 4
