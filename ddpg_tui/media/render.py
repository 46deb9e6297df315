"""Frames of an environment: an env that renders (without a display), its first frame, and
frames resized to fit a box (Pillow's area filter).

No torch here, and no Textual: the replay helper process imports this module.
"""

from __future__ import annotations

import math
import os
import warnings

import gymnasium as gym
import numpy as np

from agents.envs import is_mujoco_env, make_env
from agents.errors import first_line

PLAYBACK_FPS_CAP = 20.0  # a terminal redraws comfortably at this rate; more costs the UI thread for little
DEFAULT_ENV_FPS = 30.0  # for envs whose metadata gives no render_fps


class RecordingError(ValueError):
    """An env that cannot render, or a file that cannot be written; the message is one line."""


# Sizes -------------------------------------------------------------------------------


def fit_size(width: int, height: int, max_width: int, max_height: int) -> tuple[int, int]:
    """The largest (width, height) within the box that keeps width:height, at least 1x1."""
    if width <= 0 or height <= 0 or max_width <= 0 or max_height <= 0:
        return (0, 0)
    scale = min(max_width / width, max_height / height)
    return (max(1, min(max_width, round(width * scale))), max(1, min(max_height, round(height * scale))))


def resize(frame: np.ndarray, width: int, height: int) -> np.ndarray:
    """Resize an HxWx3 uint8 frame with Pillow's box filter: area averages when shrinking, so thin
    lines (a pendulum's rod, a lander's legs) fade instead of vanishing between sampled pixels."""
    from PIL import Image

    frame = np.asarray(frame)
    h, w = frame.shape[:2]
    if (w, h) == (width, height):
        return frame
    image = Image.fromarray(np.ascontiguousarray(frame[..., :3], dtype=np.uint8))
    return np.asarray(image.resize((width, height), Image.Resampling.BOX))


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


