"""The sweep screen, driven with Pilot on fixed data (no Ray): its table, its plot, its keys, and two screenshots."""

from __future__ import annotations

import dataclasses
import math
import threading
from pathlib import Path
from types import SimpleNamespace

import pytest

from agents.config import DDPGConfig
from ddpg_tui.sweeps.board import SweepSnapshot, TrialRow
from ddpg_tui.sweeps.spec import SweepSpec, write_spec
from ddpg_tui.sweeps.summary import write_summary
from ddpg_tui.ui.screens.sweep import FixedSweep, SweepApp, SweepScreen, TrialScreen, headline, variant_series
from presets import load_preset_file

VARIANTS = ("actor_lr=0.001,lr_schedule=constant", "actor_lr=0.001,lr_schedule=linear",
            "actor_lr=0.0003,lr_schedule=constant", "actor_lr=0.0003,lr_schedule=linear")
STATES = {0: "finished", 1: "training", 2: "early-stopped"}


def curve(variant: int, seed: int, last: int) -> tuple[tuple[int, float, float], ...]:
    """A learning curve that rises to a level set by the config, with a wobble set by the seed."""
    level = (-150, -120, -400, -250)[variant]
    return tuple((step, level + (-1300 - level) * math.exp(-step / 3000) + 25 * math.sin(seed + step / 1500), 30.0)
                 for step in range(2000, last + 1, 2000))


def fixed_snapshot() -> SweepSnapshot:
    rows = []
    for v, variant in enumerate(VARIANTS):
        for seed in range(3):
            state = "finished" if v < 2 or seed == 0 else STATES[seed]
            last = 20000 if state == "finished" else 8000 if state == "early-stopped" else 14000
            evals = curve(v, seed, last)
            best = max(evals, key=lambda e: e[1])
            rows.append(TrialRow(f"{variant}/seed{seed}", variant, seed, state=state, step=last, total_steps=20000,
                                 steps_per_second=612.0 if state == "training" else 0.0, eval_mean=evals[-1][1],
                                 eval_std=30.0, eval_step=last, best_eval=best[1], best_step=best[0], evals=evals,
                                 train_seconds=last / 600,
                                 episodes=tuple((s, -1400 + s / 20) for s in range(200, last + 1, 200)),
                                 losses=tuple((u, 5 * math.exp(-u / 3000) + 0.3, 20 + u / 500)
                                              for u in range(200, last, 200))))
    return SweepSnapshot(version=7, name="lr-demo", sweep_dir="runs/sweeps/lr-demo", env_id="Pendulum-v1",
                         threshold=-200.0, state="running", trials=tuple(rows), variants=VARIANTS, elapsed=754.0)


def app_on(snapshot: SweepSnapshot | None = None) -> tuple[SweepApp, FixedSweep]:
    source = FixedSweep(snapshot or fixed_snapshot())
    return SweepApp(source, run=False), source


def test_the_headline_counts_done_and_running_trials() -> None:
    assert headline(fixed_snapshot()).startswith("running  ·  10/12 trials done  ·  2 running  ·  0:12:34")


def test_each_config_is_one_series_with_its_colour_index() -> None:
    series, colours = variant_series(fixed_snapshot())
    assert [s.label for s in series] == list(VARIANTS) and colours == [0, 1, 2, 3]
    assert series[0].seeds == 3 and series[0].steps[-1] == 20000
    assert all(low <= mid <= high for s in series for low, mid, high in zip(s.low, s.median, s.high, strict=True))


async def test_the_table_lists_every_trial_and_s_stops_the_selected_one() -> None:
    app, source = app_on()
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, SweepScreen)
        table = screen.query_one("#trials")
        assert table.row_count == 12
        await pilot.press("down", "down", "down", "down")  # the fifth trial: lr_schedule=linear, seed 1
        await pilot.press("s")
        assert source.requests == [("stop_trial", "actor_lr=0.001,lr_schedule=linear/seed1")]
        await pilot.press("S")
        assert source.requests[-1] == ("stop_sweep", "")


async def test_enter_opens_the_selected_trials_curves_read_only_and_escape_returns() -> None:
    app, source = app_on()
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, TrialScreen)
        assert app.screen.trial == "actor_lr=0.001,lr_schedule=constant/seed0"
        await pilot.press("p", "e", "s")  # the dashboard's controls: none of them exists here
        assert source.requests == []
        await pilot.press("escape")
        assert isinstance(app.screen, SweepScreen)


class RunningSweep(FixedSweep):
    """A sweep whose Tune loop runs until it is stopped (by `release_on`), then ends paused."""

    def __init__(self, release_on: str) -> None:
        super().__init__(fixed_snapshot())
        self.release_on = release_on
        self.released = threading.Event()

    def fit(self) -> SimpleNamespace:
        self.released.wait(30)
        return SimpleNamespace(state="paused", message="stopped; carry it on with --resume", markdown="",
                               summary_md="summary.md", summary_csv="summary.csv")

    def stop_sweep(self) -> None:
        super().stop_sweep()
        if self.release_on == "stop_sweep":
            self.released.set()

    def abort(self) -> None:
        super().abort()
        self.released.set()


async def test_q_stops_the_sweep_and_closes_once_the_trials_have_saved() -> None:
    source = RunningSweep(release_on="stop_sweep")
    app = SweepApp(source)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        await pilot.press("q")
        await app.workers.wait_for_complete()
        await pilot.pause()
    assert source.requests == [("stop_sweep", "")]
    assert app.return_value.state == "paused"


async def test_a_second_q_stops_the_sweep_at_once() -> None:
    source = RunningSweep(release_on="abort")
    app = SweepApp(source)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        await pilot.press("q")
        await pilot.pause()
        assert app.is_running and source.requests == [("stop_sweep", "")]
        await pilot.press("q")
        await app.workers.wait_for_complete()
        await pilot.pause()
    assert source.requests == [("stop_sweep", ""), ("abort", "")]


def test_sweep_screen_at_120x40(snap_compare) -> None:
    assert snap_compare(app_on()[0], terminal_size=(120, 40))


def test_sweep_screen_at_80x24(snap_compare) -> None:
    assert snap_compare(app_on()[0], terminal_size=(80, 24))


def finished_sweep_with_best_toml(folder: Path) -> SweepSnapshot:
    """The fixed sweep, finished, with the summary (and so best.toml) written into `folder` as the driver does."""
    spec = SweepSpec(name="lr-demo", label="pendulum", base=DDPGConfig(total_steps=20000, hidden_sizes=(16, 16)),
                     grid={"actor_lr": (0.001, 0.0003), "lr_schedule": ("constant", "linear")}, seeds=(0, 1, 2),
                     threshold=-200.0)
    assert [v.label for v in spec.variants()] == list(VARIANTS)
    write_spec(folder, spec)
    snapshot = dataclasses.replace(fixed_snapshot(), state="finished", sweep_dir=str(folder))
    write_summary(folder, "Sweep lr-demo", spec.facts(), snapshot.trials, spec.variants(), spec.keys, -200.0)
    return snapshot


async def test_b_is_offered_once_the_sweep_has_finished_and_hands_best_toml_to_the_command(tmp_path: Path) -> None:
    running = dataclasses.replace(fixed_snapshot(), sweep_dir=str(tmp_path))
    finished = finished_sweep_with_best_toml(tmp_path)
    assert (tmp_path / "best.toml").is_file()
    app, _ = app_on(running)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        assert "train_best" not in {b.binding.action for b in app.screen.active_bindings.values()
                                    if app.screen.check_action(b.binding.action, ()) is not False}
        await pilot.press("b")  # running: nothing to train yet
        assert app.is_running and app.train_after is None
    app, _ = app_on(finished)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        assert app.screen.check_action("train_best", ()) is True
        await pilot.press("b")
        await pilot.pause()
    assert app.train_after == tmp_path / "best.toml"
    # The best finished config: actor_lr=0.001 with the linear schedule (its curve rises to -120, the highest).
    best = load_preset_file(app.train_after).config
    assert (best.actor_lr, best.lr_schedule) == (0.001, "linear")


async def test_at_80_columns_the_finished_sweeps_footer_shows_every_key_uncut(tmp_path: Path) -> None:
    from test_app_screens import footer_fits

    app, _ = app_on(finished_sweep_with_best_toml(tmp_path))
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        app.screen.refresh_bindings()
        await pilot.pause()
        # None drawn over another: the palette key docked at the right edge covered q Quit.
        assert set(footer_fits(app.screen, 80)) >= {"Stop trial", "Stop sweep", "Trial curves", "Train best", "Quit"}


async def test_b_in_the_main_app_opens_a_dashboard_on_the_best_config(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    from ddpg_tui.ui.app import DDPGApp
    from ddpg_tui.ui.screens.sweep import FormSweepScreen

    source = FixedSweep(finished_sweep_with_best_toml(tmp_path))
    started: list[tuple[DDPGConfig, str]] = []
    app = DDPGApp(runs_root=tmp_path / "runs")
    monkeypatch.setattr(app, "start_training", lambda config, label: started.append((config, label)))
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        app.push_screen(FormSweepScreen(source, run=False, leave=lambda result: None))
        await pilot.pause()
        await pilot.press("b")
        await pilot.pause()
    expected = load_preset_file(tmp_path / "best.toml").config
    assert started == [(expected, f"{tmp_path.name}-best")]
    assert expected.actor_lr == 0.001 and expected.hidden_sizes == (16, 16)
