"""Screenshots of every screen at 120x40 and 80x24, fed fixed data so that the pictures are stable.

The picker reads recent runs from ./runs and whether extras are installed from this
machine: both are fixed here (a made-up runs folder, box2d installed, mujoco missing).
Input cursors blink, so every input is made steady before a picture is taken.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import pytest
from textual.pilot import Pilot
from textual.widgets import Input

import presets
from agents.events import EvalResult, StepStats, TrainerState
from ddpg_tui.ui.app import DDPGApp
from ddpg_tui.ui.screens.hyperparameters import HyperparametersScreen
from ddpg_tui.ui.screens.modals import ConfirmQuitScreen, LiveEditScreen
from ddpg_tui.ui.session import FixedSession, Snapshot

SIZES = [pytest.param((120, 40), id="120x40"), pytest.param((80, 24), id="80x24")]


def fixed_snapshot() -> Snapshot:
    episodes = 60
    steps = tuple(200 * (i + 1) for i in range(episodes))
    returns = tuple(-1400 + 1250 * (1 - math.exp(-i / 12)) + 60 * math.sin(i) for i in range(episodes))
    evals = tuple(EvalResult(s, -1300 + 1150 * (1 - math.exp(-s / 2500)), 40.0, (), best=True)
                  for s in range(2000, 12001, 2000))
    updates = tuple(range(200, 11001, 200))
    return Snapshot(
        version=1, env_id="Pendulum-v1", run_dir="runs/pendulum-demo", state=TrainerState.TRAINING,
        progress=StepStats(step=12000, total_steps=20000, episode=60, steps_per_second=161.0, buffer_size=12000,
                           buffer_capacity=200000, noise_sigma=0.1, elapsed=74.0, updates=11000),
        episode_steps=steps, episode_returns=returns, evals=evals, best_eval=evals[-1],
        loss_updates=updates, critic_losses=tuple(5 * math.exp(-u / 3000) + 0.3 for u in updates),
        actor_losses=tuple(20 + 60 * (1 - math.exp(-u / 4000)) for u in updates),
        sigma_history=tuple(0.3 - 0.2 * min(i / 40, 1) for i in range(60)),
        log=((1, "config", 9_400, "set noise_sigma=0.3, noise=ou, actor_lr=0.0005"),
             (2, "save", 10_000, "saved latest.pt (requested)"),
             (3, "info", 11_800, "ep 59 R -151.3"), (4, "eval", 12_000, "eval -154.2 ± 40 best"),
             (5, "info", 12_000, "ep 60 R -148.0")),
    )


def fixed_app() -> DDPGApp:
    return DDPGApp(session=FixedSession(fixed_snapshot(), presets.load_preset("pendulum").config))


def steady_cursors(pilot: Pilot) -> None:
    for box in pilot.app.screen.query(Input):
        box.cursor_blink = False


@pytest.fixture
def machine_independent_picker(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two made-up runs in ./runs, box2d installed and mujoco missing, whatever this machine has."""
    for age, name in enumerate(("pendulum-20261120-101500", "lunar-lander-continuous-20261121-090000")):
        checkpoint = tmp_path / "runs" / name / "checkpoints" / "latest.pt"
        checkpoint.parent.mkdir(parents=True)
        checkpoint.write_bytes(b"")
        os.utime(checkpoint.parent.parent, (1_800_000_000 + age, 1_800_000_000 + age))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setitem(presets.EXTRA_MODULES, "box2d", "json")  # always importable
    monkeypatch.setitem(presets.EXTRA_MODULES, "mujoco", "no_module_of_this_name")


@pytest.mark.parametrize("size", SIZES)
def test_picker(snap_compare, machine_independent_picker: None, size: tuple[int, int]) -> None:
    assert snap_compare(DDPGApp(runs_root=Path("runs")), terminal_size=size)


@pytest.mark.parametrize("size", SIZES)
def test_form_with_an_invalid_field_and_focus_on_the_next(snap_compare, size: tuple[int, int]) -> None:
    async def edit(pilot: Pilot) -> None:
        app = pilot.app
        app.push_screen(HyperparametersScreen(presets.load_preset("pendulum").config, "pendulum"))
        await pilot.pause()
        steady_cursors(pilot)
        app.screen.query_one("#field-gamma", Input).focus()
        app.screen.query_one("#field-gamma", Input).value = "1.5"
        await pilot.press("tab")  # on to tau: the focused row, under a refused one

    assert snap_compare(DDPGApp(runs_root=Path("no-runs-here")), terminal_size=size, run_before=edit)


@pytest.mark.parametrize("size", SIZES)
def test_dashboard(snap_compare, size: tuple[int, int]) -> None:
    assert snap_compare(fixed_app(), terminal_size=size)


@pytest.mark.parametrize("size", SIZES)
def test_live_hyperparameters_dialog(snap_compare, size: tuple[int, int]) -> None:
    async def open_dialog(pilot: Pilot) -> None:
        await pilot.press("h")
        assert isinstance(pilot.app.screen, LiveEditScreen)
        steady_cursors(pilot)

    assert snap_compare(fixed_app(), terminal_size=size, run_before=open_dialog)


@pytest.mark.parametrize("size", SIZES)
def test_quit_dialog(snap_compare, size: tuple[int, int]) -> None:
    async def ask_to_quit(pilot: Pilot) -> None:
        await pilot.press("q")
        assert isinstance(pilot.app.screen, ConfirmQuitScreen)

    assert snap_compare(fixed_app(), terminal_size=size, run_before=ask_to_quit)
