"""Sweeps: does a change help, across seeds? Many runs of the same Trainer, scheduled by Ray Tune.

    runs/sweeps/NAME/
      sweep.json            what was asked: base config, grid, drawn samples, seeds, scheduler, search
      proposed.json         --search tpe: the configs TPE proposed so far, in order (`proposed.py`)
      <config>/             one Tune trial per config: its seeds train in turn in one process
        seed<k>/            one ordinary run folder per seed: config.toml, metrics.jsonl,
                            checkpoints/ -- `ddpg-tui eval` and `train --resume` work on it
      tune/                 Tune's experiment: its state, and per trial a small marker of the
                            seeds' last saves (the run folders are the checkpoints)
      tune-state.sig        HMACs of Tune's pickled state files, checked by --resume (see `trust.py`)
      summary.csv           one row per seed run
      summary.md            one row per config, ranked by the median over seeds at equal steps

The rooms:
- this module: the sweep's spec and folder (imports no Ray);
- `cluster.py`: connecting to Ray, checking a joined cluster's nodes, CPUs and GPUs per trial;
- `reeval.py`: --reeval's fresh evaluation of each trial's checkpoint, as Ray tasks;
- `space.py`: --grid, --sample, --seeds, and Tune's search space;
- `search.py`: --search tpe, Optuna's TPE through Tune's OptunaSearch; `proposed.py`: the configs it proposed;
- `trial.py`: the Tune trainable, a config's seeds as `Trainer`s taking turns (`seed_turns.py`);
- `population_trial.py`: with --seeds-together, a config's seeds as one population in its trial;
- `driver.py`: the Tuner, the driver-side callback, stopping trials and the sweep;
- `board.py`: the driver's picture of all trials, which every front-end draws;
- `summary.py`: summary.csv and summary.md;
- `history.py`: finished runs and sweeps read back from their folders, for `ddpg-tui compare`.

Data flows one way: trainer events -> the trial's reporter -> `tune.report` -> Tune's driver-side
callback -> the board -> the sweep screen or the headless table.
"""

from __future__ import annotations

import contextlib
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agents.config import ConfigError, DDPGConfig
from ddpg_tui.sweeps.space import SampleSpec, Variant, format_value, trial_name, variants

SWEEPS_ROOT = Path("runs") / "sweeps"
SPEC_FILE = "sweep.json"
TUNE_DIR = "tune"
NAMESPACE = "ddpg-tui"
SPEC_VERSION = 2  # 2: one Tune trial per config, seeds in <config>/seed<k>/
SEARCHES = ("random", "tpe")  # --search: random draws made in advance, or Optuna's TPE proposing as results come


class SweepError(ValueError):
    """Bad input or a setup that cannot work: shown as one line, exit code 2."""


@dataclass(frozen=True)
class SweepSpec:
    """Everything that defines a sweep; written to sweep.json so that --resume runs the same one."""

    name: str
    label: str  # the preset's name, or the env id
    base: DDPGConfig
    grid: dict[str, tuple[Any, ...]] = field(default_factory=dict)
    samples: tuple[SampleSpec, ...] = ()
    sample_count: int = 0
    sample_seed: int = 0
    drawn: tuple[dict[str, Any], ...] = ()  # the random variants, once drawn
    seeds: tuple[int, ...] = (0,)
    scheduler: str | None = None  # None or "asha"
    threshold: float | None = None  # the preset's solved return
    reeval: int = 0  # episodes of the fresh re-evaluation at the end (0: none)
    search: str = "random"  # how --sample's space is searched: one of SEARCHES
    seeds_together: bool = False  # --seeds-together: a config's seeds train as one population (population_trial.py)

    @property
    def keys(self) -> list[str]:
        """The searched keys, in the order of the summary's columns."""
        return [*self.grid, *(s.key for s in self.samples)]

    def variants(self) -> list[Variant]:
        """The configs known before the sweep starts: none for TPE, whose proposals `proposed.py` keeps."""
        return [] if self.search == "tpe" else variants(self.grid, self.drawn)

    @property
    def config_count(self) -> int:
        """The configs the sweep will train: the grid's × the samples (TPE's budget is its --samples)."""
        return math.prod(len(v) for v in self.grid.values()) * max(1, self.sample_count)

    def trials(self) -> list[tuple[str, str, int]]:
        """(run name, variant label, seed) of every seed run, variant-major; the run name is its folder
        under the sweep folder. (A Tune trial is a whole config: see `variants`.)"""
        return [(trial_name(v.label, seed), v.label, seed) for v in self.variants() for seed in self.seeds]

    def facts(self) -> list[str]:
        searched = [f"--grid {k}={','.join(format_value(v) for v in vs)}" for k, vs in self.grid.items()]
        searched += [f"--sample {s.text()}" for s in self.samples]
        if self.samples and self.search == "tpe":
            searched.append(f"--search tpe --samples {self.sample_count} (Optuna's TPE, seeded with "
                            f"{self.sample_seed}, on the median over each config's seeds)")
        elif self.samples:
            searched.append(f"--samples {self.sample_count} (drawn with seed {self.sample_seed})")
        seeds = self.seeds
        seed_text = (f"{seeds[0]}-{seeds[-1]}" if list(seeds) == list(range(seeds[0], seeds[-1] + 1))
                     else ",".join(map(str, seeds)))
        return [f"{self.label} ({self.base.env_id}), {self.base.total_steps:,} steps a trial",
                f"{_count(self.config_count, 'config')} × {_count(len(self.seeds), 'seed')} ({seed_text}) = "
                f"{_count(self.config_count * len(self.seeds), 'run')}, one Tune trial per config ("
                f"{'its seeds as one population' if self.seeds_together else 'its seeds in turn'})",
                "searched: " + (" ".join(searched) or "nothing (the base config on every seed)"),
                f"scheduler: {self.scheduler or 'none (every config runs to the end)'}"
                + (" on the median over each config's seeds" if self.scheduler else "")]

    # sweep.json ----------------------------------------------------------------------------

    def to_json(self) -> str:
        return json.dumps({
            "version": SPEC_VERSION, "name": self.name, "label": self.label, "config": self.base.to_dict(),
            "grid": {k: [_plain(v) for v in vs] for k, vs in self.grid.items()},
            "samples": [{"key": s.key, "distribution": s.distribution, "arguments": [_plain(a) for a in s.arguments]}
                        for s in self.samples],
            "sample_count": self.sample_count, "sample_seed": self.sample_seed,
            "drawn": [{k: _plain(v) for k, v in d.items()} for d in self.drawn],
            "seeds": list(self.seeds), "scheduler": self.scheduler, "threshold": self.threshold,
            "reeval": self.reeval, "search": self.search, "seeds_together": self.seeds_together,
        }, indent=2) + "\n"

    @classmethod
    def from_json(cls, text: str) -> SweepSpec:
        from agents.config import validate_field

        data = json.loads(text)
        return cls(
            name=data["name"], label=data["label"], base=DDPGConfig.from_mapping(data["config"]),
            grid={k: tuple(validate_field(k, v) for v in vs) for k, vs in data["grid"].items()},
            # Each argument checked as --set checks it, which also makes a choice's lists tuples again.
            samples=tuple(SampleSpec(s["key"], s["distribution"], tuple(validate_field(s["key"], a)
                                                                         for a in s["arguments"]))
                          for s in data["samples"]),
            sample_count=data["sample_count"], sample_seed=data["sample_seed"],
            drawn=tuple({k: validate_field(k, v) for k, v in d.items()} for d in data["drawn"]),
            seeds=tuple(data["seeds"]), scheduler=data["scheduler"], threshold=data["threshold"],
            reeval=data["reeval"], search=_search(data.get("search", "random")),
            seeds_together=bool(data.get("seeds_together", False)))


def _search(value: object) -> str:
    if value not in SEARCHES:
        raise ValueError(f"search {value!r} is not one of {', '.join(SEARCHES)}")
    return str(value)


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _plain(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


# The sweep's folder -------------------------------------------------------------------------------


def create_sweep_folder(root: Path, name: str) -> Path:
    """Make runs/sweeps/NAME, refusing one that exists: two sweeps in one folder would mix their trials."""
    sweep_dir = Path(root) / name
    try:
        Path(root).mkdir(parents=True, exist_ok=True)
        sweep_dir.mkdir()
    except FileExistsError:
        raise SweepError(f"sweep {sweep_dir} already exists; carry it on with --resume {sweep_dir}, "
                         "or choose another --name") from None
    except OSError as error:
        raise SweepError(f"cannot make the sweep folder {sweep_dir} ({error.strerror or error})") from None
    return sweep_dir


def write_spec(sweep_dir: Path, spec: SweepSpec) -> None:
    (sweep_dir / SPEC_FILE).write_text(spec.to_json(), encoding="utf-8")


def check_resumable(sweep_dir: Path) -> None:
    """Refuse to carry on a sweep made when each seed was a Tune trial of its own (sweep.json version 1)."""
    version = SPEC_VERSION  # unreadable: load_spec says what is wrong with it
    with contextlib.suppress(OSError, ValueError, AttributeError):
        version = json.loads((Path(sweep_dir) / SPEC_FILE).read_text(encoding="utf-8")).get("version", 1)
    if version != SPEC_VERSION:
        raise SweepError(f"--resume: {sweep_dir} was made by an older ddpg-tui that ran one Tune trial per seed "
                         f"(sweep.json version {version}); this one runs one trial per config and cannot carry it on")


def load_spec(sweep_dir: Path) -> SweepSpec:
    path = Path(sweep_dir) / SPEC_FILE
    if not path.is_file():
        raise SweepError(f"--resume: {sweep_dir} is not a sweep folder (it has no {SPEC_FILE})")
    try:
        return SweepSpec.from_json(path.read_text(encoding="utf-8"))
    except (ValueError, KeyError, TypeError, ConfigError) as error:
        raise SweepError(f"--resume: {path} is damaged ({error})") from None
