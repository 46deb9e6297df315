"""`ddpg-tui watch`: the policy plays live; space pauses, . steps one frame, n skips to the next episode, q quits."""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest

from agents.evaluation import CheckpointPolicy
from ddpg_tui.cli.commands import watch as watch_command
from ddpg_tui.media.render import prepare_headless_rendering
from ddpg_tui.ui.screens.watch import Player, WatchApp
from ddpg_tui.ui.widgets.frames import HALF_BLOCK, FrameView


def player(episodes: int = 3, episode_steps: int = 200, fps: float = 20.0) -> Player:
    """Pendulum with a fixed torque for a policy: no checkpoint needed to test the keys."""
    prepare_headless_rendering("Pendulum-v1")
    env = gym.make("Pendulum-v1", render_mode="rgb_array", max_episode_steps=episode_steps)
    loaded = CheckpointPolicy("Pendulum-v1", 1000, Path("run/checkpoints/latest.pt"), env,
                              lambda obs: np.array([1.0], np.float32))
    return Player(loaded, episodes, seed=0, max_fps=fps)


async def wait_for(condition, pilot, timeout: float = 20.0) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not condition():
        assert loop.time() < end, "timed out"
        await pilot.pause(0.05)


async def test_it_plays_in_colour_with_the_step_and_the_return_shown() -> None:
    app = WatchApp(player(), "Pendulum-v1 · run/checkpoints/latest.pt (step 1,000)")
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(lambda: app.state is not None and app.state.step >= 10, pilot)
        view = app.query_one(FrameView)
        colours = {tuple(s.style.color.triplet) for y in range(view.size.height) for s in view.render_line(y)
                   if s.text.startswith(HALF_BLOCK) and s.style and s.style.color}
        assert any(r > 150 and g < 120 for r, g, _ in colours)  # the red rod
        status = app.status_text(app.state)
        assert status.startswith("episode 1/3 · step ") and "return -" in status and "15 fps" in status
        assert app.player.stride == 2  # Pendulum runs at 30 fps: every 2nd step, in real time


async def test_space_pauses_and_dot_steps_exactly_one_frame() -> None:
    app = WatchApp(player())
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(lambda: app.state is not None and app.state.step >= 4, pilot)
        await pilot.press("space")
        await wait_for(lambda: app.state.paused, pilot)
        paused_at = app.state.step
        await pilot.pause(0.4)
        assert app.state.step == paused_at  # nothing moves while paused
        shown = app.frames_shown
        await pilot.press("full_stop")
        await wait_for(lambda: app.state.step == paused_at + 1, pilot)
        await pilot.pause(0.3)
        assert app.state.step == paused_at + 1 and app.state.paused
        assert app.frames_shown == shown + 1
        assert "paused" in app.status_text(app.state)
        await pilot.press("space")
        await wait_for(lambda: app.state.step > paused_at + 2, pilot)


async def test_n_starts_the_next_episode_from_its_own_seed() -> None:
    app = WatchApp(player())
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(lambda: app.state is not None and app.state.step >= 6, pilot)
        await pilot.press("n")
        await wait_for(lambda: app.state.episode == 1, pilot)
        assert app.state.step < 6 and app.state.returns == ()  # an episode cut short is not counted
        assert app.status_text(app.state).startswith("episode 2/3")


async def test_after_the_last_episode_it_stops_and_says_so_and_n_plays_one_more() -> None:
    app = WatchApp(player(episodes=2, episode_steps=6))
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(lambda: app.state is not None and app.state.finished, pilot)
        assert len(app.state.returns) == 2
        assert "done" in app.status_text(app.state) and "mean of 2" in app.status_text(app.state)
        await pilot.press("n")
        await wait_for(lambda: app.state is not None and not app.state.finished, pilot)
        assert app.state.episode == 2 and app.status_text(app.state).startswith("episode 3/3")


async def test_q_quits_at_once() -> None:
    app = WatchApp(player())
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(lambda: app.state is not None, pilot)
        await pilot.press("q")
        await pilot.pause()
    assert app.return_code == 0


@pytest.mark.parametrize(("args", "message"), [
    (["x.pt", "--fps", "0"], "--fps: 0 is not allowed; expected a number > 0 and <= 20"),
    (["x.pt", "--fps", "30"], "--fps: 30 is not allowed; expected a number > 0 and <= 20"),
    (["x.pt", "--episodes", "0"], "--episodes: 0 is not allowed; expected an integer >= 1"),
])
def test_bad_numbers_are_refused_before_anything_loads(args: list[str], message: str) -> None:
    from ddpg_tui.request import UsageError

    parser = argparse.ArgumentParser()
    watch_command.add_arguments(parser)
    with pytest.raises(UsageError, match=message):
        watch_command.run(parser.parse_args(args))


def test_a_missing_checkpoint_is_one_line_and_exit_2(tmp_path: Path, capsys) -> None:
    parser = argparse.ArgumentParser()
    watch_command.add_arguments(parser)
    assert watch_command.run(parser.parse_args([str(tmp_path / "nowhere.pt")])) == 2
    assert capsys.readouterr().err.strip() == f"ddpg-tui: error: checkpoint {tmp_path / 'nowhere.pt'} does not exist"
