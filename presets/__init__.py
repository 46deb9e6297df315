"""Environment presets: one TOML file per environment, shipped inside the package.

A preset names its env, hyperparameters that learn on it, and the return at which the
task counts as solved, with where that figure comes from.
"""

from __future__ import annotations

import difflib
import importlib.util
import tomllib
from dataclasses import dataclass
from importlib import resources
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
