"""The app driven as a user would, with Textual's Pilot: pick, edit, train, pause, evaluate, save, quit."""

from __future__ import annotations

import json
import shutil
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from textual.pilot import Pilot
from textual.widgets import Button, DataTable, Input, Label

from agents.checkpoint import load_checkpoint
from agents.config import DDPGConfig
from agents.events import TrainerState
from ddpg_tui.request import EXIT_FAILED, TrainingRequest
from ddpg_tui.ui.app import DDPGApp
from ddpg_tui.ui.screens.dashboard import DashboardScreen
from ddpg_tui.ui.screens.hyperparameters import HyperparametersScreen
from ddpg_tui.ui.screens.modals import ConfirmQuitScreen
from ddpg_tui.ui.screens.picker import PickerScreen

TINY = DDPGConfig(env_id="Pendulum-v1", total_steps=1_000_000, learning_starts=100, batch_size=32,
                  hidden_sizes=(16, 16), eval_every=0, eval_episodes=2, buffer_size=10_000, threads=1)


async def wait_until(pilot: Pilot, condition: Callable[[], bool], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting"
        await pilot.pause(0.05)


def dashboard(app: DDPGApp) -> DashboardScreen:
    screen = app.screen
    assert isinstance(screen, DashboardScreen)
    return screen


async def test_pick_preset_then_invalid_value_disables_start(tmp_path: Path) -> None:
    app = DDPGApp(runs_root=tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("enter")  # the cursor starts on the pendulum preset
        await wait_until(pilot, lambda: isinstance(app.screen, HyperparametersScreen))
        gamma = app.screen.query_one("#field-gamma", Input)
        start = app.screen.query_one("#start", Button)
        assert gamma.value == "0.98" and not start.disabled

        gamma.focus()
        gamma.value = ""
        await pilot.press(*"1.5")
        await pilot.pause()
        assert not gamma.is_valid
        assert start.disabled
        assert "gamma: 1.5 is not allowed" in str(app.screen.query_one("#hint-gamma").render())

        gamma.value = ""
        await pilot.press(*"0.9")
        await pilot.pause()
        assert gamma.is_valid and not start.disabled


async def test_form_values_start_the_run(tmp_path: Path) -> None:
    app = DDPGApp(runs_root=tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("enter")
        await wait_until(pilot, lambda: isinstance(app.screen, HyperparametersScreen))
        for name, value in (("total_steps", "300"), ("learning_starts", "100"), ("batch_size", "16"),
                            ("hidden_sizes", "[8]"), ("eval_every", "0"), ("eval_episodes", "1"), ("threads", "1")):
            app.screen.query_one(f"#field-{name}", Input).value = value
        await pilot.pause()
        await pilot.click("#start")
        await wait_until(pilot, lambda: isinstance(app.screen, DashboardScreen))
        screen = dashboard(app)
        await wait_until(pilot, lambda: screen.last_snapshot.state == TrainerState.FINISHED)
        assert screen.last_snapshot.progress is not None and screen.last_snapshot.progress.step == 300
        (run_dir,) = tmp_path.iterdir()
        assert load_checkpoint(run_dir / "checkpoints" / "latest.pt")["config"]["hidden_sizes"] == [8]


async def test_pause_evaluate_save_and_quit_from_the_dashboard(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    app = DDPGApp(TrainingRequest(TINY, run_dir))
    async with app.run_test(size=(120, 40)) as pilot:
        screen = dashboard(app)
        await wait_until(pilot, lambda: screen.last_snapshot.state == TrainerState.TRAINING)

        await pilot.press("p")
        await wait_until(pilot, lambda: screen.last_snapshot.state == TrainerState.PAUSED)
        paused_at = screen.last_snapshot.progress.step
        await pilot.pause(0.5)
        assert screen.last_snapshot.progress.step == paused_at

        await pilot.press("p")
        await wait_until(pilot, lambda: screen.last_snapshot.progress.step > paused_at)

        await pilot.press("e")
        await wait_until(pilot, lambda: len(screen.last_snapshot.evals) == 1)
        assert len(screen.last_snapshot.evals[0].returns) == 2

        await pilot.press("s")
        await wait_until(pilot, lambda: screen.last_snapshot.last_saved.endswith("latest.pt"))
        saved = load_checkpoint(run_dir / "checkpoints" / "latest.pt")
        assert saved["counters"]["step"] > paused_at

        await pilot.press("q")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmQuitScreen))
        await pilot.press("y")
        await wait_until(pilot, lambda: not app.is_running, timeout=30)
    final = load_checkpoint(run_dir / "checkpoints" / "latest.pt")
    assert final["counters"]["step"] >= saved["counters"]["step"]


async def test_live_change_is_applied_and_logged(tmp_path: Path) -> None:
    app = DDPGApp(TrainingRequest(TINY, tmp_path / "run"))
    async with app.run_test(size=(120, 40)) as pilot:
        screen = dashboard(app)
        await wait_until(pilot, lambda: screen.last_snapshot.state == TrainerState.TRAINING)
        await pilot.press("h")
        await pilot.pause()
        sigma = app.screen.query_one("#field-noise_sigma", Input)
        sigma.value = "0.3"
        await pilot.pause()
        await pilot.press("ctrl+s")
        await wait_until(pilot, lambda: any("set noise_sigma=0.3" in line for *_, line in screen.last_snapshot.log))
        await wait_until(pilot, lambda: screen.last_snapshot.progress.noise_sigma == pytest.approx(0.3))
        screen.session.controls.stop(save=False)
    # The run folder keeps it: a row of metrics.jsonl saying what changed, from what, and that the key asked.
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    [change] = [row for row in rows if row["kind"] == "change"]
    assert (change["field"], change["old"], change["new"], change["source"]) == ("noise_sigma", TINY.noise_sigma,
                                                                                  0.3, "key")


async def test_an_error_in_training_shows_instead_of_crashing(tmp_path: Path) -> None:
    app = DDPGApp(TrainingRequest(TINY.replace(env_id="CartPole-v1"), tmp_path / "run"))
    async with app.run_test(size=(120, 40)) as pilot:
        screen = dashboard(app)
        await wait_until(pilot, lambda: screen.last_snapshot.state == TrainerState.ERROR)
        assert "Discrete action space" in screen.last_snapshot.message
        assert app.is_running
        await pilot.press("q")  # nothing is training: quits without asking
        await wait_until(pilot, lambda: not app.is_running)
    assert app.exit_code == EXIT_FAILED


async def test_dashboard_actions_and_one_quit_are_in_the_command_palette(tmp_path: Path) -> None:
    app = DDPGApp(TrainingRequest(TINY, tmp_path / "run"))
    async with app.run_test(size=(120, 40)):
        screen = dashboard(app)
        try:
            commands = list(app.get_system_commands(screen))
            titles = [command.title for command in commands]
            for title in ("Pause / resume training", "Evaluate now", "Save a checkpoint"):
                assert title in titles
            # Exactly one Quit, ours: Textual's own would exit and leave the trainer running.
            assert titles.count("Quit") == 1
            (quit_command,) = (c for c in commands if c.title == "Quit")
            assert "asks first" in quit_command.help
        finally:
            screen.session.controls.stop(save=False)

    picker_app = DDPGApp(runs_root=tmp_path)
    async with picker_app.run_test(size=(120, 40)):
        commands = [c for c in picker_app.get_system_commands(picker_app.screen) if c.title == "Quit"]
        assert len(commands) == 1 and "asks first" in commands[0].help


async def test_a_slow_env_check_does_not_freeze_the_picker(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import agents.envs

    entered, release = threading.Event(), threading.Event()
    real_make_env = agents.envs.make_env

    def slow_make_env(env_id: str, seed: int | None = None):
        entered.set()
        release.wait(10)  # on the UI thread this would freeze the screen until the timeout
        return real_make_env(env_id, seed)

    monkeypatch.setattr(agents.envs, "make_env", slow_make_env)
    app = DDPGApp(runs_root=tmp_path)
    try:
        async with app.run_test(size=(120, 40)) as pilot:
            await pilot.press("enter")  # the cursor starts on the pendulum preset
            await wait_until(pilot, entered.is_set, timeout=5)
            status = app.screen.query_one("#env-error", Label)
            await wait_until(pilot, lambda: "checking Pendulum-v1" in str(status.render()), timeout=5)
            assert isinstance(app.screen, PickerScreen) and not release.is_set()
            table = app.screen.query_one("#presets", DataTable)
            row = table.cursor_row
            await pilot.press("up" if row else "down")  # the screen still answers while the env is being made
            assert table.cursor_row != row
            release.set()
            await wait_until(pilot, lambda: isinstance(app.screen, HyperparametersScreen), timeout=10)
            await pilot.pause()  # let the new screen finish mounting before the app closes
    finally:
        release.set()


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run of 400 steps: two episodes, evaluations at 200 and 400, and losses, all in its metrics.jsonl."""
    from agents.trainer import Trainer

    run_dir = tmp_path_factory.mktemp("finished") / "run"
    config = TINY.replace(total_steps=400, learning_starts=100, batch_size=8, eval_every=200, eval_episodes=1)
    Trainer(config, run_dir=run_dir).run()
    return run_dir


async def resume_in_picker(pilot: Pilot, run_dir: Path) -> str:
    """Type `run_dir` into the resume box; returns the line shown under it once it is refused."""
    app = pilot.app
    box = app.screen.query_one("#resume-run", Input)
    box.focus()
    box.value = str(run_dir)
    await pilot.press("enter")
    status = app.screen.query_one("#env-error", Label)
    await wait_until(pilot, lambda: status.has_class("invalid") or not isinstance(app.screen, PickerScreen),
                     timeout=10)
    assert isinstance(app.screen, PickerScreen), "the resume was not refused"
    assert box.has_class("-refused")
    return str(status.render())


async def test_a_finished_run_in_the_resume_box_is_offered_more_steps_and_trains_on_with_its_history(
        tmp_path: Path, finished_run: Path) -> None:
    run_dir = tmp_path / "run"
    shutil.copytree(finished_run, run_dir)
    app = DDPGApp(runs_root=tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        shown = await resume_in_picker(pilot, run_dir)
        assert shown.startswith(f"{run_dir} already finished 400 of 400 steps.")
        assert "above 400" in shown
        extend = app.screen.query_one("#extend-steps", Input)
        assert extend.display and app.focused is extend and extend.value == "800"

        extend.value = "300"  # not more than what is done: refused, says why
        await pilot.press("enter")
        await pilot.pause()
        assert "not more than the 400 steps already done" in str(app.screen.query_one("#env-error").render())
        assert isinstance(app.screen, PickerScreen)

        extend.value = ""  # typed as RL users write step counts: 6e2
        await pilot.press("6", "e", "2", "enter")
        await wait_until(pilot, lambda: isinstance(app.screen, DashboardScreen), timeout=20)
        screen = dashboard(app)
        # The history comes first: the episodes and evaluations of the first 400 steps are drawn
        # although this session's trainer has not reported them.
        await wait_until(pilot, lambda: screen.last_snapshot.progress is not None)
        first = screen.last_snapshot
        assert first.episode_steps[:2] == (200, 400)
        assert [e.step for e in first.evals][:2] == [200, 400] and first.best_eval is not None
        assert first.loss_updates and first.loss_updates[0] <= 400
        assert first.progress.total_steps == 600
        await wait_until(pilot, lambda: screen.last_snapshot.state == TrainerState.FINISHED)
        assert screen.last_snapshot.episode_steps == (200, 400, 600)
    assert load_checkpoint(run_dir / "checkpoints" / "latest.pt")["counters"]["step"] == 600


async def test_resume_box_refuses_a_checkpoint_whose_env_id_would_import_a_module(
        tmp_path: Path, finished_run: Path) -> None:
    from agents.checkpoint import save_checkpoint

    payload = load_checkpoint(finished_run / "checkpoints" / "latest.pt")
    payload["env_id"] = "planted_module:Pendulum-v1"
    run_dir = tmp_path / "planted"
    save_checkpoint(run_dir / "checkpoints" / "latest.pt", payload)
    app = DDPGApp(runs_root=tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        shown = await resume_in_picker(pilot, run_dir)
    assert "would import module 'planted_module'" in shown
    assert "planted_module" not in sys.modules


async def test_c_on_the_picker_opens_the_runs_screen_and_q_comes_back(tmp_path: Path) -> None:
    from ddpg_tui.ui.screens.picker import PickerScreen
    from ddpg_tui.ui.screens.runs import RunsScreen

    app = DDPGApp(runs_root=tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_until(pilot, lambda: isinstance(app.screen, PickerScreen))
        await pilot.press("c")
        await wait_until(pilot, lambda: isinstance(app.screen, RunsScreen))
        await pilot.press("q")
        await wait_until(pilot, lambda: isinstance(app.screen, PickerScreen))
        assert app.is_running
