"""Starting a sweep from the hyperparameter form (issue #13): mark fields, choose seeds, start.

These run without Ray: `DDPGApp.start_sweep` is replaced by a recorder, and the checks the
dialog makes are the command line's own (`new_sweep_request`). `test_sweep_ray.py` runs a
sweep started this way on a real Ray.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from test_app_screens import footer_fits, open_form, visible_text
from textual.pilot import Pilot
from textual.widgets import Checkbox, Input, Label

from ddpg_tui.ui.app import DDPGApp
from ddpg_tui.ui.screens.dashboard import DashboardScreen
from ddpg_tui.ui.screens.form import SWEPT_MARK, HyperparameterForm
from ddpg_tui.ui.screens.hyperparameters import HyperparametersScreen
from ddpg_tui.ui.screens.sweep import LaunchingSweep
from ddpg_tui.ui.screens.sweep_setup import SweepSetupScreen


class RecordingApp(DDPGApp):
    CSS_PATH = str(Path(__file__).resolve().parents[1] / "ddpg_tui" / "ui" / "app.tcss")  # relative to its subclass

    def __init__(self, runs_root: Path) -> None:
        super().__init__(runs_root=runs_root)
        self.started: list[Any] = []

    def start_sweep(self, request: Any) -> None:
        self.started.append(request)


async def mark(pilot: Pilot, screen: HyperparametersScreen, name: str, value: str | None = None) -> Input:
    box = screen.query_one(f"#field-{name}", Input)
    box.focus()
    await pilot.press("ctrl+g")
    if value is not None:
        box.value = value
    await pilot.pause()
    return box


async def test_ctrl_g_marks_a_field_to_sweep_and_it_then_takes_several_values(tmp_path: Path) -> None:
    app = RecordingApp(tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_form(pilot)
        form = screen.query_one(HyperparameterForm)
        box = await mark(pilot, screen, "actor_lr", "1e-3, 3e-4")
        assert form.swept == {"actor_lr"} and box.is_valid
        assert visible_text(screen.query_one("#swept-actor_lr", Label)) == SWEPT_MARK
        assert screen.query_one("#row-actor_lr").has_class("-swept")
        assert "swept: one trial per value" in visible_text(screen.query_one("#hint-actor_lr", Label))
        assert form.grid() == {"actor_lr": (1e-3, 3e-4)} and "actor_lr" not in form.values()

        box.value = "1e-3,,3e-4"  # the same checks as --grid
        await pilot.pause()
        assert not box.is_valid and "an empty value" in visible_text(screen.query_one("#hint-actor_lr", Label))
        box.value = "1e-3, 5"  # and each value in its field's range
        await pilot.pause()
        assert not box.is_valid and "5" in visible_text(screen.query_one("#hint-actor_lr", Label))

        box.value = "3e-4, 1e-3"
        await pilot.pause()
        await pilot.press("ctrl+g")  # unmark: one value again, the first one typed
        await pilot.pause()
        assert form.swept == set() and box.value == "0.0003" and box.is_valid
        assert visible_text(screen.query_one("#swept-actor_lr", Label)) == ""


async def test_a_marked_field_takes_a_distribution_checked_as_sample_checks_it(tmp_path: Path) -> None:
    from ddpg_tui.sweeps.space import SampleSpec

    app = RecordingApp(tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_form(pilot)
        form = screen.query_one(HyperparameterForm)
        box = await mark(pilot, screen, "actor_lr", "loguniform(1e-4, 1e-2)")
        assert box.is_valid and "or a distribution" in visible_text(screen.query_one("#hint-actor_lr", Label))
        assert form.samples() == (SampleSpec("actor_lr", "loguniform", (1e-4, 1e-2)),) and form.grid() == {}
        assert "actor_lr" not in form.values()

        box.value = "loguniform(1e-2, 1e-4)"  # --sample's own checks, said without the command line's flag
        await pilot.pause()
        hint = visible_text(screen.query_one("#hint-actor_lr", Label))
        assert not box.is_valid and hint == "the low bound must be below the high bound", hint
        box.value = "randint(1e-4, 1e-3)"
        await pilot.pause()
        assert not box.is_valid and "use uniform or loguniform" in visible_text(screen.query_one("#hint-actor_lr"))

        box.value = "loguniform(1e-3, 1e-4)"  # an invalid distribution: unmarked, the form's value comes back too
        await pilot.pause()
        await pilot.press("ctrl+g")  # unmark: a distribution has no first value, so the form's own comes back
        await pilot.pause()
        assert form.swept == set() and box.value == "0.001" and box.is_valid


async def test_at_80_columns_the_forms_footer_shows_every_key_uncut(tmp_path: Path) -> None:
    app = RecordingApp(tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_form(pilot)
        assert set(footer_fits(screen, 80)) >= {"Start", "Sweep field", "Sweep…", "Reset", "Back"}


async def test_an_unmarked_field_still_refuses_a_list(tmp_path: Path) -> None:
    app = RecordingApp(tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_form(pilot)
        box = screen.query_one("#field-actor_lr", Input)
        box.value = "1e-3, 3e-4"
        await pilot.pause()
        assert not box.is_valid


@pytest.mark.parametrize("name", ["seed", "total_steps", "threads"])
async def test_fields_that_are_the_same_in_every_trial_cannot_be_marked(tmp_path: Path, name: str) -> None:
    app = RecordingApp(tmp_path)
    async with app.run_test(size=(120, 40), notifications=True) as pilot:
        screen = await open_form(pilot)
        await mark(pilot, screen, name)
        assert screen.query_one(HyperparameterForm).swept == set()
        assert any("same in every trial" in n.message for n in app._notifications)


async def test_start_training_with_a_marked_field_says_to_sweep_instead(tmp_path: Path) -> None:
    app = RecordingApp(tmp_path)
    async with app.run_test(size=(120, 40), notifications=True) as pilot:
        screen = await open_form(pilot)
        await mark(pilot, screen, "tau", "0.005, 0.05")
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert not any(isinstance(s, DashboardScreen) for s in app.screen_stack)
        assert any("marked to sweep" in n.message and "ctrl+t" in n.message for n in app._notifications)
        assert not list(tmp_path.iterdir()), "no run folder was made"


async def open_setup(pilot: Pilot) -> SweepSetupScreen:
    await pilot.press("ctrl+t")
    await pilot.pause()
    screen = pilot.app.screen
    assert isinstance(screen, SweepSetupScreen)
    return screen


@pytest.mark.parametrize("size", [(120, 40), (80, 24)])
async def test_the_sweep_dialog_starts_the_forms_configs_on_the_chosen_seeds(tmp_path: Path,
                                                                             size: tuple[int, int]) -> None:
    app = RecordingApp(tmp_path)
    async with app.run_test(size=size) as pilot:
        form_screen = await open_form(pilot)
        await mark(pilot, form_screen, "tau", "0.005, 0.05")
        form_screen.query_one("#field-total_steps", Input).value = "3000"
        await pilot.pause()
        setup = await open_setup(pilot)
        assert "tau = 0.005, 0.05" in visible_text(setup.query_one("#sweep-grid", Label))
        assert not setup.query_one("#samples-row").display and not setup.query_one("#sweep-tpe").display
        assert visible_text(setup.query_one("#sweep-count", Label)) == "2 configs × 3 seeds = 6 trials of 3,000 steps"
        setup.query_one("#sweep-seeds", Input).value = "4,7"
        setup.query_one("#sweep-asha", Checkbox).value = True
        await pilot.pause()
        assert visible_text(setup.query_one("#sweep-count", Label)).startswith("2 configs × 2 seeds = 4 trials")
        start = setup.query_one("#start-sweep")
        assert pilot.app.screen.region.contains_region(start.region), "Start sweep is in view"
        await pilot.click("#start-sweep")
        await pilot.pause()

        assert len(app.started) == 1
        request = app.started[0]
        spec = request.spec
        assert spec.grid == {"tau": (0.005, 0.05)} and spec.seeds == (4, 7) and spec.scheduler == "asha"
        assert spec.base.total_steps == 3000 and spec.label == "pendulum" and spec.threshold is not None
        assert request.sweep_dir.parent == tmp_path / "sweeps" and not request.headless
        assert isinstance(app.screen, HyperparametersScreen)


@pytest.mark.parametrize("size", [(120, 40), (80, 24)])
async def test_a_distribution_draws_configs_and_the_dialog_asks_how_many_tpe_and_seeds_together(
        tmp_path: Path, size: tuple[int, int]) -> None:
    from ddpg_tui.sweeps.space import SampleSpec

    app = RecordingApp(tmp_path)
    async with app.run_test(size=size) as pilot:
        form_screen = await open_form(pilot)
        await mark(pilot, form_screen, "actor_lr", "loguniform(1e-4,1e-2)")
        await mark(pilot, form_screen, "tau", "0.005, 0.05")
        setup = await open_setup(pilot)
        assert "actor_lr ~ loguniform(0.0001,0.01)" in visible_text(setup.query_one("#sweep-grid", Label))
        assert setup.query_one("#samples-row").display and setup.query_one("#sweep-tpe").display
        setup.query_one("#sweep-samples", Input).value = "3"
        setup.query_one("#sweep-seeds", Input).value = "0,1"
        await pilot.pause()
        assert visible_text(setup.query_one("#sweep-count", Label)).startswith("6 configs × 2 seeds = 12 trials")
        setup.query_one("#sweep-samples", Input).value = ""  # a box that does not parse is named, not left blank
        await pilot.pause()
        assert visible_text(setup.query_one("#sweep-count", Label)) == \
            "? configs (samples: an integer >= 1) × 2 seeds = ? trials"
        setup.query_one("#sweep-samples", Input).value = "3"
        await pilot.pause()

        setup.query_one("#sweep-tpe", Checkbox).value = True  # TPE with values to grid: refused, says what to do
        await pilot.press("ctrl+s")
        await pilot.pause()
        error = visible_text(setup.query_one("#sweep-error", Label))
        assert not app.started and "give tau a distribution, such as choice(0.005,0.05)" in error, error

        setup.query_one("#sweep-tpe", Checkbox).value = False
        setup.query_one("#sweep-together", Checkbox).value = True
        await pilot.pause()
        start = setup.query_one("#start-sweep")
        assert pilot.app.screen.region.contains_region(start.region), "Start sweep is in view"
        await pilot.click("#start-sweep")
        await pilot.pause()
        (request,) = app.started
        spec = request.spec
        assert spec.samples == (SampleSpec("actor_lr", "loguniform", (1e-4, 1e-2)),) and spec.sample_count == 3
        assert spec.grid == {"tau": (0.005, 0.05)} and spec.search == "random" and spec.seeds_together
        assert spec.seeds == (0, 1)


async def test_tpe_from_the_dialog_searches_the_forms_distributions(tmp_path: Path) -> None:
    app = RecordingApp(tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        form_screen = await open_form(pilot)
        await mark(pilot, form_screen, "critic_lr", "loguniform(1e-4,1e-2)")
        await mark(pilot, form_screen, "batch_size", "choice(64,256)")
        setup = await open_setup(pilot)
        setup.query_one("#sweep-tpe", Checkbox).value = True
        await pilot.press("ctrl+s")
        await pilot.pause()
        (request,) = app.started
        assert request.spec.search == "tpe" and [s.key for s in request.spec.samples] == ["batch_size", "critic_lr"]
        assert request.spec.sample_count == 4 and not request.spec.seeds_together


@pytest.mark.parametrize(("field", "value", "expected"), [
    ("#sweep-seeds", "3-1", "a range must go upwards"),
    ("#sweep-seeds", "x", "expected a range or a list"),
    ("#sweep-jobs", "0", "jobs: '0' is not allowed; expected an integer >= 1"),
])
async def test_bad_sweep_settings_get_one_line_and_the_dialog_stays(tmp_path: Path, field: str, value: str,
                                                                    expected: str) -> None:
    app = RecordingApp(tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await open_form(pilot)
        setup = await open_setup(pilot)
        setup.query_one(field, Input).value = value
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert app.screen is setup and not app.started
        error = setup.query_one("#sweep-error", Label)
        assert expected in visible_text(error) and error.has_class("invalid")


@pytest.mark.parametrize(("field", "value", "checkbox", "expected"), [
    ("device", "cuda", "#sweep-together", "seeds together trains a config's seeds on the CPU"),
    ("eval_every", "0", "#sweep-asha", "set eval_every > 0"),
], ids=["seeds-together-on-cuda", "asha-without-evaluations"])
async def test_a_form_and_dialog_the_cli_would_refuse_are_refused_with_its_line(
        tmp_path: Path, field: str, value: str, checkbox: str, expected: str) -> None:
    app = RecordingApp(tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        form_screen = await open_form(pilot)
        form_screen.query_one(f"#field-{field}", Input).value = value
        await pilot.pause()
        setup = await open_setup(pilot)
        setup.query_one(checkbox, Checkbox).value = True
        await pilot.press("ctrl+s")
        await pilot.pause()
        error = visible_text(setup.query_one("#sweep-error", Label))
        assert not app.started and expected in error, error


async def test_escape_cancels_the_dialog(tmp_path: Path) -> None:
    app = RecordingApp(tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await open_form(pilot)
        await open_setup(pilot)
        await pilot.press("escape")
        await pilot.pause()
        assert isinstance(app.screen, HyperparametersScreen) and not app.started


# LaunchingSweep, with a stand-in for Ray ---------------------------------------------------


class FakeRun:
    def __init__(self, board: Any) -> None:
        self.board = board
        self.calls: list[str] = []

    def stop_sweep(self) -> None:
        self.calls.append("stop_sweep")

    def abort(self) -> None:
        self.calls.append("abort")

    def stop_trial(self, name: str) -> bool:
        self.calls.append(f"stop_trial {name}")
        return True

    def fit(self) -> Any:
        self.calls.append("fit")
        return None

    def close(self) -> None:
        self.calls.append("close")


def a_request(tmp_path: Path) -> Any:
    from agents.config import DDPGConfig
    from ddpg_tui.sweeps.request import new_sweep_request

    return new_sweep_request(DDPGConfig(total_steps=1000), "Pendulum-v1", None, (0, 1), {"tau": (0.01, 0.02)},
                             root=tmp_path)


def test_a_stop_asked_for_before_ray_is_up_reaches_the_run_before_it_fits(tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    import ddpg_tui.sweeps.request as command

    source = LaunchingSweep(a_request(tmp_path))
    assert [r.name for r in source.board.snapshot().trials] == [
        "tau=0.01/seed0", "tau=0.01/seed1", "tau=0.02/seed0", "tau=0.02/seed1"]
    assert source.board.snapshot().message == "starting Ray"
    assert not source.stop_trial("tau=0.01/seed0")  # nothing runs yet
    runs: list[FakeRun] = []

    def fake_start(request: Any) -> FakeRun:
        runs.append(FakeRun(source.board))
        return runs[-1]
    monkeypatch.setattr(command, "start_sweep", fake_start)
    source.stop_sweep()
    source.fit()
    assert runs[0].calls == ["stop_sweep", "fit", "close"] and source.finished.is_set()
    assert source.closing_lines() == [f"the sweep stopped; carry it on with: ddpg-tui sweep --resume "
                                      f"{source.sweep_dir}"]


def test_a_failure_to_start_ray_shows_on_the_board_and_ends_the_worker(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    import ddpg_tui.sweeps.request as command
    from ddpg_tui.request import UsageError

    def no_ray(request: Any) -> None:
        raise UsageError("sweeps need Ray Tune: pip install 'ddpg-tui[ray]'")
    monkeypatch.setattr(command, "start_sweep", no_ray)
    source = LaunchingSweep(a_request(tmp_path))
    with pytest.raises(UsageError):
        source.fit()
    snapshot = source.board.snapshot()
    assert snapshot.state == "error" and "pip install 'ddpg-tui[ray]'" in snapshot.message
    assert source.finished.is_set()
