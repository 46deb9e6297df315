"""What a sweep searches: `--grid`, `--sample` and `--seeds`, parsed, checked and turned into Tune's space.

A *variant* (a config) is one set of hyperparameter overrides on top of the sweep's base config,
and it is the unit of the sweep: one Tune trial per config, whose seeds train in turn in that
trial (see `trial.py`). Each seed is one ordinary run folder, `<config>/seed<k>/`. Parsing
and checking import nothing heavy (the CLI answers bad input before Ray or torch load);
`param_space` and `draw_samples` import Ray Tune, whose search-space objects do the crossing
(`tune.grid_search`) and the drawing (`tune.loguniform(...).sample`).

Random samples are drawn once, on the driver, and given to Tune as a grid over the drawn
configs; the seeds are not in Tune's space at all: every seed of a config runs inside the
config's trial, so a scheduler's decision is made on the config, over all its seeds.
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from agents.config import FIELDS, ConfigError, parse_value, validate_field

SAMPLE_KEY = "sample"  # the param-space key holding one drawn variant (a dict)
# Not searchable: they say how a trial runs or is recorded, not what it learns.
NOT_SEARCHABLE = {"seed": "use --seeds", "threads": "threads follow each trial's CPUs", "device": "",
                  "total_steps": "use --steps", "eval_every": "", "eval_episodes": "", "save_every": ""}
DISTRIBUTIONS = {"uniform": float, "loguniform": float, "randint": int, "lograndint": int, "choice": object}


class SweepSpaceError(ConfigError):
    """A malformed --grid, --sample or --seeds: shown as one line, exit code 2."""


@dataclass(frozen=True, slots=True)
class SampleSpec:
    """`critic_lr=loguniform(1e-4,1e-2)`: a key and the distribution to draw it from."""

    key: str
    distribution: str
    arguments: tuple[Any, ...]

    def text(self) -> str:
        return f"{self.key}={self.distribution}({','.join(format_value(a) for a in self.arguments)})"


@dataclass(frozen=True, slots=True)
class Variant:
    """One config of a sweep: the overrides it makes, and its name in folders and tables."""

    overrides: tuple[tuple[str, Any], ...]
    sample: int | None = None  # which random draw, for sampled variants

    @property
    def label(self) -> str:
        parts = [f"{key}={format_value(value)}" for key, value in self.overrides]
        prefix = [f"s{self.sample}"] if self.sample is not None else []
        return ",".join(prefix + parts) or "base"

    def as_dict(self) -> dict[str, Any]:
        return dict(self.overrides)


def format_value(value: Any) -> str:
    """Short and exact: 0.0003 not 3e-4's repr noise; [64, 64] as 64x64 so it fits a folder name."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        short = f"{value:.6g}"
        return short if float(short) == value else repr(value)
    if isinstance(value, (list, tuple)):
        return "x".join(str(v) for v in value)
    return str(value)


def config_folder(variant_label: str) -> str:
    """The config's folder (and its Tune trial's name): readable, and safe on every filesystem Ray might sync to."""
    return re.sub(r"[^A-Za-z0-9._=,+-]", "-", variant_label)


def config_of_run(run_name: str) -> str:
    """`<config>/seed<k>` -> `<config>`: the Tune trial a seed run belongs to."""
    return run_name.rpartition("/")[0]


def trial_name(variant_label: str, seed: int) -> str:
    """One seed's run folder, relative to the sweep folder: `<config>/seed<k>`."""
    return f"{config_folder(variant_label)}/seed{seed}"


# Parsing -------------------------------------------------------------------------------


def split_top_level(text: str) -> list[str]:
    """Split on commas outside brackets, so `hidden_sizes=[64,64],[256,256]` gives two values."""
    parts, depth, current = [], 0, []
    for char in text:
        if char in "[(":
            depth += 1
        elif char in "])":
            depth -= 1
            if depth < 0:
                raise SweepSpaceError(f"unbalanced brackets in {text!r}")
        if char == "," and depth == 0:
            parts.append("".join(current).strip())
            current = []
        else:
            current.append(char)
    if depth != 0:
        raise SweepSpaceError(f"unbalanced brackets in {text!r}")
    parts.append("".join(current).strip())
    return parts


def _searchable_key(option: str, key: str, example: str) -> str:
    if not key:
        raise SweepSpaceError(f"{option}: expected key=values, e.g. {option} {example}")
    if key not in FIELDS:
        raise ConfigError(f"unknown hyperparameter {key!r}; allowed: {', '.join(sorted(FIELDS))}")
    if key in NOT_SEARCHABLE:
        why = NOT_SEARCHABLE[key]
        raise SweepSpaceError(f"{option}: {key} cannot be searched" + (f" ({why})" if why else "")
                              + "; set it for every trial with --set")
    return key


def parse_grid(text: str) -> tuple[str, tuple[Any, ...]]:
    """`actor_lr=1e-3,3e-4` -> ("actor_lr", (0.001, 0.0003)); every value checked as --set checks it."""
    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep:
        raise SweepSpaceError(f"--grid {text!r}: expected key=value1,value2, e.g. --grid actor_lr=1e-3,3e-4")
    _searchable_key("--grid", key, "actor_lr=1e-3,3e-4")
    try:
        return key, parse_values(key, raw)
    except SweepSpaceError as error:
        raise SweepSpaceError(f"--grid {text!r}: {error}") from None


def parse_values(key: str, raw: str) -> tuple[Any, ...]:
    """`1e-3, 3e-4` -> (0.001, 0.0003): the values of one swept key, each checked as --set checks it."""
    pieces = split_top_level(raw)
    if any(not piece for piece in pieces):
        raise SweepSpaceError("an empty value; separate the values with commas, e.g. 1e-3,3e-4")
    values = tuple(parse_value(key, piece) for piece in pieces)
    if len(set(map(format_value, values))) != len(values):
        raise SweepSpaceError("a value is repeated")
    return values


_CALL = re.compile(r"^\s*([a-z_]+)\s*\((.*)\)\s*$")


def looks_like_sample(raw: str) -> bool:
    """`loguniform(1e-4,1e-2)` rather than values: the form's swept field takes either."""
    return _CALL.match(raw) is not None


def parse_sample(text: str) -> SampleSpec:
    """`critic_lr=loguniform(1e-4,1e-2)`, `batch_size=randint(64,512)`, `noise=choice(gaussian,ou)`.

    Bounds are checked against the field's range now, so no trial starts with a value the
    trainer would refuse. `randint(a,b)` includes b (Tune's own randint excludes it).
    """
    key, sep, raw = text.partition("=")
    key = key.strip()
    example = "critic_lr=loguniform(1e-4,1e-2)"
    if not sep:
        raise SweepSpaceError(f"--sample {text!r}: expected key=distribution(a,b), e.g. --sample {example}")
    _searchable_key("--sample", key, example)
    match = _CALL.match(raw)
    if match is None or match.group(1) not in DISTRIBUTIONS:
        raise SweepSpaceError(f"--sample {text!r}: expected one of {', '.join(f'{d}(a,b)' for d in DISTRIBUTIONS)}, "
                              f"e.g. --sample {example}")
    distribution, body = match.groups()
    pieces = split_top_level(body)
    if any(not piece for piece in pieces):
        raise SweepSpaceError(f"--sample {text!r}: an empty argument")
    arguments = tuple(parse_value(key, piece) for piece in pieces)
    kind = FIELDS[key].kind
    if distribution == "choice":
        if len(arguments) < 2:
            raise SweepSpaceError(f"--sample {text!r}: choice needs at least two values")
        return SampleSpec(key, distribution, arguments)
    if len(arguments) != 2:
        raise SweepSpaceError(f"--sample {text!r}: {distribution} takes two bounds, low and high")
    wanted = DISTRIBUTIONS[distribution]
    if kind is not wanted:
        fit = {float: "uniform or loguniform", int: "randint or lograndint"}.get(kind, "choice")
        raise SweepSpaceError(f"--sample {text!r}: {key} takes {FIELDS[key].allowed()}; use {fit}")
    low, high = arguments
    if not low < high:
        raise SweepSpaceError(f"--sample {text!r}: the low bound must be below the high bound")
    if distribution.startswith("log") and low <= 0:
        raise SweepSpaceError(f"--sample {text!r}: {distribution} needs a low bound > 0")
    return SampleSpec(key, distribution, arguments)


def parse_seeds(text: str) -> tuple[int, ...]:
    """`0-4` -> (0, 1, 2, 3, 4); `0,2,7`; `3`. Each a valid seed, none repeated."""
    seeds: list[int] = []
    for piece in text.split(","):
        piece = piece.strip()
        match = re.fullmatch(r"(\d+)(?:\s*-\s*(\d+))?", piece)
        if match is None:
            raise SweepSpaceError(f"--seeds {text!r}: expected a range or a list, e.g. --seeds 0-4 or --seeds 0,2,7")
        first = int(match.group(1))
        last = int(match.group(2)) if match.group(2) is not None else first
        if last < first:
            raise SweepSpaceError(f"--seeds {text!r}: a range must go upwards, e.g. 0-4")
        if last - first >= 1000:
            raise SweepSpaceError(f"--seeds {text!r}: at most 1000 seeds")
        for seed in range(first, last + 1):
            validate_field("seed", seed)
            seeds.append(seed)
    if len(set(seeds)) != len(seeds):
        raise SweepSpaceError(f"--seeds {text!r}: a seed is repeated")
    return tuple(seeds)


def check_disjoint(grid: Mapping[str, Sequence[Any]], samples: Iterable[SampleSpec],
                   fixed: Iterable[str]) -> None:
    """A key may be gridded, sampled or set, but only one of these, and only once."""
    seen: dict[str, str] = {}
    for key, option in [*((k, "--grid") for k in grid), *((s.key, "--sample") for s in samples),
                        *((k, "--set") for k in fixed)]:
        if key in seen:
            raise SweepSpaceError(f"{key} is given by both {seen[key]} and {option}; give it once")
        seen[key] = option


# Variants and Tune's space ---------------------------------------------------------------


def draw_samples(samples: Sequence[SampleSpec], count: int, seed: int) -> list[dict[str, Any]]:
    """`count` random variants, drawn with Tune's search-space objects from one seeded generator,
    so the same command draws the same configs."""
    if not samples:
        return []
    import numpy as np
    from ray import tune

    rng = np.random.default_rng(seed)
    domains = {s.key: _domain(tune, s) for s in samples}
    drawn = []
    for _ in range(count):
        values = {}
        for spec in samples:
            value = domains[spec.key].sample(random_state=rng)
            value = value.item() if hasattr(value, "item") else value  # numpy scalars -> Python
            values[spec.key] = validate_field(spec.key, value)
        drawn.append(values)
    return drawn


def _domain(tune: Any, spec: SampleSpec) -> Any:
    low, *rest = spec.arguments
    if spec.distribution == "choice":
        return tune.choice(list(spec.arguments))
    high = rest[0]
    if spec.distribution == "uniform":
        return tune.uniform(low, high)
    if spec.distribution == "loguniform":
        return tune.loguniform(low, high)
    if spec.distribution == "randint":
        return tune.randint(low, high + 1)  # ours includes the high bound
    return tune.lograndint(low, high + 1)


def variants(grid: Mapping[str, Sequence[Any]], drawn: Sequence[Mapping[str, Any]]) -> list[Variant]:
    """Every grid combination, crossed with every drawn sample: the configs the sweep compares."""
    keys = list(grid)
    combos = list(itertools.product(*(grid[k] for k in keys))) or [()]
    result = []
    for combo in combos:
        base = tuple(zip(keys, combo, strict=True))
        if not drawn:
            result.append(Variant(base))
        for index, sample in enumerate(drawn):
            result.append(Variant(base + tuple(sample.items()), sample=index))
    return result


def param_space(grid: Mapping[str, Sequence[Any]], drawn: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Tune's space: a grid per key and one over the drawn samples; one point is one config (all its seeds)."""
    from ray import tune

    space: dict[str, Any] = {key: tune.grid_search([_plain(v) for v in values]) for key, values in grid.items()}
    if drawn:
        space[SAMPLE_KEY] = tune.grid_search([{"index": i, **{k: _plain(v) for k, v in d.items()}}
                                              for i, d in enumerate(drawn)])
    return space


def _plain(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def variant_of(trial_config: Mapping[str, Any], grid_keys: Sequence[str]) -> Variant:
    """The config of a trial, from the point of the space Tune resolved for it."""
    overrides = [(key, validate_field(key, trial_config[key])) for key in grid_keys]
    sample = trial_config.get(SAMPLE_KEY)
    index = None
    if sample:
        index = int(sample["index"])
        overrides += [(key, validate_field(key, value)) for key, value in sample.items() if key != "index"]
    return Variant(tuple(overrides), sample=index)


def count_runs(grid: Mapping[str, Sequence[Any]], samples: int, seeds: Sequence[int]) -> int:
    """Configs × seeds: the run folders (and seed runs) a sweep makes."""
    return math.prod(len(v) for v in grid.values()) * max(1, samples) * len(seeds)
