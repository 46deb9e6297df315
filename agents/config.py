"""DDPG hyperparameters: one flat, typed set of names shared by presets, `--set`,
checkpoints and the app's form.

Every field has a `FieldSpec` that says its type, its allowed range or choices, and
whether the trainer can change it mid-run. Validation messages always name the field
and what is allowed, because they are shown to users verbatim.
"""

from __future__ import annotations

import dataclasses
import math
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any


class ConfigError(ValueError):
    """A hyperparameter is unknown, of the wrong type or out of range."""


@dataclass(frozen=True, slots=True)
class FieldSpec:
    kind: type  # int, float, str, bool or list (of ints)
    help: str
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[str, ...] = ()
    live: bool = False  # may change while training runs
    exclusive_minimum: bool = False

    def allowed(self) -> str:
        """A short phrase describing what is allowed, for error messages and the form."""
        if self.choices:
            return "one of " + ", ".join(repr(c) for c in self.choices)
        if self.kind is list:
            return "a list of 1 to 4 integers from 1 to 4096, e.g. [256, 256]"
        name = {int: "an integer", float: "a number", bool: "true or false", str: "text"}[self.kind]
        lo, hi = self.minimum, self.maximum
        low_op = ">" if self.exclusive_minimum else ">="
        if lo is not None and hi is not None:
            if self.exclusive_minimum:
                return f"{name} {low_op} {_fmt(lo)} and <= {_fmt(hi)}"
            return f"{name} from {_fmt(lo)} to {_fmt(hi)}"
        if lo is not None:
            return f"{name} {low_op} {_fmt(lo)}"
        return name


def _fmt(value: float) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


FIELDS: dict[str, FieldSpec] = {
    "total_steps": FieldSpec(int, "environment steps to train for", 1, 100_000_000, live=True),
    "learning_starts": FieldSpec(int, "uniform random steps before the first update", 0, 10_000_000),
    "batch_size": FieldSpec(int, "transitions per minibatch", 1, 65_536, live=True),
    "buffer_size": FieldSpec(int, "replay buffer capacity (transitions)", 1, 50_000_000),
    "gamma": FieldSpec(float, "discount factor", 0.0, 1.0, live=True),
    "tau": FieldSpec(float, "soft target update rate", 0.0, 1.0, live=True, exclusive_minimum=True),
    "actor_lr": FieldSpec(float, "actor Adam learning rate", 0.0, 1.0, live=True, exclusive_minimum=True),
    "critic_lr": FieldSpec(float, "critic Adam learning rate", 0.0, 1.0, live=True, exclusive_minimum=True),
    "lr_schedule": FieldSpec(str, "learning rates constant, or linear: decayed to 0 at total_steps",
                             choices=("constant", "linear"), live=True),
    "hidden_sizes": FieldSpec(list, "hidden layer widths of actor and critic"),
    "train_freq": FieldSpec(int, "env steps between update rounds", 1, 100_000, live=True),
    "gradient_steps": FieldSpec(int, "updates per update round", 1, 100_000, live=True),
    "twin_critics": FieldSpec(bool, "TD3: two critics; the target takes their minimum (false: DDPG)"),
    "policy_delay": FieldSpec(int, "TD3: critic updates per actor and target update (1: DDPG)", 1, 1000, live=True),
    "target_noise": FieldSpec(float, "TD3: noise smoothing the target policy, relative to half the action range "
                              "(0: DDPG)", 0.0, 10.0, live=True),
    "target_noise_clip": FieldSpec(float, "TD3: clip of that noise, relative to half the action range",
                                   0.0, 10.0, live=True),
    "noise": FieldSpec(str, "exploration noise process", choices=("gaussian", "ou"), live=True),
    "noise_sigma": FieldSpec(float, "noise scale, relative to half the action range", 0.0, 10.0, live=True),
    "noise_final_sigma": FieldSpec(float, "noise scale at the end of the decay", 0.0, 10.0, live=True),
    "noise_decay_steps": FieldSpec(int, "steps of linear sigma decay (0: constant)", 0, 100_000_000, live=True),
    "ou_theta": FieldSpec(float, "Ornstein-Uhlenbeck mean reversion rate", 0.0, 100.0, live=True),
    "eval_every": FieldSpec(int, "env steps between evaluations (0: none during training; "
                            "a final evaluation still runs)", 0, 100_000_000, live=True),
    "eval_episodes": FieldSpec(int, "episodes per evaluation", 1, 1000, live=True),
    "save_every": FieldSpec(int, "env steps between checkpoints (0: only at the end)", 0, 100_000_000, live=True),
    "seed": FieldSpec(int, "random seed", 0, 2**31 - 1),
    "device": FieldSpec(str, "torch device", choices=("auto", "cpu", "cuda")),
    "threads": FieldSpec(int, "torch threads (0: auto: headless, 1 or every core, whichever is faster as it trains;"
                         " in the app, all but one core)", 0, 256),
    "tensorboard": FieldSpec(bool, "write TensorBoard event files into the run folder (tensorboard --logdir runs)"),
}

LIVE_FIELDS: tuple[str, ...] = tuple(name for name, spec in FIELDS.items() if spec.live)


@dataclass(frozen=True, slots=True)
class DDPGConfig:
    """Hyperparameters of one run. Defaults learn Pendulum-v1."""

    total_steps: int = 20_000
    learning_starts: int = 1_000
    batch_size: int = 256
    buffer_size: int = 1_000_000
    gamma: float = 0.99
    tau: float = 0.005
    actor_lr: float = 1e-3
    critic_lr: float = 1e-3
    lr_schedule: str = "constant"
    hidden_sizes: tuple[int, ...] = (256, 256)
    train_freq: int = 1
    gradient_steps: int = 1
    twin_critics: bool = False
    policy_delay: int = 1
    target_noise: float = 0.0
    target_noise_clip: float = 0.5
    noise: str = "gaussian"
    noise_sigma: float = 0.1
    noise_final_sigma: float = 0.1
    noise_decay_steps: int = 0
    ou_theta: float = 0.15
    eval_every: int = 5_000
    eval_episodes: int = 10
    save_every: int = 0
    seed: int = 0
    device: str = "auto"
    threads: int = 0
    tensorboard: bool = True
    # Not a hyperparameter field of the form: set by the preset or --env.
    env_id: str = field(default="Pendulum-v1")

    def __post_init__(self) -> None:
        for name in FIELDS:
            object.__setattr__(self, name, validate_field(name, getattr(self, name)))
        if not isinstance(self.env_id, str) or not self.env_id:
            raise ConfigError("env_id: expected a Gymnasium environment id such as 'Pendulum-v1'")

    # Construction -------------------------------------------------------------------

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any], *, base: DDPGConfig | None = None) -> DDPGConfig:
        """A config from `values` on top of `base` (or the defaults); unknown keys are errors."""
        unknown = sorted(set(values) - set(FIELDS) - {"env_id"})
        if unknown:
            raise ConfigError(
                f"unknown hyperparameter {unknown[0]!r}; allowed: {', '.join(sorted(FIELDS))}"
            )
        return dataclasses.replace(base or cls(), **dict(values))

    def with_overrides(self, assignments: Iterable[str]) -> DDPGConfig:
        """Apply `key=value` strings, the values parsed as TOML (bare words as text)."""
        values: dict[str, Any] = {}
        for assignment in assignments:
            key, value = parse_assignment(assignment)
            values[key] = value
        return self.from_mapping(values, base=self)

    def replace(self, **changes: Any) -> DDPGConfig:
        return self.from_mapping(changes, base=self)

    # Export ---------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        values = dataclasses.asdict(self)
        values["hidden_sizes"] = list(self.hidden_sizes)
        return values

    def to_toml(self) -> str:
        lines = [f"env_id = {_toml_value(self.env_id)}", "", "[hyperparameters]"]
        lines += [f"{name} = {_toml_value(getattr(self, name))}" for name in FIELDS]
        return "\n".join(lines) + "\n"


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, float):
        return repr(value)
    return str(value)


def parse_assignment(assignment: str) -> tuple[str, Any]:
    """`"gamma=0.98"` -> ("gamma", 0.98); `"noise=ou"` -> ("noise", "ou")."""
    key, sep, raw = assignment.partition("=")
    key, raw = key.strip(), raw.strip()
    if not sep or not key:
        raise ConfigError(f"--set {assignment!r}: expected key=value, e.g. --set gamma=0.98")
    if key not in FIELDS:
        raise ConfigError(f"unknown hyperparameter {key!r}; allowed: {', '.join(sorted(FIELDS))}")
    return key, parse_value(key, raw)


def parse_value(key: str, raw: str) -> Any:
    """Parse text typed by a user (CLI or form) into a validated value for `key`."""
    if FIELDS[key].kind is bool and raw.lower() in ("true", "false"):
        return raw.lower() == "true"  # Python's True/False as well as TOML's true/false
    try:
        value = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        if FIELDS[key].kind is not str:
            raise ConfigError(f"{key}: {raw!r} is not valid; expected {FIELDS[key].allowed()}") from None
        value = raw  # a bare word such as `ou`
    return validate_field(key, value)


def integral(value: Any) -> Any:
    """`value` as an int if it is a whole float: TOML reads `1e4` as 10000.0, and users write that."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def parse_int(raw: str) -> int:
    """An integer typed by a user, read as `--set` reads one: `20000`, `2e4`, `2.5e3`, `20_000`.

    Raises ValueError for anything else, `1.5` included.
    """
    try:
        value = integral(tomllib.loads(f"v = {raw}")["v"])
    except tomllib.TOMLDecodeError:
        value = None
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{raw!r} is not an integer")
    return value


def validate_field(name: str, value: Any) -> Any:
    """Return `value` normalised for field `name`, or raise ConfigError naming the field."""
    spec = FIELDS.get(name)
    if spec is None:
        raise ConfigError(f"unknown hyperparameter {name!r}; allowed: {', '.join(sorted(FIELDS))}")

    def fail(reason: str = "") -> ConfigError:
        shown = list(value) if isinstance(value, tuple) else value
        detail = f" ({reason})" if reason else ""
        return ConfigError(f"{name}: {shown!r} is not allowed{detail}; expected {spec.allowed()}")

    if spec.kind is list:
        if not isinstance(value, (list, tuple)) or not 1 <= len(value) <= 4:
            raise fail()
        if not all(isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= 4096 for v in value):
            raise fail()
        return tuple(value)
    if spec.kind is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise fail()
        value = float(value)
        if not math.isfinite(value):
            raise fail("not finite")
    elif spec.kind is int:
        value = integral(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise fail()
    elif spec.kind is str:
        if not isinstance(value, str):
            raise fail()
        if spec.choices and value not in spec.choices:
            raise fail()
        return value
    elif spec.kind is bool:
        if not isinstance(value, bool):
            raise fail()
        return value

    if spec.minimum is not None and (value < spec.minimum or (spec.exclusive_minimum and value == spec.minimum)):
        raise fail()
    if spec.maximum is not None and value > spec.maximum:
        raise fail()
    return value
