"""The dashboard's Agent panel: the latest evaluation's first episode, replayed in a loop.

The trainer records that episode (its actions and rewards, an EvalRecording) only while
the panel is open; a helper process redraws it frame by frame (ddpg_tui/media/replay.py), in
chunks, and the panel plays the frames on a timer at the env's own pace, at most 20 fps.
A newer evaluation replaces the loop as soon as its first frames are drawn. The caption
says the step, the reward so far and the evaluation's step; before the first evaluation,
or while none was recorded, a message says why nothing plays.

The dashboard's whole part is: mount it, call `show(...)` with the session snapshot's
latest recording on every refresh, and set the trainer's recording flag while it is open.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from textual import work
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.message import Message
from textual.timer import Timer
from textual.widgets import Static
from textual.worker import get_current_worker

from agents.events import EvalRecording
from ddpg_tui.media.render import RecordingError
from ddpg_tui.media.replay import ReplayChunk, ReplayPlan, ReplayRenderer, replay_plan
from ddpg_tui.ui.widgets.frames import FrameView, PixelFrameView, frame_view

CHUNK_FRAMES = 30  # frames per request to the helper: the first shows within about 0.3 s on Pendulum
HALF_BLOCK_BOX = 160  # replay frames are fitted into this many pixels (a 160-column panel still gets sharp ones)
PIXEL_BOX = 480  # the same for Kitty and Sixel, whose cells hold about 10x20 pixels each


@dataclass
class Loop:
    """One evaluation's frames, growing as chunks arrive, and where playback is."""

    recording: EvalRecording
    plan: ReplayPlan
    frames: list[np.ndarray] = field(default_factory=list)
    steps: list[int] = field(default_factory=list)
    rewards_so_far: list[float] = field(default_factory=list)
    complete: bool = False
    diverged_at: int | None = None
    index: int = 0

    def add(self, chunk: ReplayChunk) -> None:
        self.frames.extend(chunk.frames)
        self.steps.extend(chunk.steps)
        self.rewards_so_far.extend(chunk.rewards_so_far)
        self.complete = chunk.complete
        self.diverged_at = chunk.diverged_at

    def advance(self) -> None:
        """The next frame; back to the first at the end, but only once every frame is drawn."""
        if self.index + 1 < len(self.frames):
            self.index += 1
        elif self.complete:
            self.index = 0


class AgentPanel(Vertical):
    """`show(recording, evaluations=, active=, run_dir=)` from the dashboard's refresh; the rest is its own."""

    DEFAULT_CSS = """
    AgentPanel {
        display: none;
        height: 1fr;
        border: round $primary;
        border-title-color: $accent;
        border-title-style: bold;
        padding: 0 1;
    }
    AgentPanel > #agent-frame {
        height: 1fr;
    }
    AgentPanel > #agent-message {
        height: 1fr;
        content-align: center middle;
        text-align: center;
        color: $text-muted;
    }
    AgentPanel > #agent-caption {
        height: 2;
        color: $text;
    }
    """

    class ChunkReady(Message):
        def __init__(self, recording: EvalRecording, plan: ReplayPlan, chunk: ReplayChunk) -> None:
            super().__init__()
            self.recording, self.plan, self.chunk = recording, plan, chunk

    class ReplayFailed(Message):
        def __init__(self, recording: EvalRecording, reason: str) -> None:
            super().__init__()
            self.recording, self.reason = recording, reason

    def __init__(self, *, renderer: ReplayRenderer | None = None, name: str | None = None, id: str | None = None,
                 classes: str | None = None) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self.border_title = "Agent"
        self.loop: Loop | None = None
        self.recording: EvalRecording | None = None  # the newest one given to show()
        self._rendering: EvalRecording | None = None  # the one the helper is drawing
        self._renderer = renderer
        self._owns_renderer = renderer is None
        self._timer: Timer | None = None
        self._timer_fps = 0.0
        self._failure = ""
        self._waiting = ("No evaluation yet.", "")
        self._caption = ""
        self._message = ""
        self._mounted = False  # show() may come before the children exist (a dashboard mounting it late)

    def compose(self) -> ComposeResult:
        yield frame_view(id="agent-frame")
        yield Static(id="agent-message")
        yield Static(id="agent-caption")

    def on_mount(self) -> None:
        self._mounted = True
        self._start_rendering()
        self._update()

    # The dashboard's side --------------------------------------------------------------

    def show(self, recording: EvalRecording | None, *, evaluations: int = 0, active: bool = True,
             run_dir: str = "") -> None:
        """Take the session's latest recording (cheap when nothing changed: call it every refresh)."""
        self._waiting = self._waiting_message(evaluations, active, run_dir)
        if recording is not None and recording is not self.recording:
            self.recording = recording
            self._failure = ""
            self._start_rendering()
        self._update()

    @staticmethod
    def _waiting_message(evaluations: int, active: bool, run_dir: str) -> tuple[str, str]:
        if not active:
            command = f"ddpg-tui watch {run_dir}" if run_dir else "ddpg-tui watch RUN_FOLDER"
            return ("Training has ended with no evaluation recorded.", f"Watch the trained agent: {command}")
        if evaluations == 0:
            return ("No evaluation yet.", "The agent is shown here after the first one (e evaluates now).")
        return ("Recording from now on.", "The agent is shown here after the next evaluation (e evaluates now).")

    # Rendering, in the helper process ----------------------------------------------------

    def _start_rendering(self) -> None:
        if not (self._mounted and self.display) or self.recording is None or self.recording is self._rendering:
            return  # hidden: nothing is drawn until the panel is shown (on_show starts it)
        if self.loop is not None and self.loop.recording is self.recording:
            return
        self._rendering = self.recording
        width, height = self._frame_box()
        self._replay(self.recording, width, height)

    def _frame_box(self) -> tuple[int, int]:
        view = self.query_one("#agent-frame")
        columns, rows = max(1, view.size.width), max(1, view.size.height)
        if isinstance(view, PixelFrameView):
            return (PIXEL_BOX, PIXEL_BOX)
        return (max(HALF_BLOCK_BOX, columns), max(HALF_BLOCK_BOX, 2 * rows))

    @work(thread=True, exclusive=True, group="agent-replay", exit_on_error=False)
    def _replay(self, recording: EvalRecording, width: int, height: int) -> None:
        # A thread worker only waits on the helper's pipe (no GIL held while it waits) and
        # posts what it gets; a newer recording cancels it between chunks.
        worker = get_current_worker()
        plan = replay_plan(recording)
        first = 0
        while not worker.is_cancelled:
            try:
                chunk = self.renderer.render(recording, first, CHUNK_FRAMES, width, height, plan)
            except RecordingError as error:
                self.post_message(self.ReplayFailed(recording, str(error)))
                return
            if worker.is_cancelled:
                return
            self.post_message(self.ChunkReady(recording, plan, chunk))
            if chunk.complete or not chunk.frames:
                return
            first += len(chunk.frames)

    @property
    def renderer(self) -> ReplayRenderer:
        if self._renderer is None:
            self._renderer = ReplayRenderer()
        return self._renderer

    def on_agent_panel_chunk_ready(self, message: ChunkReady) -> None:
        if message.recording is not self.recording:
            return  # an older evaluation's frames, drawn before the newer one arrived
        if self.loop is None or self.loop.recording is not message.recording:
            self.loop = Loop(message.recording, message.plan)  # the new evaluation replaces the loop
        self.loop.add(message.chunk)
        if self.loop.complete:
            self._rendering = None
        self._play(message.plan.fps)
        self._update()

    def on_agent_panel_replay_failed(self, message: ReplayFailed) -> None:
        if message.recording is self.recording:
            self._failure = message.reason
            self._rendering = None
            self._update()

    # Playing -----------------------------------------------------------------------------

    def _play(self, fps: float) -> None:
        if self._timer is not None and abs(fps - self._timer_fps) < 1e-9:
            self._timer.resume()
            return
        if self._timer is not None:
            self._timer.stop()
        self._timer_fps = fps
        self._timer = self.set_interval(1 / fps, self._tick, name="agent-playback")

    def _tick(self) -> None:
        if self.loop is None or not self.display:
            return
        self.loop.advance()
        self._update()

    def on_show(self) -> None:
        self._start_rendering()
        if self._timer is not None:
            self._timer.resume()

    def on_hide(self) -> None:
        if self._timer is not None:
            self._timer.pause()  # nothing plays unseen

    def on_unmount(self) -> None:
        if self._owns_renderer and self._renderer is not None:
            self._renderer.close()

    # Drawing -----------------------------------------------------------------------------

    def _update(self) -> None:
        if not self._mounted:
            return
        view = self.query_one("#agent-frame")
        message = self.query_one("#agent-message", Static)
        loop = self.loop
        if loop is None or not loop.frames:
            view.display = False
            message.display = True
            if self._failure:
                text = f"Cannot show the agent.\n{self._failure}"
            elif self._rendering is not None:
                text = f"Drawing the evaluation at step {self._rendering.step:,}…"
            else:
                text = "\n".join(self._waiting)
            if text != self._message:
                self._message = text
                message.update(text)
            self._set_caption("")
            return
        view.display = True
        message.display = False
        assert isinstance(view, FrameView | PixelFrameView)
        view.show_frame(loop.frames[loop.index])
        self._set_caption(self._caption_text(loop))

    def _caption_text(self, loop: Loop) -> str:
        recording = loop.recording
        length = len(recording.rewards)
        first = f"evaluation at step {recording.step:,} · return {recording.episode_return:,.1f}"
        if self._failure:
            first = self._failure
        elif self.recording is not recording and self._rendering is not None:
            first += " · next one drawing…"
        step, so_far = loop.steps[loop.index], loop.rewards_so_far[loop.index]
        if loop.diverged_at is not None:
            second = (f"step {step:,}/{length:,}: the replay left the evaluation's path at step "
                      f"{loop.diverged_at:,} (the env is not deterministic)")
        else:
            second = f"step {step:,}/{length:,} · reward so far {so_far:,.1f}"
        return f"{first}\n{second}"

    def _set_caption(self, text: str) -> None:
        if text != self._caption:  # an unchanged caption is not redrawn
            self._caption = text
            self.query_one("#agent-caption", Static).update(text)
