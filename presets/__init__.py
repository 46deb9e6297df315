"""Environment presets: one TOML file per environment, shipped inside the package.

A preset names its env, hyperparameters that learn on it, and the return at which the
task counts as solved, with where that figure comes from. A preset can also be a file of the
same format anywhere (`train --preset runs/sweeps/X/best.toml`, which a sweep writes): a file
is not ours, so its env id is read as a checkpoint's is (see `load_preset_file`).
"""

from __future__ import annotations

import dataclasses
import difflib
import importlib.util
import tomllib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from agents.config import ConfigError, DDPGConfig

DEFAULT_PRESET = "pendulum"


class PresetError(ValueError):
    """An unknown preset, or a preset file that does not validate."""


@dataclass(frozen=True, slots=True)
class Preset:
    name: str
    env_id: str
    description: str
    config: DDPGConfig
    solved_threshold: float | None
    solved_source: str
    extra: str | None  # the pip extra the env needs, e.g. "box2d"

    @property
    def missing_extra(self) -> str | None:
        """The extra this preset needs and that is not installed here, if any."""
        if self.extra is None:
            return None
        module = EXTRA_MODULES.get(self.extra, self.extra)
        return None if importlib.util.find_spec(module) is not None else self.extra

    @property
    def install_hint(self) -> str:
        return f"pip install 'ddpg-tui[{self.missing_extra}]'" if self.missing_extra else ""


# The module each extra brings, to tell without importing it (Box2D's import alone is slow and noisy).
EXTRA_MODULES = {"box2d": "Box2D", "mujoco": "mujoco"}


def list_presets() -> list[str]:
    files = resources.files(__package__).iterdir()
    return sorted(f.name.removesuffix(".toml") for f in files if f.name.endswith(".toml"))


def _suggest(name: str, names: list[str]) -> str:
    # A higher cutoff than difflib's 0.6, which offers 'hopper' for 'nope'; a prefix such as
    # 'lunar' is a likely typo too, though too short for a high ratio.
    typed = name.lower()
    close = difflib.get_close_matches(typed, names, n=1, cutoff=0.7)
    close = close or [known for known in names if len(typed) >= 3 and known.startswith(typed)][:1]
    return f" (did you mean {close[0]!r}?)" if close else ""


def load_preset(name: str) -> Preset:
    names = list_presets()
    if name not in names:
        raise PresetError(f"unknown preset {name!r}{_suggest(name, names)}; available: {', '.join(names)}")
    text = resources.files(__package__).joinpath(f"{name}.toml").read_text(encoding="utf-8")
    return parse_preset(name, text)


def is_preset_file(name: str) -> bool:
    """A preset given as a path (it ends in .toml or names a folder) rather than a shipped preset's name."""
    return name.endswith(".toml") or "/" in name or "\\" in name


def preset_file_label(path: Path) -> str:
    """The run folder's prefix: runs/sweeps/X/best.toml trains into runs/X-best-<time>."""
    return f"{path.parent.name}-{path.stem}" if path.stem == "best" and path.parent.name else path.stem


def load_preset_file(path: Path, env_id: str | None = None) -> Preset:
    """A preset from a TOML file. Its env id must import nothing, as a checkpoint's must (a `module:Env-v0` id
    would run that module): `env_id`, which the user typed (--env), replaces it and is trusted as typed."""
    from agents.envs import EnvError, check_env_id_from_file

    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise PresetError(f"preset file {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as error:
        raise PresetError(f"preset file {path} cannot be read ({getattr(error, 'strerror', None) or error})") from None
    preset = parse_preset(str(path), text)
    if env_id is None:
        try:
            check_env_id_from_file(preset.env_id, f"preset file {path}")
        except EnvError as error:
            raise PresetError(str(error)) from None
        return preset
    try:
        config = preset.config.replace(env_id=env_id)
    except ConfigError as error:
        raise PresetError(f"--env: {error}") from None
    return dataclasses.replace(preset, env_id=env_id, config=config)


def parse_preset(name: str, text: str) -> Preset:
    try:
        data: dict[str, Any] = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise PresetError(f"preset {name!r} is not valid TOML: {error}") from None
    known = {"env_id", "description", "extra", "hyperparameters", "solved"}
    unknown = sorted(set(data) - known)
    if unknown:
        raise PresetError(f"preset {name!r}: unknown key {unknown[0]!r}; allowed: {', '.join(sorted(known))}")
    env_id = data.get("env_id")
    if not isinstance(env_id, str) or not env_id:
        raise PresetError(f"preset {name!r}: env_id must be a Gymnasium id such as 'Pendulum-v1'")
    try:
        config = DDPGConfig.from_mapping({**data.get("hyperparameters", {}), "env_id": env_id})
    except ConfigError as error:
        raise PresetError(f"preset {name!r}: {error}") from None
    solved = data.get("solved", {})
    threshold = solved.get("threshold")
    return Preset(
        name=name,
        env_id=env_id,
        description=str(data.get("description", "")),
        config=config,
        solved_threshold=float(threshold) if threshold is not None else None,
        solved_source=str(solved.get("source", "")),
        extra=data.get("extra"),
    )
