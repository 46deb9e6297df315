"""Replaying an evaluation's episode frame by frame, in a helper process.

Why an evaluation records actions and not pictures: drawing a frame costs far more than the
step it shows (Pendulum-v1 about 10 ms a frame against 0.1 ms a step with the actor, measured
in benchmarks/render_cost.py), so rendering during an evaluation would make it several times
slower. The evaluation keeps the first episode's actions and rewards instead (`agents.evaluation.EpisodeTracer`,
a list append a step), and `ReplayRenderer` redraws that episode from `reset(seed)` in a helper process of the
lowest priority, which shares neither the trainer's GIL nor its core's time while another is
free. Each replayed reward is compared with the recorded one, so a replay that drifts from
what the evaluation saw (an env that is not deterministic) stops there and says so.

No torch here, and no Textual: the helper process imports only this package's needs.
"""

from __future__ import annotations

import contextlib
import math
import os
import pickle
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from agents.envs import EnvError
from agents.errors import first_line
from agents.events import EvalRecording
from ddpg_tui.media.render import (
    DEFAULT_ENV_FPS,
    PLAYBACK_FPS_CAP,
    RecordingError,
    _render_failure,
    fit,
    frame_stride,
    make_render_env,
    render_frame,
)

MAX_REPLAY_FRAMES = 600  # a longer episode is replayed with a larger stride (faster than real time)


# Replaying an episode frame by frame -----------------------------------------------------


@dataclass(frozen=True, slots=True)
class ReplayPlan:
    stride: int  # env steps between frames
    frames: int  # frame 0 is the reset state; frame j shows the state after step min(j * stride, length)
    fps: float  # playback rate that shows the episode in about real time

    def step_of(self, frame: int, length: int) -> int:
        return min(frame * self.stride, length)


def replay_plan(recording: EvalRecording, fps_cap: float = PLAYBACK_FPS_CAP,
                max_frames: int = MAX_REPLAY_FRAMES) -> ReplayPlan:
    env_fps = recording.render_fps or DEFAULT_ENV_FPS
    length = len(recording.rewards)
    stride = max(frame_stride(env_fps, fps_cap)[0], math.ceil(length / max(1, max_frames - 1)))
    return ReplayPlan(stride, math.ceil(length / stride) + 1, min(fps_cap, env_fps / stride))


@dataclass(frozen=True, slots=True)
class ReplayChunk:
    first: int  # index of this chunk's first frame in the plan
    frames: tuple[np.ndarray, ...]
    steps: tuple[int, ...]  # env step each frame shows
    rewards_so_far: tuple[float, ...]
    complete: bool  # no frames after these
    diverged_at: int | None = None  # the replay's reward differed from the evaluation's at this step


_RENDER_ENVS: dict[str, gym.Env] = {}  # per process: making an env (an OpenGL context) can take seconds


def render_replay(recording: EvalRecording, first: int, count: int, max_width: int, max_height: int,
                  plan: ReplayPlan | None = None) -> ReplayChunk:
    """Frames `first` to `first + count` of the plan, each fitted into max_width x max_height.

    Replays from reset(seed) every time, without drawing the steps before `first`: stepping
    costs little next to drawing, and no state is kept between chunks.
    """
    plan = plan or replay_plan(recording)
    env = _RENDER_ENVS.get(recording.env_id)
    if env is None:
        env = make_render_env(recording.env_id)
        _RENDER_ENVS[recording.env_id] = env
    length = len(recording.rewards)
    wanted = range(first, min(first + count, plan.frames))
    targets = {plan.step_of(j, length) for j in wanted}
    frames: list[np.ndarray] = []
    steps: list[int] = []
    so_far: list[float] = []

    def keep(step: int, total: float) -> None:
        frames.append(fit(render_frame(env), max_width, max_height))
        steps.append(step)
        so_far.append(total)

    try:
        env.reset(seed=recording.seed)
    except Exception as error:
        raise RecordingError(_render_failure(recording.env_id, error)) from None
    total = 0.0
    diverged: int | None = None
    if 0 in targets:
        keep(0, 0.0)
    last = max(targets, default=0)
    shape, dtype = env.action_space.shape, env.action_space.dtype
    for t in range(last):
        _, reward, terminated, truncated, _ = env.step(np.asarray(recording.actions[t], dtype=dtype).reshape(shape))
        total += float(reward)
        if not math.isclose(float(reward), recording.rewards[t], rel_tol=1e-6, abs_tol=1e-6):
            diverged = t + 1
            break
        if t + 1 in targets:
            keep(t + 1, total)
        if (terminated or truncated) and t + 1 < length:
            diverged = t + 1  # the replay ended before the evaluation's episode did
            break
    complete = diverged is not None or wanted.stop >= plan.frames
    return ReplayChunk(first, tuple(frames), tuple(steps), tuple(so_far), complete, diverged)


def serve_replays() -> None:
    """The helper process's loop: pickled requests on stdin, pickled answers on stdout.

    It runs at the lowest priority and silently: pygame, SDL, MuJoCo and EGL write to the
    terminal directly, and a Textual app owns that terminal, so fds 1 and 2 go to /dev/null
    and answers (errors included, as one line) use a copy of the original stdout.
    """
    with contextlib.suppress(OSError):
        os.nice(19)
    answers = os.fdopen(os.dup(1), "wb")
    requests = os.fdopen(os.dup(0), "rb")
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)
    while True:
        try:
            request = pickle.load(requests)
        except (EOFError, OSError, pickle.UnpicklingError):
            return
        if request is None:
            return
        try:
            answer: tuple[str, Any] = ("ok", render_replay(*request))
        except (RecordingError, EnvError) as error:
            answer = ("error", str(error))
        except Exception as error:  # still one line for the panel, never a traceback on the screen
            answer = ("error", f"replay failed: {type(error).__name__}: {first_line(error)}")
        pickle.dump(answer, answers, protocol=pickle.HIGHEST_PROTOCOL)
        answers.flush()


class ReplayRenderer:
    """Replays recordings in a helper process, started on first use.

    A process and not a thread: pygame and MuJoCo draw while holding the GIL (a render thread
    halved the trainer's steps/s in a trial), and a process can be given the lowest priority.
    A plain subprocess rather than multiprocessing's spawn, which would re-run the parent's
    main script (a benchmark, a user's own) in the helper. `render` blocks its caller (a
    thread worker) and runs one request at a time.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()  # one request at a time
        # Guards _process and _closed only, so close() never waits behind a request in flight.
        self._state_lock = threading.Lock()
        self._process: subprocess.Popen[bytes] | None = None
        self._closed = False

    def render(self, recording: EvalRecording, first: int, count: int, max_width: int, max_height: int,
               plan: ReplayPlan | None = None) -> ReplayChunk:
        with self._lock:
            with self._state_lock:
                # A worker that asks after its panel has gone must not start a helper nobody will stop.
                if self._closed:
                    raise RecordingError("the replay helper has been closed")
                running = self._process is not None and self._process.poll() is None
                process = self._process if running else self._start()
            assert process.stdin is not None and process.stdout is not None
            try:
                pickle.dump((recording, first, count, max_width, max_height, plan), process.stdin,
                            protocol=pickle.HIGHEST_PROTOCOL)
                process.stdin.flush()
                status, answer = pickle.load(process.stdout)
            except (EOFError, OSError, pickle.UnpicklingError):
                self._process = None
                raise RecordingError("the replay helper process ended unexpectedly") from None
        if status == "error":
            raise RecordingError(answer)
        return answer

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def _start(self) -> subprocess.Popen[bytes]:
        root = str(Path(__file__).resolve().parents[2])  # where `agents` and `ddpg_tui` are, installed or not
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))}
        self._process = subprocess.Popen(
            [sys.executable, "-c", "from ddpg_tui.media.replay import serve_replays; serve_replays()"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env)
        return self._process

    def close(self) -> None:
        """Stop the helper at once, even mid-request: nobody waits for its frames any more.
        Final: a later `render` raises RecordingError instead of starting another helper."""
        with self._state_lock:
            self._closed = True
            process, self._process = self._process, None
        if process is None:
            return
        process.kill()
        process.wait(timeout=5)
        for stream in (process.stdin, process.stdout):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()


