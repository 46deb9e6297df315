"""What a user sees on each screen, at the sizes people use (issue #16): nothing cut, nothing out of reach.

`visible_text` reads a widget as it is drawn on the terminal, so these tests fail on text
that is cut off or scrolled out of view, not only on text that is missing.
"""

from __future__ import annotations

import re
from dataclasses import replace
from itertools import pairwise
from pathlib import Path

import pytest
from test_app_snapshot import fixed_app, fixed_snapshot
from textual.geometry import Region
from textual.pilot import Pilot
from textual.screen import Screen
from textual.widget import Widget
from textual.widgets import Button, DataTable, Footer, Input, Label
from textual.widgets._footer import FooterKey

import presets
from agents.config import FIELDS, LIVE_FIELDS, DDPGConfig
from ddpg_tui.ui.app import DDPGApp
from ddpg_tui.ui.screens.dashboard import DashboardScreen
from ddpg_tui.ui.screens.form import HyperparameterForm, display
from ddpg_tui.ui.screens.hyperparameters import HyperparametersScreen
from ddpg_tui.ui.screens.modals import ConfirmQuitScreen, LiveEditScreen
from ddpg_tui.ui.screens.picker import PickerScreen
from ddpg_tui.ui.widgets.panels import EventLog
from ddpg_tui.ui.widgets.plots import RewardPlot


def footer_fits(screen: Screen, width: int) -> list[str]:
    """The footer's shown keys, asserting that each is inside `width` columns and none is drawn over another."""
    keys = [key for key in screen.query_one(Footer).query(FooterKey) if key.display]
    regions = sorted((key.region for key in keys), key=lambda region: region.x)
    assert all(r.width > 0 and r.right <= width for r in regions), [(k.description, k.region) for k in keys]
    assert all(a.right <= b.x for a, b in pairwise(regions)), [(k.description, k.region) for k in keys]
    return [key.description for key in keys]


def visible_text(widget: Widget) -> str:
    """The widget's text as drawn, lines joined with spaces and runs of blanks squeezed."""
    lines = widget.render_lines(Region(0, 0, widget.region.width, widget.region.height))  # padding included
    return squeeze(" ".join("".join(segment.text for segment in line) for line in lines))


def squeeze(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def on_screen(pilot: Pilot, widget: Widget) -> bool:
    """Wholly inside the terminal and inside every scrolling container around it."""
    region = widget.region
    if not pilot.app.screen.region.contains_region(region):
        return False
    return all(ancestor.region.contains_region(region) for ancestor in widget.ancestors
               if isinstance(ancestor, Widget) and ancestor.is_scrollable)


# The live hyperparameters dialog (h) ---------------------------------------------------


async def open_live_dialog(pilot: Pilot) -> LiveEditScreen:
    await pilot.press("h")
    screen = pilot.app.screen
    assert isinstance(screen, LiveEditScreen)
    return screen


async def test_tab_reaches_every_live_field_and_apply_at_80x24() -> None:
    app = fixed_app()
    async with app.run_test(size=(80, 24)) as pilot:
        dialog = await open_live_dialog(pilot)
        apply, cancel = dialog.query_one("#apply", Button), dialog.query_one("#cancel", Button)
        assert on_screen(pilot, apply) and on_screen(pilot, cancel)  # before any scrolling, too
        seen: list[str] = []
        for _ in range(len(LIVE_FIELDS) + 1):
            focused = app.focused
            assert focused is not None and on_screen(pilot, focused), f"{focused} is out of view"
            seen.append(focused.id or "")
            if focused is apply:
                break
            await pilot.press("tab")
        assert seen == [f"field-{name}" for name in LIVE_FIELDS] + ["apply"]
        assert on_screen(pilot, apply) and on_screen(pilot, cancel)
        await pilot.press("enter")  # Apply, with nothing changed: the dialog closes
        assert isinstance(app.screen, DashboardScreen)


async def test_live_dialog_has_a_footer_with_its_keys() -> None:
    app = fixed_app()
    async with app.run_test(size=(80, 24)) as pilot:
        dialog = await open_live_dialog(pilot)
        await pilot.pause()
        footer = " ".join(visible_text(key) for key in dialog.query("Footer FooterKey"))
        assert "esc Cancel" in footer and "^s Apply" in footer


async def test_ctrl_s_with_an_invalid_live_value_says_which_field_and_goes_there() -> None:
    app = fixed_app()
    async with app.run_test(size=(80, 24)) as pilot:
        dialog = await open_live_dialog(pilot)
        said: list[str] = []
        app.notify = lambda message, **kwargs: said.append(str(message))  # type: ignore[method-assign]
        gamma = dialog.query_one("#field-gamma", Input)
        gamma.value = "2"
        dialog.query_one("#field-eval_episodes", Input).focus()  # scrolled away from gamma
        await pilot.pause()
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert app.screen is dialog  # not applied
        assert len(said) == 1 and "gamma" in said[0]
        assert app.focused is gamma and on_screen(pilot, gamma)
        reason = squeeze(str(FIELDS["gamma"].allowed()))
        assert reason in visible_text(dialog.query_one("#hint-gamma"))  # the whole reason, wrapped


# The start form ------------------------------------------------------------------------


async def open_form(pilot: Pilot, config: DDPGConfig | None = None) -> HyperparametersScreen:
    pilot.app.push_screen(HyperparametersScreen(config or presets.load_preset("pendulum").config, "pendulum"))
    await pilot.pause()
    screen = pilot.app.screen
    assert isinstance(screen, HyperparametersScreen)
    return screen


@pytest.mark.parametrize("size", [(120, 40), (80, 24)])
async def test_every_field_shows_its_whole_help_and_range(tmp_path: Path, size: tuple[int, int]) -> None:
    app = DDPGApp(runs_root=tmp_path)
    async with app.run_test(size=size) as pilot:
        screen = await open_form(pilot)
        form = screen.query_one(HyperparameterForm)
        for name, spec in FIELDS.items():
            box = screen.query_one(f"#field-{name}", Input)
            box.focus()  # scrolls the field into view, animated: on a loaded machine that takes several frames
            await pilot.wait_for_scheduled_animations()
            await pilot.pause()
            hint = screen.query_one(f"#hint-{name}", Label)
            assert on_screen(pilot, hint), name
            shown = visible_text(hint)
            assert squeeze(f"{spec.help}; {spec.allowed()}") == shown, name
            assert "…" not in shown
        assert form.max_scroll_x == 0  # no sideways scrolling


async def test_the_focused_field_is_marked(tmp_path: Path) -> None:
    app = DDPGApp(runs_root=tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_form(pilot)
        screen.query_one("#field-tau", Input).focus()
        await pilot.pause()
        rows = list(screen.query(".field-row"))
        marked = [row for row in rows if row.query_one(".field-marker").styles.visibility == "visible"]
        assert len(marked) == 1 and marked[0].query_one("#field-tau")
        assert marked[0].styles.background != rows[0].styles.background  # the row is lit, too


async def test_booleans_show_as_true_and_false_and_start_the_run_as_typed(tmp_path: Path) -> None:
    assert (display(True), display(False)) == ("true", "false")
    app = DDPGApp(runs_root=tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_form(pilot)
        twin = screen.query_one("#field-twin_critics", Input)
        assert twin.value == "false" and twin.is_valid
        twin.value = "true"
        await pilot.pause()
        assert twin.is_valid and screen.query_one(HyperparameterForm).values()["twin_critics"] is True


# The picker ------------------------------------------------------------------------------


def picker_text(screen: PickerScreen) -> str:
    table = screen.query_one("#presets", DataTable)
    return visible_text(table) + " " + visible_text(screen.query_one("#preset-description"))


async def highlight(pilot: Pilot, screen: PickerScreen, preset: str) -> None:
    table = screen.query_one("#presets", DataTable)
    table.move_cursor(row=[p.name for p in screen.presets].index(preset))
    await pilot.pause()


async def test_the_install_hint_shows_only_while_the_extra_is_missing(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(presets.EXTRA_MODULES, "box2d", "json")  # installed
    monkeypatch.setitem(presets.EXTRA_MODULES, "mujoco", "no_module_of_this_name")  # missing
    app = DDPGApp(runs_root=tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = app.screen
        assert isinstance(screen, PickerScreen)
        await highlight(pilot, screen, "lunar-lander-continuous")
        shown = picker_text(screen)
        assert "box2d" not in shown and "pip install" not in shown
        await highlight(pilot, screen, "hopper")
        shown = picker_text(screen)
        assert "needs mujoco, which is not installed: pip install 'ddpg-tui[mujoco]'" in shown


async def test_with_every_extra_installed_no_preset_says_it_needs_one(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for extra in ("box2d", "mujoco"):
        monkeypatch.setitem(presets.EXTRA_MODULES, extra, "json")
    app = DDPGApp(runs_root=tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = app.screen
        assert isinstance(screen, PickerScreen)
        for preset in screen.presets:
            await highlight(pilot, screen, preset.name)
            shown = picker_text(screen)
            assert "needs" not in shown and "pip install" not in shown, preset.name
        table = screen.query_one("#presets", DataTable)
        assert table.max_scroll_x == 0  # at 80 columns the table fits: the env id moved under it


async def test_recent_runs_come_from_the_apps_runs_folder(tmp_path: Path) -> None:
    (tmp_path / "mine" / "a-run" / "checkpoints").mkdir(parents=True)
    (tmp_path / "mine" / "a-run" / "checkpoints" / "latest.pt").write_bytes(b"")
    app = DDPGApp(runs_root=tmp_path / "mine")
    async with app.run_test(size=(120, 40)):
        assert f"recent runs: {tmp_path / 'mine' / 'a-run'}" in str(app.screen.query_one("#recent-runs").render())


# The dashboard ----------------------------------------------------------------------------


@pytest.mark.parametrize("size", [(120, 40), (80, 24)])
async def test_event_lines_wrap_whole_and_never_scroll_sideways(size: tuple[int, int]) -> None:
    app = fixed_app()
    async with app.run_test(size=size) as pilot:
        await pilot.pause()
        log = app.screen.query_one(EventLog)
        shown = visible_text(log)
        for _, _, step, text in fixed_snapshot().log:
            assert f"{step:,}" in shown
            assert all(word in shown for word in text.split()), text
        assert log.max_scroll_x == 0 and not log.show_horizontal_scrollbar


async def test_the_event_log_has_room_at_80x24_and_l_gives_it_the_screen() -> None:
    app = fixed_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        screen = app.screen
        log = screen.query_one(EventLog)
        assert log.content_size.height >= 8
        await pilot.press("l")
        assert screen.maximized is log and log.region.width == 80
        shown = visible_text(log)
        assert "set noise_sigma=0.3, noise=ou, actor_lr=0.0005" in shown  # one line now: rewrapped to the width
        await pilot.press("l")
        assert screen.maximized is None


async def test_the_event_log_follows_new_lines_and_stays_at_the_end_when_rewrapped() -> None:
    app = fixed_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        log = app.screen.query_one(EventLog)
        many = tuple((10 + i, "info", 200 * i, f"ep {i} R -{i}.5 and a long tail to wrap at 80 columns")
                     for i in range(1, 1201))  # more than the log keeps
        log.show(replace(fixed_snapshot(), log=many))
        await pilot.pause()
        assert "ep 1200 R -1200.5" in visible_text(log) and "ep 1 R" not in visible_text(log)
        await pilot.press("l")
        await pilot.pause()
        assert "ep 1200 R -1200.5 and a long tail to wrap at 80 columns" in visible_text(log)


@pytest.mark.parametrize("size", [(120, 40), (80, 24)])
async def test_the_return_legend_sits_above_the_plot_not_on_the_curve(size: tuple[int, int]) -> None:
    app = fixed_app()
    async with app.run_test(size=size) as pilot:
        await pilot.pause()
        plot = app.screen.query_one(RewardPlot)
        lines = [squeeze("".join(s.text for s in line))
                 for line in plot.render_lines(Region(0, 0, plot.region.width, plot.region.height))]
        assert "mean" in lines[0] and "eval" in lines[0] and "…" not in lines[0]  # the border title
        assert not any("mean" in line or "episode" in line for line in lines[1:])


async def test_the_palette_describes_evaluate_in_plain_words() -> None:
    app = fixed_app()
    async with app.run_test(size=(120, 40)):
        commands = {c.title: c.help for c in app.get_system_commands(app.screen)}
        assert commands["Evaluate now"] == "e: 10 episodes with the exploration noise off, then training goes on"
        assert not any("eval_episodes" in help_text for help_text in commands.values())


@pytest.mark.parametrize("size", [(60, 18), (80, 24), (120, 40)])
async def test_every_screen_draws_at_small_sizes_without_crashing(tmp_path: Path, size: tuple[int, int]) -> None:
    app = DDPGApp(runs_root=tmp_path)
    async with app.run_test(size=size) as pilot:
        await pilot.pause()
        await open_form(pilot)
        app.pop_screen()
        app.push_screen(DashboardScreen(fixed_app().session, presets.load_preset("pendulum").config))
        await pilot.pause()
        await pilot.press("h")
        assert isinstance(app.screen, LiveEditScreen)
        assert on_screen(pilot, app.screen.query_one("#apply")) and on_screen(pilot, app.screen.query_one("#cancel"))
        await pilot.press("escape", "q")
        assert isinstance(app.screen, ConfirmQuitScreen)
        for button in app.screen.query(Button):
            assert on_screen(pilot, button) and str(button.label) in visible_text(button), button.id
        await pilot.press("escape")
