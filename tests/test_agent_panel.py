"""The Agent panel: an evaluation's first episode replayed in a loop, on a small app that hosts it.

The dashboard's own `w` key is tested in test_agent_panel_dashboard.py once the panel is wired
into it; here a host app plays the dashboard's part: it shows the panel and calls `show()`.
"""

from __future__ import annotations

import asyncio
import threading

import numpy as np
import pytest
from textual.app import App, ComposeResult
from textual.widgets import Static

from agents.config import DDPGConfig
from agents.events import EvalRecording
from agents.trainer import Trainer
from ddpg_tui.media.replay import ReplayChunk, ReplayPlan
from ddpg_tui.ui.widgets.agent_panel import AgentPanel
from ddpg_tui.ui.widgets.frames import HALF_BLOCK, FrameView


def pendulum_picture(size: int = 120, angle: float = 0.6) -> np.ndarray:
    """A fixed frame: white field, a red rod from the centre, a black pivot (no env, no pygame)."""
    y, x = np.mgrid[0:size, 0:size].astype(np.float32) - size / 2
    along = x * np.sin(angle) - y * np.cos(angle)
    across = x * np.cos(angle) + y * np.sin(angle)
    frame = np.full((size, size, 3), 255, np.uint8)
    frame[(along > 0) & (along < size * 0.4) & (np.abs(across) < size * 0.04)] = (204, 77, 77)
    frame[x ** 2 + y ** 2 < (size * 0.03) ** 2] = (0, 0, 0)
    return frame


class FixedFrames:
    """A renderer that draws nothing: every frame is the same fixed picture, turned a little per frame
    unless `still`; steps and rewards follow the plan as a real replay's would."""

    def __init__(self, still: bool = False) -> None:
        self.still = still
        self.calls = 0

    def render(self, recording: EvalRecording, first: int, count: int, max_width: int, max_height: int,
               plan: ReplayPlan) -> ReplayChunk:
        self.calls += 1
        length = len(recording.rewards)
        frames = range(first, min(first + count, plan.frames))
        steps = tuple(plan.step_of(j, length) for j in frames)
        pictures = tuple(pendulum_picture(angle=0.6 if self.still else 0.6 + 0.2 * j) for j in frames)
        so_far = tuple(float(sum(recording.rewards[:s])) for s in steps)
        return ReplayChunk(first, pictures, steps, so_far, frames.stop >= plan.frames)

    def close(self) -> None:
        pass


def fixed_recording(step: int = 12_000, length: int = 200, fps: float = 30.0) -> EvalRecording:
    return EvalRecording(step, "Pendulum-v1", 10_000, tuple((0.5,) for _ in range(length)),
                         tuple(-0.75 for _ in range(length)), fps)


class PanelHost(App):
    """The dashboard's part: an open panel and `show()` calls."""

    def __init__(self, renderer: object = None) -> None:
        super().__init__()
        self.renderer = renderer

    def compose(self) -> ComposeResult:
        panel = AgentPanel(renderer=self.renderer)  # type: ignore[arg-type]
        panel.display = True
        yield panel


def coloured_cells(view: FrameView) -> set[tuple[int, int, int]]:
    colours = set()
    for y in range(view.size.height):
        for segment in view.render_line(y):
            if segment.text.startswith(HALF_BLOCK) and segment.style and segment.style.color:
                colours.add(tuple(segment.style.color.triplet))
                if segment.style.bgcolor:
                    colours.add(tuple(segment.style.bgcolor.triplet))
    return colours


async def wait_for(condition, pilot, timeout: float = 30.0) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not condition():
        assert loop.time() < end, "timed out"
        await pilot.pause(0.05)


async def test_after_an_evaluation_the_panel_plays_its_first_episode_in_colour() -> None:
    # The whole path: a trainer asked to record, its evaluation's EvalRecording, the helper
    # process redrawing it, the panel playing it.
    recordings: list[EvalRecording] = []
    config = DDPGConfig(total_steps=200, learning_starts=100, batch_size=32, hidden_sizes=(16, 16), eval_every=200,
                        eval_episodes=1, threads=1)
    asked = threading.Event()
    asked.set()  # the panel is open
    trainer = Trainer(config, lambda e: recordings.append(e) if isinstance(e, EvalRecording) else None,
                      record_evaluations=asked)
    app = PanelHost()
    async with app.run_test(size=(80, 30)) as pilot:
        panel = app.query_one(AgentPanel)
        panel.show(None, evaluations=0)
        await pilot.pause()
        assert "No evaluation yet" in str(app.query_one("#agent-message", Static).render())
        await asyncio.to_thread(trainer.run)
        (recording,) = recordings
        panel.show(recording, evaluations=1)
        view = app.query_one(FrameView)
        await wait_for(lambda: panel.loop is not None and len(panel.loop.frames) > 5 and view.draws > 0, pilot)
        colours = coloured_cells(view)
        assert len(colours) > 3  # white field, the red rod, the pivot and the shades between
        assert any(r > 150 and g < 120 and b < 120 for r, g, b in colours)  # the rod is red
        caption = str(app.query_one("#agent-caption", Static).render())
        assert "evaluation at step 200" in caption and "/200" in caption and "reward so far" in caption
        first_step = panel.loop.steps[panel.loop.index]
        await pilot.pause(0.5)
        assert panel.loop.steps[panel.loop.index] != first_step  # it plays
        assert panel.renderer.running
    assert not panel.renderer.running  # the helper process ends with the panel


async def test_a_newer_evaluation_replaces_the_loop() -> None:
    app = PanelHost(FixedFrames())
    async with app.run_test(size=(80, 30)) as pilot:
        panel = app.query_one(AgentPanel)
        panel.show(fixed_recording(step=2_000), evaluations=1)
        await wait_for(lambda: panel.loop is not None and panel.loop.complete, pilot)
        panel.show(fixed_recording(step=4_000), evaluations=2)
        await wait_for(lambda: panel.loop is not None and panel.loop.recording.step == 4_000, pilot)
        assert "evaluation at step 4,000" in str(app.query_one("#agent-caption", Static).render())


async def test_the_loop_starts_over_only_once_every_frame_is_drawn() -> None:
    app = PanelHost(FixedFrames())
    async with app.run_test(size=(80, 30)) as pilot:
        panel = app.query_one(AgentPanel)
        panel.show(fixed_recording(length=20, fps=200.0), evaluations=1)  # 11 frames, at 20 fps
        await wait_for(lambda: panel.loop is not None and panel.loop.complete, pilot)
        seen: set[int] = set()
        await wait_for(lambda: seen.add(panel.loop.index) or len(seen) == len(panel.loop.frames), pilot, timeout=10)
        await wait_for(lambda: panel.loop.index == 0, pilot, timeout=10)  # and round again


async def test_nothing_is_drawn_twice_when_the_picture_does_not_change() -> None:
    renderer = FixedFrames(still=True)
    app = PanelHost(renderer)
    async with app.run_test(size=(80, 30)) as pilot:
        panel = app.query_one(AgentPanel)
        panel.show(fixed_recording(fps=20.0), evaluations=1)
        await wait_for(lambda: panel.loop is not None and panel.loop.index > 10, pilot)
        assert app.query_one(FrameView).draws == 1  # ten frames played, one picture: one draw


async def test_a_hidden_panel_asks_for_no_frames_until_it_is_shown() -> None:
    renderer = FixedFrames()
    app = PanelHost(renderer)
    async with app.run_test(size=(80, 30)) as pilot:
        panel = app.query_one(AgentPanel)
        panel.display = False
        panel.show(fixed_recording(), evaluations=1)
        await pilot.pause(0.2)
        assert renderer.calls == 0 and panel.loop is None
        panel.display = True
        await wait_for(lambda: panel.loop is not None, pilot)
        ticks = panel.loop.index
        panel.display = False
        await pilot.pause(0.3)
        assert panel.loop.index - ticks <= 1  # the timer pauses while hidden


async def test_a_replay_that_fails_says_why_in_the_panel() -> None:
    class Failing(FixedFrames):
        def render(self, *args: object, **kwargs: object) -> ReplayChunk:
            from ddpg_tui.media.render import RecordingError

            raise RecordingError("HalfCheetah-v5 cannot render here (MuJoCo with MUJOCO_GL=glfw: AttributeError)")

    app = PanelHost(Failing())
    async with app.run_test(size=(80, 30)) as pilot:
        panel = app.query_one(AgentPanel)
        panel.show(fixed_recording(), evaluations=1)
        message = app.query_one("#agent-message", Static)
        await wait_for(lambda: "cannot render here" in str(message.render()), pilot)


@pytest.mark.parametrize(("evaluations", "active", "expected"), [
    (0, True, "No evaluation yet"), (3, True, "Recording from now on"),
    (3, False, "ddpg-tui watch runs/demo"),
])
async def test_without_a_recording_the_panel_says_why(evaluations: int, active: bool, expected: str) -> None:
    app = PanelHost(FixedFrames())
    async with app.run_test(size=(80, 30)) as pilot:
        app.query_one(AgentPanel).show(None, evaluations=evaluations, active=active, run_dir="runs/demo")
        await pilot.pause()
        assert expected in str(app.query_one("#agent-message", Static).render())


# Snapshots: a fixed picture, a frame rate so slow that nothing moves while the picture is taken.


async def _settle(pilot) -> None:
    panel = pilot.app.query_one(AgentPanel)
    panel.show(fixed_recording(fps=0.01), evaluations=6)
    await wait_for(lambda: panel.loop is not None and panel.loop.complete, pilot)
    await pilot.pause()


def test_agent_panel_at_120x40(snap_compare) -> None:
    assert snap_compare(PanelHost(FixedFrames()), terminal_size=(120, 40), run_before=_settle)


def test_agent_panel_at_80x24(snap_compare) -> None:
    assert snap_compare(PanelHost(FixedFrames()), terminal_size=(80, 24), run_before=_settle)


# In the dashboard: these run once the dashboard has the panel (the `w` key); until then they are skipped.


def dashboard_has_the_panel() -> bool:
    from ddpg_tui.ui.screens.dashboard import DashboardScreen

    return hasattr(DashboardScreen, "action_toggle_agent")


needs_dashboard = pytest.mark.skipif(not dashboard_has_the_panel(), reason="the dashboard has no Agent panel yet")


def fixed_dashboard_app(monkeypatch):
    import math

    from agents.events import EvalResult, StepStats, TrainerState
    from ddpg_tui.ui import session as session_module
    from ddpg_tui.ui.app import DDPGApp
    from ddpg_tui.ui.widgets import agent_panel

    monkeypatch.setattr(agent_panel, "ReplayRenderer", FixedFrames)  # a fixed picture, no helper process
    evals = tuple(EvalResult(s, -1300 + 1150 * (1 - math.exp(-s / 2500)), 40.0, (), best=True)
                  for s in range(2000, 12001, 2000))
    snapshot = session_module.Snapshot(
        version=1, env_id="Pendulum-v1", run_dir="runs/pendulum-demo", state=TrainerState.TRAINING,
        progress=StepStats(step=12000, total_steps=20000, episode=60, steps_per_second=161.0, buffer_size=12000,
                           buffer_capacity=200000, noise_sigma=0.1, elapsed=74.0, updates=11000),
        evals=evals, best_eval=evals[-1], recording=fixed_recording(fps=0.01),  # type: ignore[call-arg]
    )
    return DDPGApp(session=session_module.FixedSession(snapshot))


async def _open_the_panel(pilot) -> None:
    await pilot.press("w")
    panel = pilot.app.screen.query_one(AgentPanel)
    await wait_for(lambda: panel.loop is not None and panel.loop.complete, pilot)
    await pilot.pause()


@needs_dashboard
def test_dashboard_with_the_agent_panel_at_120x40(snap_compare, monkeypatch) -> None:
    assert snap_compare(fixed_dashboard_app(monkeypatch), terminal_size=(120, 40), run_before=_open_the_panel)


@needs_dashboard
def test_dashboard_with_the_agent_panel_at_80x24(snap_compare, monkeypatch) -> None:
    assert snap_compare(fixed_dashboard_app(monkeypatch), terminal_size=(80, 24), run_before=_open_the_panel)


@needs_dashboard
async def test_w_shows_the_agent_after_the_next_evaluation_and_records_only_while_open(tmp_path) -> None:
    from ddpg_tui.request import TrainingRequest
    from ddpg_tui.ui.app import DDPGApp

    config = DDPGConfig(total_steps=3000, learning_starts=100, batch_size=32, hidden_sizes=(16, 16), eval_every=300,
                        eval_episodes=1, threads=1)
    app = DDPGApp(TrainingRequest(config, tmp_path / "run"))
    async with app.run_test(size=(120, 40)) as pilot:
        screen = app.screen
        await wait_for(lambda: len(screen.last_snapshot.evals) >= 1, pilot, timeout=60)
        session = app.training_session
        assert session is not None and not session.record_evaluations.is_set()
        session.controls.pause()  # so that no evaluation comes between the key and the message
        await wait_for(lambda: screen.last_snapshot.state.value == "paused", pilot)
        assert screen.last_snapshot.recording is None  # nobody watched: nothing was recorded
        await pilot.press("w")
        panel = screen.query_one(AgentPanel)
        assert panel.display and not screen.query_one("#reward-plot").display
        assert session.record_evaluations.is_set()
        await pilot.pause()
        assert "Recording from now on" in str(panel.query_one("#agent-message", Static).render())
        session.controls.resume()
        view = panel.query_one(FrameView)
        await wait_for(lambda: panel.loop is not None and len(panel.loop.frames) > 3 and view.draws > 0, pilot,
                       timeout=90)
        assert any(r > 150 and g < 120 and b < 120 for r, g, b in coloured_cells(view))
        await pilot.press("w")
        assert not panel.display and screen.query_one("#reward-plot").display
        assert not session.record_evaluations.is_set()
        screen.session.controls.stop(save=False)
