"""The runs screen (`ddpg-tui compare`), driven with Pilot on fixed records: list, select, compare; screenshots."""

from __future__ import annotations

import dataclasses
import math
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from textual.pilot import Pilot
from textual.widgets import DataTable

from ddpg_tui.sweeps.history import FieldValue, RunRecord, Series, compare_rows
from ddpg_tui.ui.run_text import differences_text
from ddpg_tui.ui.screens.runs import CompareScreen, RunsApp, RunsScreen

BASE = {"env_id": "Pendulum-v1", "total_steps": 20000, "actor_lr": 0.001, "lr_schedule": "constant",
        "hidden_sizes": [64, 64], "gamma": 0.98, "seed": 0}
STAMP = 1_795_000_000.0  # 2026-11-18 in UTC; the fixture pins the zone so the dates are the same everywhere


def series(label: str, level: float, seeds: int, **config: object) -> Series:
    steps = tuple(range(2000, 20001, 2000))
    median = tuple(level + (-1300 - level) * math.exp(-s / 3000) for s in steps)
    spread = 40.0 if seeds > 1 else 0.0
    finals = tuple(median[-1] + spread * (2 * i / (seeds - 1) - 1) for i in range(seeds)) if seeds > 1 else median[-1:]
    return Series(label, steps, median, tuple(m - spread for m in median), tuple(m + spread for m in median), seeds,
                  {**BASE, **config}, finals=finals)


def fixed_records() -> list[RunRecord]:
    sweep = (series("lr-demo: actor_lr=0.001", -140, 3), series("lr-demo: actor_lr=0.0003", -260, 3, actor_lr=0.0003))
    return [
        RunRecord(Path("runs/sweeps/lr-demo"), "sweep", "lr-demo", "Pendulum-v1", 20000, 20000, -140.0, -118.2,
                  STAMP, sweep, trials=6),
        RunRecord(Path("runs/pendulum-20261117-090000"), "run", "pendulum-20261117-090000", "Pendulum-v1", 20000,
                  20000, -123.4, -117.4, STAMP - 86400, (series("pendulum-20261117-090000", -125, 1, gamma=0.99),)),
        RunRecord(Path("runs/mountain-car-continuous-20261116-080000"), "run",
                  "mountain-car-continuous-20261116-080000", "MountainCarContinuous-v0", 60000, 30000, 86.0, 93.6,
                  STAMP - 2 * 86400, (series("mountain-car-continuous-20261116-080000", 90, 1,
                                             env_id="MountainCarContinuous-v0"),)),
    ]


@pytest.fixture(autouse=True)
def utc(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def app() -> RunsApp:
    return RunsApp(load=lambda: fixed_records()[::-1])  # oldest first: the screen sorts


async def read(pilot: Pilot) -> None:
    """Until the runs screen's worker has read the folders and the table is filled."""
    await pilot.pause()
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()


def test_comparing_lists_every_series_and_only_the_fields_that_differ() -> None:
    records = fixed_records()
    lines, differences = compare_rows(records[:2])
    assert [s.label for s in lines] == ["lr-demo: actor_lr=0.001", "lr-demo: actor_lr=0.0003",
                                        "pendulum-20261117-090000"]
    assert differences == [("actor_lr", [FieldValue(0.001), FieldValue(0.0003), FieldValue(0.001)]),
                           ("gamma", [FieldValue(0.98), FieldValue(0.98), FieldValue(0.99)])]
    assert differences_text(differences) == [("actor_lr", ["0.001", "0.0003", "0.001"]),
                                             ("gamma", ["0.98", "0.98", "0.99"])]


async def test_the_list_is_newest_first_and_space_then_c_compares_the_selected() -> None:
    runs_app = app()
    async with runs_app.run_test(size=(120, 40)) as pilot:
        await read(pilot)
        screen = runs_app.screen
        assert isinstance(screen, RunsScreen)
        assert [r.name for r in screen.records] == ["lr-demo", "pendulum-20261117-090000",
                                                    "mountain-car-continuous-20261116-080000"]
        await pilot.press("space", "down", "space", "c")
        await pilot.pause()
        compare = runs_app.screen
        assert isinstance(compare, CompareScreen)
        assert [r.name for r in compare.records] == ["lr-demo", "pendulum-20261117-090000"]
        table = compare.query_one("#differences")
        assert table.row_count == 3 and len(table.columns) == 6 + 2  # label seeds final IQM CI best; actor_lr gamma
        await pilot.press("escape")
        assert isinstance(runs_app.screen, RunsScreen)


async def test_c_with_nothing_selected_compares_the_highlighted_run() -> None:
    runs_app = app()
    async with runs_app.run_test(size=(120, 40)) as pilot:
        await read(pilot)
        await pilot.press("down", "c")
        await pilot.pause()
        assert [r.name for r in runs_app.screen.records] == ["pendulum-20261117-090000"]


async def test_an_empty_runs_folder_says_how_to_make_runs() -> None:
    runs_app = RunsApp(load=list)
    async with runs_app.run_test(size=(120, 40)) as pilot:
        await read(pilot)
        assert "no runs or sweeps under runs/ yet" in str(runs_app.screen.query_one("#runs-help").render())
        await pilot.press("c")
        assert isinstance(runs_app.screen, RunsScreen)


def test_runs_screen_at_120x40(snap_compare) -> None:
    assert snap_compare(app(), terminal_size=(120, 40), run_before=read)


def test_runs_screen_at_80x24(snap_compare) -> None:
    assert snap_compare(app(), terminal_size=(80, 24), run_before=read)


def test_compare_view_at_120x40(snap_compare) -> None:
    assert snap_compare(app(), terminal_size=(120, 40), press=["space", "down", "space", "c"], run_before=read)


def test_compare_view_at_80x24(snap_compare) -> None:
    assert snap_compare(app(), terminal_size=(80, 24), press=["space", "down", "space", "c"], run_before=read)


async def test_the_screen_is_up_before_the_folders_are_read_and_fills_in_after() -> None:
    started, release = threading.Event(), threading.Event()

    def slow_load() -> list[RunRecord]:
        started.set()
        release.wait(timeout=10)  # read on the UI thread, this would hold the screen back until the timeout
        return fixed_records()

    runs_app = RunsApp(load=slow_load)
    async with runs_app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        assert started.wait(timeout=5)
        screen = runs_app.screen
        assert isinstance(screen, RunsScreen) and screen.is_attached and screen.reading
        assert screen.query_one(DataTable).row_count == 0 and screen.sub_title == "reading runs and sweeps…"
        await pilot.press("down", "c")  # keys work meanwhile; with nothing read, c compares nothing
        assert runs_app.screen is screen and not release.is_set()
        release.set()
        await read(pilot)
        assert screen.query_one(DataTable).row_count == 3 and not screen.reading
        assert screen.sub_title == "runs and sweeps, newest first"


async def test_folders_named_on_the_command_line_are_compared_once_read() -> None:
    first = fixed_records()[1]
    runs_app = RunsApp(preselect=[first.path], load=fixed_records)
    async with runs_app.run_test(size=(120, 40)) as pilot:
        await read(pilot)
        assert isinstance(runs_app.screen, CompareScreen)
        assert [r.name for r in runs_app.screen.records] == [first.name]


async def test_the_comparison_shows_each_configs_iqm_interval_and_the_probability_of_improvement() -> None:
    runs_app = RunsApp(load=list)
    async with runs_app.run_test(size=(160, 40)) as pilot:
        runs_app.push_screen(CompareScreen(fixed_records()[:2]))
        await pilot.pause()
        table = runs_app.screen.query_one("#differences", DataTable)
        # Seeds 40 apart around the final median: the IQM of 3 is their mean, and the interval lies within them.
        first_final = series("x", -140, 3).median[-1]
        assert str(table.get_cell("0", "iqm")) == f"{first_final:,.1f}"
        low, high = (float(v.replace(",", "")) for v in str(table.get_cell("0", "ci")).split(" – "))
        assert first_final - 40.05 <= low < first_final < high <= first_final + 40.05  # shown to 0.1
        assert str(table.get_cell("2", "ci")) == ""  # a run is one seed: no interval
        text = str(runs_app.screen.query_one("#statistics").render())
        assert "P(lr-demo: actor_lr=0.001 beats lr-demo: actor_lr=0.0003 on a seed) = 1.00 (95% CI 1.00 – 1.00)" in text
        assert "lr-demo: actor_lr=0.001: 3 seeds: the 95% interval is wide" in text


async def test_the_comparison_says_which_field_changed_live_and_at_which_step() -> None:
    changed = dataclasses.replace(series("live", -150, 1, actor_lr=0.0005), changed={"actor_lr": 12_000})
    records = [fixed_records()[1], dataclasses.replace(fixed_records()[1], name="live", series=(changed,))]
    runs_app = RunsApp(load=list)
    async with runs_app.run_test(size=(160, 40)) as pilot:
        runs_app.push_screen(CompareScreen(records))
        await pilot.pause()
        table = runs_app.screen.query_one("#differences", DataTable)
        assert str(table.get_cell("1", "field-actor_lr")) == "0.0005 (changed live at step 12,000)"


async def test_a_run_that_a_process_trains_now_is_marked_live(tmp_path: Path) -> None:
    from agents.controls import Controls
    from ddpg_tui.channel.server import ChannelServer

    live, finished = fixed_records()[1:]
    live_dir, finished_dir = tmp_path / live.name, tmp_path / finished.name
    live_dir.mkdir()
    finished_dir.mkdir()
    records = [dataclasses.replace(live, path=live_dir), dataclasses.replace(finished, path=finished_dir)]
    server = ChannelServer(live_dir, Controls())
    server.start()
    try:
        runs_app = RunsApp(load=lambda: records)
        async with runs_app.run_test(size=(120, 40)) as pilot:
            await read(pilot)
            table = runs_app.screen.query_one(DataTable)
            assert table.get_cell(str(live_dir.resolve()), "kind") == "live run"
            assert table.get_cell(str(finished_dir.resolve()), "kind") == "run"
            assert "a opens a live run's dashboard" in str(runs_app.screen.query_one("#runs-help").render())
            await pilot.press("a")  # the live run is the highlighted first row (newest)
            await pilot.pause()
            from ddpg_tui.ui.screens.dashboard import DashboardScreen

            dashboard = runs_app.screen
            assert isinstance(dashboard, DashboardScreen) and dashboard.attached
            dashboard.detach_and_exit()  # what q, then d, does
            for _ in range(100):
                await pilot.pause(0.05)
                if isinstance(runs_app.screen, RunsScreen):
                    break
            assert isinstance(runs_app.screen, RunsScreen)  # back to the list, and the app still runs
    finally:
        server.close()
