"""The population's dashboard (`train --seeds` without --headless): what it draws, and its keys and exits.

The plots are checked on the data they drew (PopulationPlot.data), not on pixels. The keys
are checked end to end: a key asks the PopulationTrainer's controls, and the snapshot shows
the events with which the trainer confirmed it. A population that only a quit can end
trains a million steps, as in tests/test_app_exits.py.
"""

from __future__ import annotations

import signal
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import numpy as np
import pytest
from test_app import wait_until
from test_app_exits import press, wait_for_exit
from test_app_screens import visible_text
from textual.pilot import Pilot

from agents.checkpoint import load_checkpoint
from agents.config import DDPGConfig
from agents.events import TrainerState
from ddpg_tui.population import PopulationRequest
from ddpg_tui.ui.app import DDPGApp
from ddpg_tui.ui.screens.modals import screen_keys
from ddpg_tui.ui.screens.population import PopulationDashboardScreen, PopulationQuitScreen
from ddpg_tui.ui.widgets.plots import moving_average
from ddpg_tui.ui.widgets.population_panels import MemberTable, PopulationStatus
from ddpg_tui.ui.widgets.population_plot import SMOOTHING, band_over_members

SEEDS = (0, 1, 2)
TINY = DDPGConfig(env_id="Pendulum-v1", total_steps=1_000_000, learning_starts=100, batch_size=32,
                  hidden_sizes=(16, 16), eval_every=0, eval_episodes=1, buffer_size=10_000, threads=1)


def population_screen(app: DDPGApp) -> PopulationDashboardScreen:
    screen = app.screen
    assert isinstance(screen, PopulationDashboardScreen)
    return screen


@asynccontextmanager
async def training(run_dir: Path, config: DDPGConfig = TINY
                   ) -> AsyncIterator[tuple[DDPGApp, Pilot, PopulationDashboardScreen]]:
    """The app on a population of SEEDS; whatever the test does, training is stopped at the end."""
    app = DDPGApp(PopulationRequest(config, SEEDS, run_dir))
    screen: PopulationDashboardScreen | None = None
    try:
        async with app.run_test(size=(120, 40)) as pilot:
            screen = population_screen(app)
            yield app, pilot, screen
    finally:
        if screen is not None:  # a failing test must not leave a million steps running
            screen.session.controls.stop(save=False)


def member_steps(run_dir: Path) -> list[int]:
    return [load_checkpoint(run_dir / f"seed-{seed}" / "checkpoints" / "latest.pt")["counters"]["step"]
            for seed in SEEDS]


# The band ---------------------------------------------------------------------------------


def test_the_band_starts_where_every_member_has_a_value_and_counts_each_at_its_latest() -> None:
    curves = [([10, 20, 30], [1.0, 2.0, 3.0]), ([15, 30], [10.0, 20.0]), ([20], [-5.0])]
    band = band_over_members(curves)
    assert band.steps == (20, 30)
    # At 20 the members stand at 2, 10 and -5; at 30 at 3, 20 and -5.
    assert band.median == (2.0, 3.0)
    assert band.q1 == pytest.approx((np.percentile([2, 10, -5], 25), np.percentile([3, 20, -5], 25)))
    assert band.q3 == pytest.approx((np.percentile([2, 10, -5], 75), np.percentile([3, 20, -5], 75)))


def test_no_band_until_every_member_has_a_point_and_at_most_the_limit_of_steps() -> None:
    assert band_over_members([([10], [1.0]), ([], [])]).steps == ()
    long = [(list(range(1, 1001)), [float(i) for i in range(1000)])] * 2
    band = band_over_members(long, limit=100)
    assert len(band.steps) <= 101 and band.steps[-1] == 1000 and band.steps[0] == 1


# What the dashboard draws -------------------------------------------------------------------


async def test_every_member_is_drawn_with_the_median_band_and_a_row_of_its_own(tmp_path: Path) -> None:
    config = TINY.replace(total_steps=600, eval_every=200)  # three 200-step episodes and evaluations each
    async with training(tmp_path / "pop", config) as (_, pilot, screen):
        await wait_until(pilot, lambda: screen.last_snapshot.state == TrainerState.FINISHED)
        await pilot.pause()
        members = screen.last_snapshot.members
        assert [m.seed for m in members] == list(SEEDS)

        returns = screen.query_one("#population-returns").data
        assert len(returns.members) == len(SEEDS)
        assert [list(steps) for steps, _ in returns.members] == [[200, 400, 600]] * len(SEEDS)
        smoothed = np.array([moving_average(m.episode_returns, SMOOTHING) for m in members])
        assert returns.band.steps == (200, 400, 600)
        assert returns.band.median == pytest.approx(tuple(np.median(smoothed, axis=0)))
        assert returns.band.q1 == pytest.approx(tuple(np.percentile(smoothed, 25, axis=0)))
        assert returns.band.q3 == pytest.approx(tuple(np.percentile(smoothed, 75, axis=0)))

        evals = screen.query_one("#population-evals").data
        assert len(evals.members) == len(SEEDS)
        means = np.array([[e.mean for e in m.evals] for m in members])
        assert evals.band.steps == (200, 400, 600)
        assert evals.band.median == pytest.approx(tuple(np.median(means, axis=0)))
        assert len(set(means[:, -1])) == len(SEEDS)  # the seeds differ, so the band is a band

        table = screen.query_one(MemberTable)
        assert table.row_count == len(SEEDS)
        for row, member in enumerate(members):
            seed, episodes, last_return, last_eval = table.get_row_at(row)
            assert (seed, episodes) == (str(member.seed), "3")
            assert (str(last_return), str(last_eval)) == (f"{member.episode_returns[-1]:.1f}",
                                                          f"{member.evals[-1].mean:.1f}")
        assert table.border_title == "Members (eval @600)"
        expected = ("finished", "600 / 600", "3 seeds: 0, 1, 2", f"median {np.median(means[:, -1]):,.1f} @600")
        status = screen.query_one(PopulationStatus)
        await wait_until(pilot, lambda: all(text in visible_text(status) for text in expected), timeout=5)
    assert member_steps(tmp_path / "pop") == [600] * len(SEEDS)


# The keys --------------------------------------------------------------------------------------


async def test_the_keys_and_the_palette_offer_only_what_works_on_a_population(tmp_path: Path) -> None:
    async with training(tmp_path / "pop") as (app, _, screen):
        keys = dict(screen_keys(screen))
        assert keys["p"] == "Pause every member" and "e" in keys and "s" in keys and "q" in keys
        assert "h" in keys and "w" in keys
        titles = [command.title for command in app.get_system_commands(screen)]
        assert "Save a checkpoint" in titles and "Change live hyperparameters" in titles
        assert titles.count("Quit") == 1



async def test_p_e_and_s_reach_every_member_and_are_confirmed_by_the_trainer(tmp_path: Path) -> None:
    async with training(tmp_path / "pop") as (app, pilot, screen):
        await wait_until(pilot, lambda: screen.last_snapshot.state == TrainerState.TRAINING)
        press(app, "p")
        await wait_until(pilot, lambda: screen.last_snapshot.state == TrainerState.PAUSED)
        paused_at = screen.last_snapshot.progress.step
        await pilot.pause(0.5)
        assert screen.session.snapshot().progress.step == paused_at
        assert any(line[3] == "paused" for line in screen.last_snapshot.log)

        press(app, "e")  # while paused: every member evaluates, then the population is paused again
        await wait_until(pilot, lambda: all(len(m.evals) == 1 for m in screen.last_snapshot.members))
        assert {m.evals[0].step for m in screen.last_snapshot.members} == {paused_at}
        await wait_until(pilot, lambda: any(line[3].startswith("eval median") for line in screen.last_snapshot.log))
        await wait_until(pilot, lambda: screen.last_snapshot.state == TrainerState.PAUSED)
        # Straight back to the pause: one pause in the log and in every member's metrics.jsonl.
        assert [line[3] for line in screen.last_snapshot.log].count("paused") == 1
        for seed in SEEDS:
            rows = (tmp_path / "pop" / f"seed-{seed}" / "metrics.jsonl").read_text().splitlines()
            assert sum('"kind": "pause"' in row for row in rows) == 1

        press(app, "p")
        await wait_until(pilot, lambda: screen.last_snapshot.progress.step > paused_at)
        assert screen.last_snapshot.state == TrainerState.TRAINING

        press(app, "s")
        await wait_until(pilot, lambda: screen.last_snapshot.toasted_saves == 1)
        assert screen.last_snapshot.last_saved.endswith("latest.pt")
        saved = member_steps(tmp_path / "pop")
        assert len(set(saved)) == 1 and saved[0] > paused_at  # one save of every member, at one step


async def test_h_changes_every_member_live_and_each_folder_records_it(tmp_path: Path) -> None:
    import json

    from textual.widgets import Input

    async with training(tmp_path / "pop") as (app, pilot, screen):
        await wait_until(pilot, lambda: screen.last_snapshot.state == TrainerState.TRAINING)
        await pilot.press("h")
        await pilot.pause()
        app.screen.query_one("#field-noise_sigma", Input).value = "0.3"
        app.screen.query_one("#field-batch_size", Input).value = "16"
        await pilot.pause()
        await pilot.press("ctrl+s")
        # One line for the population (not one per member), confirmed by the trainer's own event.
        await wait_until(pilot, lambda: any("set" in line[3] and "noise_sigma=0.3" in line[3]
                                            for line in screen.last_snapshot.log))
        assert sum("noise_sigma=0.3" in line[3] for line in screen.last_snapshot.log) == 1
        await wait_until(pilot, lambda: screen.last_snapshot.progress.noise_sigma == pytest.approx(0.3))
        screen.session.controls.stop(save=True)
        await wait_until(pilot, lambda: not screen.last_snapshot.active)
    for seed in SEEDS:
        member = tmp_path / "pop" / f"seed-{seed}"
        rows = [json.loads(line) for line in (member / "metrics.jsonl").read_text().splitlines()]
        changes = {row["field"]: (row["old"], row["new"], row["source"]) for row in rows if row["kind"] == "change"}
        assert changes == {"noise_sigma": (TINY.noise_sigma, 0.3, "key"), "batch_size": (32, 16, "key")}
        saved = load_checkpoint(member / "checkpoints" / "latest.pt")["config"]
        assert (saved["noise_sigma"], saved["batch_size"], saved["seed"]) == (0.3, 16, seed)

    # A resume shows the changes in its events, and carries on with the changed config.
    app = DDPGApp(PopulationRequest(None, SEEDS, tmp_path / "pop",
                                    tuple(tmp_path / "pop" / f"seed-{seed}" for seed in SEEDS),
                                    total_steps=member_steps(tmp_path / "pop")[0] + 50))
    async with app.run_test(size=(120, 40)) as pilot:
        resumed = population_screen(app)
        await wait_until(pilot, lambda: resumed.last_snapshot.state == TrainerState.FINISHED)
        assert [line[3] for line in resumed.last_snapshot.log if "noise_sigma=0.3" in line[3]] == \
            ["set noise_sigma=0.3"]
        assert resumed.last_snapshot.progress.noise_sigma == pytest.approx(0.3)


async def test_q_then_y_saves_every_member_at_the_stop_step(tmp_path: Path) -> None:
    async with training(tmp_path / "pop") as (app, pilot, screen):
        await wait_until(pilot, lambda: screen.last_snapshot.state == TrainerState.TRAINING)
        press(app, "q")
        await wait_until(pilot, lambda: isinstance(app.screen, PopulationQuitScreen), timeout=5)
        assert not screen.session.controls.stop_requested  # asking stops nothing
        said = " ".join(str(label.render()) for label in app.screen.query("#quit-dialog Label, #quit-dialog Static"))
        assert "Save every member's checkpoint" in said and "b: keep training" not in said
        press(app, "b")  # the single run's "keep training in the background" is not offered
        await pilot.pause(0.3)
        assert isinstance(app.screen, PopulationQuitScreen) and not screen.session.controls.stop_requested
        press(app, "y")
        await wait_for_exit(app, pilot)
    outcome = screen.session.outcome
    assert screen.session.finished.is_set() and outcome is not None
    assert outcome.state == TrainerState.STOPPED and 0 < outcome.step < outcome.total_steps
    assert member_steps(tmp_path / "pop") == [outcome.step] * len(SEEDS)
    assert "resume:   ddpg-tui train --resume" in screen.session.closing_lines()[-1]


async def test_ctrl_c_asks_and_a_second_ctrl_c_saves_every_member_and_quits(tmp_path: Path) -> None:
    async with training(tmp_path / "pop") as (app, pilot, screen):
        await wait_until(pilot, lambda: screen.last_snapshot.state == TrainerState.TRAINING)
        press(app, "ctrl+c")
        await wait_until(pilot, lambda: isinstance(app.screen, PopulationQuitScreen), timeout=5)
        press(app, "ctrl+c")
        await wait_for_exit(app, pilot)
    outcome = screen.session.outcome
    assert outcome.state == TrainerState.STOPPED
    assert member_steps(tmp_path / "pop") == [outcome.step] * len(SEEDS)


async def test_q_then_n_quits_without_saving_any_member(tmp_path: Path) -> None:
    async with training(tmp_path / "pop") as (app, pilot, screen):
        await wait_until(pilot, lambda: screen.last_snapshot.state == TrainerState.TRAINING)
        press(app, "q")
        await wait_until(pilot, lambda: isinstance(app.screen, PopulationQuitScreen), timeout=5)
        press(app, "n")
        await wait_for_exit(app, pilot)
    assert screen.session.outcome.state == TrainerState.STOPPED
    assert not any((tmp_path / "pop" / f"seed-{seed}" / "checkpoints" / "latest.pt").exists() for seed in SEEDS)


async def test_sigterm_saves_every_member_and_exits_143(tmp_path: Path) -> None:
    async with training(tmp_path / "pop") as (app, pilot, screen):
        await wait_until(pilot, lambda: screen.last_snapshot.state == TrainerState.TRAINING)
        app.handle_signal(signal.SIGTERM)
        await wait_for_exit(app, pilot)
    outcome = screen.session.outcome
    assert outcome.state == TrainerState.STOPPED
    assert member_steps(tmp_path / "pop") == [outcome.step] * len(SEEDS)
    assert app.exit_code == 143


async def test_a_resumed_population_trains_on_in_the_dashboard_with_its_curves_so_far(tmp_path: Path) -> None:
    from agents.population import PopulationTrainer

    run_dir = tmp_path / "pop"
    members = tuple(run_dir / f"seed-{seed}" for seed in SEEDS)
    PopulationTrainer(TINY.replace(total_steps=200), list(SEEDS), list(members)).run()
    app = DDPGApp(PopulationRequest(None, SEEDS, run_dir, members, total_steps=400))
    async with app.run_test(size=(120, 40)) as pilot:
        screen = population_screen(app)
        await wait_until(pilot, lambda: screen.last_snapshot.state == TrainerState.FINISHED)
        await pilot.pause()
        # The episode that ended at step 200 comes from metrics.jsonl, the one at 400 from the resumed run.
        assert [list(steps) for steps, _ in screen.query_one("#population-returns").data.members] == \
            [[200, 400]] * len(SEEDS)
        assert any("resumed 3 members" in line[3] for line in screen.last_snapshot.log)
    assert member_steps(run_dir) == [400] * len(SEEDS)



async def test_a_population_that_cannot_start_says_why_and_the_app_stays_up(tmp_path: Path) -> None:
    app = DDPGApp(PopulationRequest(TINY.replace(env_id="Pendulm-v1"), SEEDS, tmp_path / "pop"))
    async with app.run_test(size=(120, 40)) as pilot:
        screen = population_screen(app)
        await wait_until(pilot, lambda: screen.last_snapshot.state == TrainerState.ERROR)
        assert "Pendulm-v1" in screen.last_snapshot.message
        # The status grows by the reason's line once it is laid out again.
        await wait_until(pilot, lambda: "Pendulm-v1" in visible_text(screen.query_one(PopulationStatus)), timeout=5)
        assert screen.session.controls.closed  # nothing will read a key's command: refused, and said so
        press(app, "q")  # nothing runs: no question, straight out
        await wait_for_exit(app, pilot)
    assert app.exit_code == 1


async def test_w_shows_the_median_members_latest_evaluation_and_records_only_while_open(tmp_path: Path) -> None:
    from agents.evaluation import evaluation_seed
    from ddpg_tui.ui.widgets.agent_panel import AgentPanel
    from ddpg_tui.ui.widgets.frames import FrameView

    async with training(tmp_path / "pop") as (app, pilot, screen):
        await wait_until(pilot, lambda: screen.last_snapshot.state == TrainerState.TRAINING)
        session = screen.session
        assert not session.record_evaluations.is_set()
        await pilot.press("w")
        panel = screen.query_one(AgentPanel)
        assert panel.display and screen.has_class("-agent") and session.record_evaluations.is_set()
        assert not any(plot.display for plot in screen.query("PopulationPlot"))
        press(app, "e")
        await wait_until(pilot, lambda: screen.last_snapshot.recording is not None, timeout=30)
        snapshot = screen.last_snapshot
        step = snapshot.recording.step
        means = {m.seed: next(e.mean for e in m.evals if e.step == step) for m in snapshot.members}
        median_seed = sorted(means, key=lambda seed: (means[seed], seed))[1]
        assert snapshot.recording_seed == median_seed and snapshot.recording.seed == evaluation_seed(median_seed)
        assert panel.border_title == f"Agent: seed {median_seed}, the median of 3"
        view = panel.query_one(FrameView)
        await wait_until(pilot, lambda: panel.loop is not None and len(panel.loop.frames) > 3 and view.draws > 0,
                         timeout=90)
        await pilot.press("w")
        assert not panel.display and not session.record_evaluations.is_set()
        assert screen.query_one("#population-returns").display and screen.query_one("#population-evals").display
