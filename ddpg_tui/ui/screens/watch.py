"""`ddpg-tui watch`: a trained policy playing live, noise off, in a small app of its own.

A thread worker steps the env, draws every frame it shows (drawing may take 10 ms on
Pendulum, 0.1 s on MuJoCo in software) and posts it; the UI only puts frames on screen,
so keys answer at once whatever the env costs. Keys reach the worker through a queue and
take effect between two steps. Episode i starts from reset(seed=S+i), as in `ddpg-tui
eval`, so what you watch is what eval scores.
"""

from __future__ import annotations

import queue
import time
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
from textual import work
from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.css.query import NoMatches
from textual.message import Message
from textual.widgets import Footer, Header, Static
from textual.worker import get_current_worker

from agents.evaluation import CheckpointPolicy
from ddpg_tui.media.render import frame_stride, render_frame
from ddpg_tui.ui.widgets.frames import FrameView, PixelFrameView, frame_view

END_HOLD = 1.0  # seconds an episode's last frame stays before the next episode starts


@dataclass(frozen=True, slots=True)
class PlayState:
    """What the screen shows besides the frame; made by the worker, read by the UI."""

    episode: int  # 0-based
    episodes: int
    step: int
    episode_return: float
    returns: tuple[float, ...]  # finished episodes
    paused: bool
    finished: bool  # all episodes played


class Player:
    """The env and the policy, stepped by one thread only (the worker)."""

    def __init__(self, loaded: CheckpointPolicy, episodes: int, seed: int, max_fps: float) -> None:
        self.loaded = loaded
        self.env = loaded.env
        self.episodes = episodes
        self.seed = seed
        self.stride, self.fps = frame_stride(float(self.env.metadata.get("render_fps") or 0.0), max_fps)
        space = self.env.action_space
        self._low, self._high, self._dtype = space.low, space.high, space.dtype
        self.episode = 0
        self.step_count = 0
        self.episode_return = 0.0
        self.returns: list[float] = []
        self.episode_over = False
        self._obs: np.ndarray | None = None

    def start_episode(self, episode: int) -> None:
        self.episode = episode
        self._obs, _ = self.env.reset(seed=self.seed + episode)
        self.step_count = 0
        self.episode_return = 0.0
        self.episode_over = False

    def step(self) -> None:
        """One env step with the policy's action, clipped to the bounds as in evaluation."""
        if self.episode_over or self._obs is None:
            return
        action = np.clip(np.asarray(self.loaded.policy(self._obs), dtype=self._dtype).reshape(self._low.shape),
                         self._low, self._high)
        self._obs, reward, terminated, truncated, _ = self.env.step(action)
        self.step_count += 1
        self.episode_return += float(reward)
        if terminated or truncated:
            self.episode_over = True
            self.returns.append(self.episode_return)

    def frame(self) -> np.ndarray:
        return render_frame(self.env)

    def state(self, paused: bool, finished: bool) -> PlayState:
        return PlayState(self.episode, self.episodes, self.step_count, self.episode_return, tuple(self.returns),
                         paused, finished)


class WatchApp(App[int]):
    """Plays `player`'s episodes; `title_text` names the checkpoint in the header."""

    TITLE = "ddpg-tui watch"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("space", "toggle_pause", "Pause/Play"),
        Binding("p", "toggle_pause", "Pause", show=False),
        Binding("full_stop", "step", "Step one frame"),
        Binding("right", "step", "Step", show=False),
        Binding("n", "next_episode", "Next episode"),
        Binding("q", "quit", "Quit"),
    ]
    DEFAULT_CSS = """
    WatchApp #watch-frame {
        height: 1fr;
    }
    WatchApp #watch-status {
        height: 1;
        padding: 0 1;
        background: $boost;
    }
    """

    class Shown(Message):
        """A new frame and its counters. Only the newest matters: older ones still queued merge into it."""

        def __init__(self, frame: np.ndarray | None, state: PlayState) -> None:
            super().__init__()
            self.frame, self.state = frame, state

        def can_replace(self, message: Message) -> bool:
            # A frame supersedes any state still queued; a state alone must not drop a frame.
            return isinstance(message, WatchApp.Shown) and (self.frame is not None or message.frame is None)

    def __init__(self, player: Player, title_text: str = "") -> None:
        super().__init__()
        self.player = player
        self.sub_title = title_text
        self.commands: queue.SimpleQueue[str] = queue.SimpleQueue()
        self.state: PlayState | None = None
        self.frames_shown = 0

    def compose(self) -> ComposeResult:
        yield Header()
        yield frame_view(id="watch-frame")
        yield Static(id="watch-status")
        yield Footer()

    def on_mount(self) -> None:
        self.play()

    # The worker: steps, draws, posts -------------------------------------------------------

    @work(thread=True, exclusive=True, exit_on_error=False, name="player")
    def play(self) -> None:
        worker = get_current_worker()
        player = self.player
        player.start_episode(0)
        paused = finished = False
        hold_until = 0.0  # an episode's last frame stays a moment before the next begins
        next_frame = time.monotonic()
        self._post(frame=True, paused=paused, finished=finished)
        while not worker.is_cancelled:
            playing = not (paused or finished)
            wait = max(0.0, (hold_until or next_frame) - time.monotonic()) if playing else 0.1
            try:
                command = self.commands.get(timeout=wait)
            except queue.Empty:
                command = ""
            now = time.monotonic()
            if command == "quit":
                return
            if command == "toggle_pause" and not finished:
                paused, next_frame = not paused, now
                self._post(frame=False, paused=paused, finished=finished)
            elif command == "step" and not finished:
                paused, hold_until = True, 0.0
                if player.episode_over:
                    finished = self._next_episode(one_more=False)
                else:
                    player.step()
                self._post(frame=True, paused=paused, finished=finished)
            elif command == "next" or (playing and hold_until and now >= hold_until):
                hold_until, next_frame = 0.0, now + 1 / player.fps
                finished = self._next_episode(one_more=command == "next")
                self._post(frame=True, paused=paused, finished=finished)
            elif playing and not hold_until and now >= next_frame:
                for _ in range(player.stride):
                    player.step()
                    if player.episode_over:
                        break
                # The next frame is due one period after this one was; if drawing fell behind,
                # the lost time is dropped rather than caught up with a burst of frames.
                next_frame = max(next_frame + 1 / player.fps, now)
                self._post(frame=True, paused=paused, finished=finished)
                if player.episode_over:
                    hold_until = now + END_HOLD

    def _next_episode(self, one_more: bool) -> bool:
        """Start the next episode; returns True when every episode has been played.
        After the last one, `one_more` (the n key) plays another rather than stopping."""
        player = self.player
        if player.episode + 1 >= player.episodes:
            if not one_more:
                return True
            player.episodes += 1
        player.start_episode(player.episode + 1)
        return False

    def _post(self, frame: bool, paused: bool, finished: bool) -> None:
        player = self.player
        self.post_message(self.Shown(player.frame() if frame else None, player.state(paused, finished)))

    # The UI ---------------------------------------------------------------------------------

    def on_watch_app_shown(self, message: Shown) -> None:
        self.state = message.state
        try:
            view = self.query_one("#watch-frame")
            status = self.query_one("#watch-status", Static)
        except NoMatches:  # the player's last frame can arrive after q has taken the screen down
            return
        if message.frame is not None:
            assert isinstance(view, FrameView | PixelFrameView)
            if view.show_frame(message.frame):
                self.frames_shown += 1
        status.update(self.status_text(message.state))

    def status_text(self, state: PlayState) -> str:
        shown = min(state.episode + 1, state.episodes)
        parts = [f"episode {shown}/{state.episodes}", f"step {state.step:,}", f"return {state.episode_return:,.1f}"]
        if state.returns:
            parts.append(f"mean of {len(state.returns)} {float(np.mean(state.returns)):,.1f}")
        if state.finished:
            parts.append("done: n plays one more, q quits")
        elif state.paused:
            parts.append("paused: space plays, . steps")
        else:
            parts.append(f"{self.player.fps:.0f} fps")
        return " · ".join(parts)

    def action_toggle_pause(self) -> None:
        self.commands.put("toggle_pause")

    def action_step(self) -> None:
        self.commands.put("step")

    def action_next_episode(self) -> None:
        self.commands.put("next")

    async def action_quit(self) -> None:
        self.commands.put("quit")
        self.exit(0)
