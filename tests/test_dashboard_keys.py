"""The dashboard's keys as a user meets them (issue #25): p says what it does now, ? lists
the keys, the footer fits 60 columns, and the events list keeps following after l twice."""

from __future__ import annotations

from dataclasses import replace
from itertools import pairwise
from pathlib import Path

import pytest
from test_app_screens import visible_text
from test_app_snapshot import fixed_app, fixed_snapshot
from textual.pilot import Pilot
from textual.widgets import Footer
from textual.widgets._footer import FooterKey

from agents.events import StateChanged, TrainerState
from ddpg_tui.request import TrainingRequest
from ddpg_tui.ui.app import DDPGApp
from ddpg_tui.ui.screens.dashboard import DashboardScreen
from ddpg_tui.ui.screens.modals import HelpScreen
from ddpg_tui.ui.session import FixedSession, TrainingSession
from ddpg_tui.ui.widgets.panels import EventLog


def footer_keys(app: DDPGApp) -> list[FooterKey]:
    return [key for key in app.screen.query_one(Footer).query(FooterKey) if key.display]


def footer_descriptions(app: DDPGApp) -> list[str]:
    return [key.description for key in footer_keys(app)]


def show_state(app: DDPGApp, state: TrainerState) -> None:
    """The next snapshot the dashboard reads is in `state` (the fixed session never trains)."""
    session = app.session
    assert isinstance(session, FixedSession)
    old = session.snapshot()
    session._snapshot = replace(old, version=old.version + 1, state=state)


async def refreshed(pilot: Pilot) -> None:
    screen = pilot.app.screen
    assert isinstance(screen, DashboardScreen)
    screen.refresh_from_session()
    await pilot.pause()


# The events list ----------------------------------------------------------------------------


def lines(first: int, count: int) -> tuple:
    return tuple((first + i, "info", 100 * (first + i), f"ep {first + i} R -{first + i}.5") for i in range(count))


async def test_the_events_list_follows_new_lines_after_l_twice() -> None:
    app = fixed_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        log = app.screen.query_one(EventLog)
        log.show(replace(fixed_snapshot(), log=lines(10, 60)))
        await pilot.pause()
        await pilot.press("l", "l")  # the whole screen and back
        await pilot.pause()
        assert app.screen.maximized is None
        log.show(replace(fixed_snapshot(), log=lines(10, 65)))  # five new lines
        await pilot.pause()
        assert "ep 74 R -74.5" in visible_text(log)
        assert log.scroll_offset.y == log.max_scroll_y > 0


async def test_the_events_list_stays_where_the_user_scrolled_up_to() -> None:
    app = fixed_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        log = app.screen.query_one(EventLog)
        log.show(replace(fixed_snapshot(), log=lines(10, 60)))
        await pilot.pause()
        log.scroll_home(animate=False)
        await pilot.pause()
        log.show(replace(fixed_snapshot(), log=lines(10, 65)))
        await pilot.pause()
        assert log.scroll_offset.y == 0 and "ep 74" not in visible_text(log)
        log.scroll_end(animate=False)  # back at the end: it follows again
        await pilot.pause()
        log.show(replace(fixed_snapshot(), log=lines(10, 70)))
        await pilot.pause()
        assert "ep 79 R -79.5" in visible_text(log)


# The footer -----------------------------------------------------------------------------------


@pytest.mark.parametrize(("size", "palette"), [((60, 18), False), ((80, 24), True), ((120, 40), True)])
async def test_the_footer_shows_every_key_whole_down_to_60_columns(size: tuple[int, int], palette: bool) -> None:
    app = fixed_app()
    async with app.run_test(size=size) as pilot:
        await pilot.pause()
        footer = app.screen.query_one(Footer)
        keys = footer_keys(app)
        assert [key.description for key in keys if "-command-palette" not in key.classes] == \
            ["Pause", "Eval", "Save", "Params", "Events", "Agent", "Quit"]
        assert any("-command-palette" in key.classes for key in keys) is palette
        assert footer.max_scroll_x == 0  # nothing runs past the edge (at 60 it left a stray character)
        assert all(key.region.right <= size[0] and key.region.width > 0 for key in keys)
        regions = sorted((key.region for key in keys), key=lambda region: region.x)
        assert all(a.right <= b.x for a, b in pairwise(regions))  # none drawn over another


# Pause and resume ------------------------------------------------------------------------------


async def test_p_says_resume_while_paused_and_pause_again_after() -> None:
    app = fixed_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        assert "Pause" in footer_descriptions(app) and "Resume" not in footer_descriptions(app)
        show_state(app, TrainerState.PAUSED)
        await refreshed(pilot)
        assert "Resume" in footer_descriptions(app) and "Pause" not in footer_descriptions(app)
        show_state(app, TrainerState.EVALUATING)  # e while paused: it goes back to paused, p still resumes
        await refreshed(pilot)
        assert "Resume" in footer_descriptions(app)
        await pilot.press("p")
        session = app.session
        assert isinstance(session, FixedSession)
        command = session.controls.next(timeout=1)
        assert command is not None and command.name == "toggle_pause"
        show_state(app, TrainerState.TRAINING)
        await refreshed(pilot)
        assert "Pause" in footer_descriptions(app) and "Resume" not in footer_descriptions(app)


def test_a_resume_is_logged_as_a_pause_is(tmp_path: Path) -> None:
    session = TrainingSession(TrainingRequest(None, tmp_path))
    for step, state in ((100, TrainerState.TRAINING), (250, TrainerState.PAUSED), (250, TrainerState.EVALUATING),
                        (250, TrainerState.PAUSED), (250, TrainerState.TRAINING), (400, TrainerState.EVALUATING),
                        (400, TrainerState.TRAINING)):
        session.sink(StateChanged(step, state))
    assert [(step, text) for _, level, step, text in session.snapshot().log if level == "state"] == \
        [(250, "paused"), (250, "resumed")]


# Help -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [(60, 18), (80, 24)])
async def test_question_mark_lists_the_dashboards_keys_and_escape_closes_it(size: tuple[int, int]) -> None:
    app = fixed_app()
    async with app.run_test(size=size) as pilot:
        await pilot.pause()
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        shown = visible_text(app.screen.query_one("#help-keys"))
        for key, text in (("p", "Pause training"), ("e", "Evaluate now"), ("h", "Change hyperparameters live"),
                          ("l", "The event log"), ("w", "Watch the agent"), ("q", "Quit"), ("? f1", "These keys")):
            assert f"{key} {text}" in shown, key
        assert "Focus Next" not in shown and "Scroll Up" not in shown  # Textual's own keys, not the dashboard's
        await pilot.press("escape")
        assert isinstance(app.screen, DashboardScreen)


@pytest.mark.parametrize("closer", ["q", "question_mark", "f1"])
async def test_f1_opens_the_keys_too_and_q_or_the_same_key_closes_them(closer: str) -> None:
    app = fixed_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        await pilot.press("f1")
        assert isinstance(app.screen, HelpScreen)
        await pilot.press(closer)
        assert isinstance(app.screen, DashboardScreen)  # q closed the list; it did not ask to quit


async def test_the_keys_say_resume_while_paused() -> None:
    app = fixed_app()
    async with app.run_test(size=(80, 24)) as pilot:
        show_state(app, TrainerState.PAUSED)
        await refreshed(pilot)
        await pilot.press("question_mark")
        shown = visible_text(app.screen.query_one("#help-keys"))
        assert "p Resume training" in shown and "p Pause training" not in shown


async def test_question_mark_on_the_picker_lists_the_pickers_keys(tmp_path: Path) -> None:
    app = DDPGApp(runs_root=tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        app.set_focus(None)  # ? typed into a text box is a character; F1 works there
        await pilot.press("f1")
        assert isinstance(app.screen, HelpScreen)
        assert "These keys" in visible_text(app.screen.query_one("#help-keys"))


async def test_below_60x18_one_line_says_how_large_the_window_must_be_and_the_dashboard_comes_back() -> None:
    app = fixed_app()
    async with app.run_test(size=(59, 18)) as pilot:
        await pilot.pause()
        notice = app.screen.query_one("#too-small")
        assert visible_text(notice) == "The window is 59×18; the dashboard needs at least 60×18."
        assert not app.screen.query_one("#dashboard").region  # the plots and panels make way
        assert not app.screen.query_one(Footer).region  # no cut footer either
        await pilot.resize_terminal(60, 17)
        await pilot.pause()
        assert "60×17" in visible_text(notice)
        await pilot.resize_terminal(60, 18)
        await pilot.pause()
        assert not notice.region and app.screen.query_one(EventLog).region.height > 2
        assert "Quit" in footer_descriptions(app)


# What the dashboard costs training (#27: the UI thread's share of the GIL) -------------------


async def test_a_key_is_answered_as_soon_as_the_trainer_confirms_not_at_the_next_tick(
        monkeypatch: pytest.MonkeyPatch) -> None:
    # The text panels redraw only twice a second; a key's answer must not wait for that.
    import ddpg_tui.ui.screens.dashboard as dashboard
    from ddpg_tui.ui.widgets.panels import StatusPanel

    monkeypatch.setattr(dashboard, "REFRESH_HZ", 0.01)  # no tick during the test: only the answer redraws
    app = fixed_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()

        def confirmed_at_once() -> bool:  # as the trainer does between two steps
            show_state(app, TrainerState.PAUSED)
            return True
        monkeypatch.setattr(app.session.controls, "toggle_pause", confirmed_at_once)
        status = app.screen.query_one(StatusPanel)
        assert "paused" not in visible_text(status)
        await pilot.press("p")
        await pilot.pause(0.3)
        assert "paused" in visible_text(status)


async def test_the_status_panel_asks_for_a_layout_only_when_its_height_changes(
        monkeypatch: pytest.MonkeyPatch) -> None:
    # A layout pass re-renders every widget, the plots' figures included: at every tick it was most of the
    # UI thread's time. Its height changes only with its number of rows (an error message adds one).
    from ddpg_tui.ui.widgets.panels import StatusPanel

    app = fixed_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        status = app.screen.query_one(StatusPanel)
        layouts: list[bool] = []
        plain_refresh = status.refresh

        def refresh(*args: object, layout: bool = False, **kwargs: object) -> object:
            layouts.append(layout)
            return plain_refresh(*args, layout=layout, **kwargs)
        monkeypatch.setattr(status, "refresh", refresh)
        snapshot = fixed_snapshot()
        progress = snapshot.progress
        assert progress is not None
        status.show(replace(snapshot, progress=replace(progress, step=progress.step + 200)))
        status.show(replace(snapshot, progress=replace(progress, step=progress.step + 400)))
        assert layouts == [False, False]
        height = status.size.height
        failed = replace(snapshot, version=snapshot.version + 1, state=TrainerState.ERROR, message="the env raised")
        app.session._snapshot = failed  # what the next ticks show, too
        status.show(failed)
        assert layouts[2] is True, layouts
        await pilot.pause()
        assert status.size.height == height + 1


async def test_a_run_that_trains_fast_gets_its_text_redrawn_half_as_often(monkeypatch: pytest.MonkeyPatch) -> None:
    # Small nets at hundreds of steps/s leave the trainer mostly Python: every redraw is GIL time it waits for.
    import ddpg_tui.ui.screens.dashboard as dashboard

    monkeypatch.setattr(dashboard, "REFRESH_HZ", 0.01)  # the test drives the ticks
    app = fixed_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, DashboardScreen)
        drawn: list[int] = []
        monkeypatch.setattr(screen, "refresh_from_session", lambda: drawn.append(1))
        snapshot = fixed_snapshot()
        progress = snapshot.progress
        assert progress is not None
        for steps_per_second, draws in ((161.0, 4), (dashboard.FAST_STEPS_PER_SECOND + 200, 2)):
            screen.last_snapshot = replace(snapshot, progress=replace(progress, steps_per_second=steps_per_second))
            drawn.clear()
            for _ in range(4):
                screen.on_tick()
            assert len(drawn) == draws, steps_per_second
        fast = replace(progress, steps_per_second=dashboard.FAST_STEPS_PER_SECOND + 200)
        screen.last_snapshot = replace(snapshot, state=TrainerState.PAUSED, progress=fast)  # no training to spare
        drawn.clear()
        for _ in range(4):
            screen.on_tick()
        assert len(drawn) == 4


async def test_a_history_folded_after_the_screen_opened_is_drawn_at_once_not_at_the_next_tick(
        monkeypatch: pytest.MonkeyPatch) -> None:
    # Attaching to a long run: the worker folds metrics.jsonl just after the screen mounts. Drawn only at
    # the next tick, it showed up to a second later on a fast run (#27: the history within 1 s).
    import ddpg_tui.ui.screens.dashboard as dashboard
    from ddpg_tui.ui.widgets.plots import RewardPlot

    monkeypatch.setattr(dashboard, "REFRESH_HZ", 0.01)  # no tick during the test
    app = fixed_app()
    session = app.session
    assert isinstance(session, FixedSession)
    full = fixed_snapshot()
    session._snapshot = replace(full, version=1, episode_steps=(), episode_returns=(), evals=(), log=())
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        plot = app.screen.query_one(RewardPlot)
        assert plot._drawn[0] == 0
        session._snapshot = replace(full, version=2)  # the history, folded by the worker
        await pilot.pause(0.4)
        assert plot._drawn[0] == len(full.episode_steps) > 0
        assert "ep 60 R -148.0" in visible_text(app.screen.query_one(EventLog))
