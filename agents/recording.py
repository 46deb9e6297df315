"""Frames of an environment: making an env that renders, resizing frames, replaying an
evaluation's episode frame by frame, and writing GIF or MP4 files.

Why an evaluation records actions and not pictures: drawing a frame costs far more than the
step it shows (Pendulum-v1 about 10 ms a frame against 0.1 ms a step with the actor, measured
in benchmarks/render_cost.py), so rendering during an evaluation would make it several times
slower. The evaluation keeps the first episode's actions and rewards instead (a list append a
step), and `ReplayRenderer` redraws that episode from `reset(seed)` in a helper process of the
lowest priority, which shares neither the trainer's GIL nor its core's time while another is
free. Each replayed reward is compared with the recorded one, so a replay that drifts from
what the evaluation saw (an env that is not deterministic) stops there and says so.

No torch here, and no Textual: the helper process imports only this module's needs.
"""

from __future__ import annotations

import contextlib
import itertools
import math
import os
import pickle
import secrets
import subprocess
import sys
import threading
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from agents.envs import EnvError, is_mujoco_env, make_env
from agents.errors import first_line
from agents.events import EvalRecording

PLAYBACK_FPS_CAP = 20.0  # a terminal redraws comfortably at this rate; more costs the UI thread for little
DEFAULT_ENV_FPS = 30.0  # for envs whose metadata gives no render_fps
MAX_REPLAY_FRAMES = 600  # a longer episode is replayed with a larger stride (faster than real time)
RECORD_FORMATS = (".gif", ".mp4")


class RecordingError(ValueError):
    """An env that cannot render, or a file that cannot be written; the message is one line."""


# Sizes -------------------------------------------------------------------------------


def fit_size(width: int, height: int, max_width: int, max_height: int) -> tuple[int, int]:
    """The largest (width, height) within the box that keeps width:height, at least 1x1."""
    if width <= 0 or height <= 0 or max_width <= 0 or max_height <= 0:
        return (0, 0)
    scale = min(max_width / width, max_height / height)
    return (max(1, min(max_width, round(width * scale))), max(1, min(max_height, round(height * scale))))


def _axis_plan(n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray | None]:
    """Shrinking: the first index of each output's bin and the bins' sizes (an area average).
    Growing: the input index each output repeats (nearest neighbour), and no sizes."""
    if n_out <= n_in:
        edges = np.floor(np.linspace(0, n_in, n_out + 1)).astype(np.int64)
        return edges[:-1], np.diff(edges)
    return (np.arange(n_out) * n_in) // n_out, None


def resize(frame: np.ndarray, width: int, height: int) -> np.ndarray:
    """Resize an HxWx3 uint8 frame with numpy: area averages when shrinking, so thin lines
    (a pendulum's rod, a lander's legs) fade instead of vanishing between sampled pixels."""
    frame = np.asarray(frame)
    h, w = frame.shape[:2]
    if (w, h) == (width, height):
        return frame
    out: np.ndarray = frame
    for axis, n_in, n_out in ((0, h, height), (1, w, width)):
        if n_in == n_out:
            continue
        index, counts = _axis_plan(n_in, n_out)
        if counts is None:
            out = np.take(out, index, axis=axis)
        else:
            sums = np.add.reduceat(out, index, axis=axis, dtype=np.uint32)
            shape = [1, 1, 1]
            shape[axis] = n_out
            sizes = counts.reshape(shape).astype(np.uint32)
            out = (sums + sizes // 2) // sizes  # rounded, not floored: a white field stays 255
    return np.ascontiguousarray(out, dtype=np.uint8)


def fit(frame: np.ndarray, max_width: int, max_height: int) -> np.ndarray:
    """`frame` resized to the largest size within the box that keeps its aspect ratio."""
    h, w = frame.shape[:2]
    width, height = fit_size(w, h, max_width, max_height)
    return resize(frame, width, height)


def frame_stride(env_fps: float, max_fps: float) -> tuple[int, float]:
    """(env steps between two shown frames, frames a second) for playing in real time at no
    more than `max_fps`: Pendulum's 30 fps at 20 at most is every 2nd step at 15 fps."""
    env_fps = env_fps or DEFAULT_ENV_FPS
    stride = max(1, math.ceil(env_fps / max_fps - 1e-9))
    return stride, env_fps / stride


# Envs that render --------------------------------------------------------------------


def prepare_headless_rendering(env_id: str) -> None:
    """Choose renderers that need no display, unless the user chose otherwise.

    pygame (the classic-control and Box2D envs) draws off screen anyway: its dummy video
    driver only stops SDL's complaints about XDG_RUNTIME_DIR. MuJoCo defaults to GLFW, which
    needs a display; EGL renders without one (measured here: about 0.1-0.2 s a frame in
    software, 3 s for the first).
    """
    os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
    os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
    no_display = not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
    if is_mujoco_env(env_id) and no_display:
        os.environ.setdefault("MUJOCO_GL", "egl")


def make_render_env(env_id: str, seed: int | None = None) -> gym.Env:
    """An env that returns rgb_array frames; raises EnvError or RecordingError, one line each."""
    prepare_headless_rendering(env_id)
    if is_mujoco_env(env_id):
        try:  # MuJoCo picks its OpenGL backend (MUJOCO_GL) when imported, and a missing library fails there
            import mujoco  # noqa: F401
        except ImportError:
            pass  # not installed: make_env names the extra
        except Exception as error:
            raise RecordingError(_render_failure(env_id, error)) from None
    # Asked first, on an env made without a renderer: for a mode it lacks, gym.make only warns.
    probe = make_env(env_id)
    modes = list(probe.metadata.get("render_modes") or [])
    probe.close()
    if "rgb_array" not in modes:
        raise RecordingError(f"{env_id} cannot render frames: its render modes are "
                             f"{', '.join(modes) or 'none'}, and rgb_array is needed")
    return make_env(env_id, seed=seed, render_mode="rgb_array")


def first_frame(env: gym.Env, env_id: str, seed: int = 0) -> np.ndarray:
    """Reset and render once, turning a renderer's failure into one line that says what to do."""
    try:
        with warnings.catch_warnings():  # GLFW and friends warn before they fail: the one line below says it all
            warnings.simplefilter("ignore")
            env.reset(seed=seed)
            frame = env.render()
    except gym.error.DependencyNotInstalled as error:
        raise RecordingError(f"{env_id} cannot render: {first_line(error)}") from None
    except Exception as error:  # a renderer's own failure: OpenGL, a missing library, a bad env
        raise RecordingError(_render_failure(env_id, error)) from None
    if not isinstance(frame, np.ndarray) or frame.ndim != 3 or frame.shape[2] < 3:
        raise RecordingError(f"{env_id} cannot render frames: render() gave "
                             f"{type(frame).__name__}, not an RGB array")
    return np.ascontiguousarray(frame[..., :3], dtype=np.uint8)


def _render_failure(env_id: str, error: BaseException) -> str:
    if is_mujoco_env(env_id):
        backend = os.environ.get("MUJOCO_GL", "glfw")
        return (f"{env_id} cannot render here (MuJoCo with MUJOCO_GL={backend}: {type(error).__name__}); "
                "without a display set MUJOCO_GL=egl (libEGL, e.g. apt install libegl1) "
                "or MUJOCO_GL=osmesa (apt install libosmesa6)")
    return f"{env_id} cannot render: {type(error).__name__}: {first_line(error)}"


def render_frame(env: gym.Env) -> np.ndarray:
    frame = env.render()
    return np.ascontiguousarray(np.asarray(frame)[..., :3], dtype=np.uint8)


# Recording an evaluation's first episode -------------------------------------------------


@dataclass
class EpisodeTracer:
    """A step sink for `evaluate`: keeps the first episode's actions (as given to env.step)
    and rewards, which is all a replay needs besides the env id and the seed."""

    actions: list[tuple[float, ...]] = field(default_factory=list)
    rewards: list[float] = field(default_factory=list)

    def __call__(self, episode: int, action: np.ndarray, reward: float) -> None:
        if episode == 0:
            self.actions.append(tuple(float(a) for a in np.ravel(action)))
            self.rewards.append(float(reward))

    def recording(self, step: int, env_id: str, seed: int, render_fps: float) -> EvalRecording:
        return EvalRecording(step, env_id, seed, tuple(self.actions), tuple(self.rewards), float(render_fps or 0.0))


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
        root = str(Path(__file__).resolve().parents[1])  # where `agents` is, installed or not
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))}
        self._process = subprocess.Popen(
            [sys.executable, "-c", "from agents.recording import serve_replays; serve_replays()"],
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


# Writing animations ----------------------------------------------------------------------


def check_record_path(path: Path) -> str:
    """The format for `path` (".gif" or ".mp4"), or RecordingError naming what is wrong.
    Checked before anything is evaluated, so a typo costs nothing."""
    suffix = path.suffix.lower()
    if suffix not in RECORD_FORMATS:
        shown = f"'{path.suffix}'" if path.suffix else "none"
        raise RecordingError(f"--record {path}: unknown format {shown}; expected a .gif or .mp4 file")
    if suffix == ".mp4" and not _has_mp4_encoder():
        raise RecordingError(f"--record {path} needs an MP4 encoder: pip install 'ddpg-tui[video]' "
                             "(or write a .gif)")
    if path.is_dir():
        raise RecordingError(f"--record {path} is a folder; give a file name ending in {suffix}")
    return suffix


def _has_mp4_encoder() -> bool:
    import importlib.util

    return importlib.util.find_spec("imageio_ffmpeg") is not None


def gif_durations(frames: int, fps: float) -> list[int]:
    """Milliseconds per frame. GIF counts in hundredths of a second, so 30 fps cannot be one
    delay; rounding the running total instead of each frame keeps the average exact."""
    ticks = [round(i * 100 / fps) for i in range(frames + 1)]
    return [10 * (b - a) for a, b in itertools.pairwise(ticks)]


class AnimationWriter:
    """Frames in, a .gif or .mp4 out. The file is written under a temporary name beside the
    target and renamed at the end, so a failure never leaves half an animation behind; making
    that temporary file is also the check that the folder can be written, done before any work."""

    def __init__(self, path: Path, fps: float) -> None:
        self.path = Path(path)
        self.format = check_record_path(self.path)
        self.fps = fps
        self.frames_added = 0
        self.size: tuple[int, int] | None = None  # (width, height)
        self._temp = self.path.parent / f".{self.path.name}.{secrets.token_hex(4)}{self.format}"
        try:  # mode 0o666 less the umask, as a plain open() would give the finished file
            os.close(os.open(self._temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
        except OSError as error:
            raise RecordingError(f"--record: cannot write {self.path} ({error.strerror or error})") from None
        self._gif_frames: list[Any] = []  # palette images: a third of RGB's memory
        self._gif_repeats: list[int] = []  # identical frames in a row, merged into one longer frame
        self._last: np.ndarray | None = None
        self._mp4: Any = None

    def add(self, frame: np.ndarray) -> None:
        frame = np.ascontiguousarray(frame[..., :3], dtype=np.uint8)
        if self.size is None:
            self.size = (frame.shape[1], frame.shape[0])
        elif (frame.shape[1], frame.shape[0]) != self.size:
            frame = resize(frame, *self.size)
        self.frames_added += 1
        if self.format == ".gif":
            self._add_gif(frame)
        else:
            self._add_mp4(frame)

    def _add_gif(self, frame: np.ndarray) -> None:
        from PIL import Image

        if self._last is not None and np.array_equal(frame, self._last):
            self._gif_repeats[-1] += 1  # GIF writers merge these anyway; count them ourselves
            return
        self._last = frame
        self._gif_frames.append(Image.fromarray(frame).quantize(colors=256))
        self._gif_repeats.append(1)

    def _add_mp4(self, frame: np.ndarray) -> None:
        if self._mp4 is None:
            import imageio_ffmpeg

            assert self.size is not None
            self._mp4 = imageio_ffmpeg.write_frames(str(self._temp), self.size, fps=self.fps, codec="libx264",
                                                    pix_fmt_out="yuv420p", macro_block_size=2, quality=7,
                                                    ffmpeg_log_level="error")
            self._mp4.send(None)
        self._mp4.send(frame.tobytes())

    def close(self) -> int:
        """Write the file; returns the frames it holds (identical neighbours in a GIF count once)."""
        if self.frames_added == 0:
            self.abort()
            raise RecordingError(f"--record {self.path}: no frames to write")
        try:
            if self.format == ".gif":
                ticks = gif_durations(self.frames_added, self.fps)
                durations: list[int] = []
                position = 0
                for repeats in self._gif_repeats:
                    durations.append(sum(ticks[position:position + repeats]))
                    position += repeats
                first, *rest = self._gif_frames
                first.save(self._temp, format="GIF", save_all=True, append_images=rest, duration=durations,
                           loop=0, disposal=1)
                frames = len(self._gif_frames)
            else:
                self._mp4.close()
                frames = self.frames_added
            os.replace(self._temp, self.path)
        except OSError as error:
            self.abort()
            raise RecordingError(f"--record: cannot write {self.path} ({error.strerror or error})") from None
        return frames

    def abort(self) -> None:
        if self._mp4 is not None:
            with contextlib.suppress(Exception):  # ffmpeg may already be gone; the file goes below either way
                self._mp4.close()
        self._temp.unlink(missing_ok=True)


def frames_in_file(path: Path) -> int:
    """Frames a GIF holds, read back: what a viewer will show."""
    from PIL import Image

    with Image.open(path) as image:
        return int(getattr(image, "n_frames", 1))
