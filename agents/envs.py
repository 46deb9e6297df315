"""Making Gymnasium environments and checking that DDPG can drive them.

An env id can run code: Gymnasium reads `pkg.module:Name-v0` as "import pkg.module, then
make Name-v0". That is how people train their own envs, so an id the user types may do
it; an id read from a file (a checkpoint, a run folder) may not, see `check_env_id_from_file`.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass

import gymnasium as gym
import numpy as np

from agents.errors import first_line

# Extras whose absence Gymnasium reports with a hint that does not fit our package.
_EXTRA_FOR_MODULE = {"box2d": "box2d", "mujoco": "mujoco"}


class EnvError(ValueError):
    """The environment cannot be made or is not a continuous-control task."""


@dataclass(frozen=True, slots=True)
class EnvSpec:
    env_id: str
    obs_dim: int
    act_dim: int
    action_low: np.ndarray
    action_high: np.ndarray


def _silence_mujoco() -> None:
    # MuJoCo's C code writes warnings to the terminal and MUJOCO_LOG.TXT to the cwd,
    # which would scribble over the dashboard.
    try:
        import mujoco
    except ImportError:
        return
    mujoco.set_mju_user_warning(lambda message: None)


def check_env_id_from_file(env_id: object, source: str) -> str:
    """Accept an env id read from `source` only if Gymnasium already knows it and making it
    imports nothing: no `module:` prefix, and registered before the file was read."""
    if not isinstance(env_id, str) or not env_id:
        raise EnvError(f"{source} names no env id; pass --env ID")
    module, colon, _ = env_id.partition(":")
    if colon:
        raise EnvError(f"{source} names env {env_id!r}, which would import module {module!r}; "
                       "pass --env ID yourself if you trust it")
    if env_id not in gym.registry:
        raise EnvError(f"{source} names env {env_id!r}, which is not registered with Gymnasium here; "
                       "pass --env ID to choose the env yourself")
    return env_id


def make_env(env_id: str, seed: int | None = None, render_mode: str | None = None) -> gym.Env:
    """`gym.make(env_id)`, with errors rewritten as one line that says what to do.

    `render_mode` is passed on only when given: training and evaluation envs are made
    without one, so that they never load a renderer (pygame, OpenGL).
    """
    if is_mujoco_env(env_id):
        _silence_mujoco()
    try:
        env = gym.make(env_id) if render_mode is None else gym.make(env_id, render_mode=render_mode)
    except gym.error.DependencyNotInstalled as error:
        extra = next((e for m, e in _EXTRA_FOR_MODULE.items() if m in str(error).lower()), None)
        if extra is None:
            raise EnvError(f"{env_id} needs a package that is not installed: {error}") from None
        raise EnvError(
            f"{env_id} needs the {extra} extra: pip install 'ddpg-tui[{extra}]'"
        ) from None
    except gym.error.NameNotFound:
        raise EnvError(f"unknown environment {env_id!r}{_suggest(env_id)}; "
                       "any Gymnasium id with Box action spaces works") from None
    except (gym.error.VersionNotFound, gym.error.DeprecatedEnv) as error:
        raise EnvError(f"unknown environment {env_id!r}: {first_line(error)}") from None
    except gym.error.Error as error:
        raise EnvError(f"cannot make environment {env_id!r}: {first_line(error)}") from None
    except ImportError as error:  # `pkg:Env` whose package is missing or fails to import
        module = env_id.partition(":")[0] if ":" in env_id else (error.name or "its module")
        reason = first_line(error).split(". ")[0]  # Gymnasium appends advice that does not fit on the line
        raise EnvError(f"cannot make environment {env_id!r}: importing {module!r} failed ({reason})") from None
    except Exception as error:  # the env's own module or constructor raised: still one line
        raise EnvError(f"cannot make environment {env_id!r}: {type(error).__name__}: {first_line(error)}") from None
    try:
        check_continuous(env, env_id)
    except EnvError:
        env.close()
        raise
    if seed is not None:
        env.action_space.seed(seed)
    return env


def is_mujoco_env(env_id: str) -> bool:
    return "mujoco" in env_id.lower() or env_id.split("-")[0] in _MUJOCO_ENVS


def env_spec(env: gym.Env, env_id: str) -> EnvSpec:
    check_continuous(env, env_id)
    obs_space, act_space = env.observation_space, env.action_space
    return EnvSpec(
        env_id=env_id,
        obs_dim=int(np.prod(obs_space.shape)),
        act_dim=int(np.prod(act_space.shape)),
        action_low=act_space.low.astype(np.float32).reshape(-1),
        action_high=act_space.high.astype(np.float32).reshape(-1),
    )


def check_continuous(env: gym.Env, env_id: str) -> None:
    obs_space, act_space = env.observation_space, env.action_space
    if not isinstance(act_space, gym.spaces.Box):
        raise EnvError(
            f"{env_id} has a {type(act_space).__name__} action space; DDPG needs continuous "
            "(Box) actions, e.g. Pendulum-v1, MountainCarContinuous-v0, LunarLanderContinuous-v3"
        )
    if not isinstance(obs_space, gym.spaces.Box):
        raise EnvError(
            f"{env_id} has a {type(obs_space).__name__} observation space; "
            "ddpg-tui needs a Box observation space"
        )
    if not (np.all(np.isfinite(act_space.low)) and np.all(np.isfinite(act_space.high))):
        raise EnvError(f"{env_id} has unbounded actions; a tanh actor needs finite action bounds")


def _suggest(env_id: str) -> str:
    known = [spec_id for spec_id in gym.registry if "/" not in spec_id]
    close = difflib.get_close_matches(env_id, known, n=1)
    return f" (did you mean {close[0]!r}?)" if close and close[0] not in str(env_id) else ""


_MUJOCO_ENVS = {
    "Ant", "HalfCheetah", "Hopper", "Humanoid", "HumanoidStandup", "InvertedDoublePendulum",
    "InvertedPendulum", "Pusher", "Reacher", "Swimmer", "Walker2d",
}
