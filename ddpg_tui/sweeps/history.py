"""Finished runs and sweeps read back from their folders, for `ddpg-tui compare` and the runs screen.

A run is `runs/<name>/` (config.toml, metrics.jsonl); a sweep is `runs/sweeps/<name>/` (sweep.json and
one run folder per config and seed, `<config>/seed<k>/`). Either becomes a `RunRecord` with one or more
`Series`: the curves the overlay plot draws. A run is one series; a sweep is one series per config, the
median over its seeds with their min and max, exactly as the sweep screen draws it live.
"""

from __future__ import annotations

import json
import math
import tomllib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agents.run_files import effective_config
from ddpg_tui.sweeps.board import TrialRow, median_curve
from ddpg_tui.sweeps.proposed import sweep_variants
from ddpg_tui.sweeps.space import format_value, trial_name
from ddpg_tui.sweeps.spec import SPEC_FILE, SweepError, load_spec
from ddpg_tui.sweeps.summary import quartiles


class RunReadError(ValueError):
    """A folder that is neither a run nor a sweep, or one that cannot be read: one line."""


@dataclass(frozen=True, slots=True)
class Series:
    """One line of the overlay plot: a run, or one config of a sweep over its seeds."""

    label: str
    steps: tuple[int, ...]
    median: tuple[float, ...]
    low: tuple[float, ...]
    high: tuple[float, ...]
    seeds: int = 1
    config: dict[str, Any] = field(default_factory=dict)  # every hyperparameter, for the table of differences
    changed: dict[str, int] = field(default_factory=dict)  # field -> the step of its last live change
    finals: tuple[float, ...] = ()  # each seed's last evaluation, for the statistics over seeds (ddpg_tui.stats)

    @classmethod
    def of_rows(cls, label: str, rows: Sequence[TrialRow], config: dict[str, Any] | None = None,
                changed: dict[str, int] | None = None) -> Series:
        steps, median, low, high = median_curve(rows)
        return cls(label, tuple(steps), tuple(median), tuple(low), tuple(high), len(rows), config or {},
                   changed or {}, tuple(row.evals[-1][1] for row in rows if row.evals))


@dataclass(frozen=True, slots=True)
class RunRecord:
    path: Path
    kind: str  # "run" or "sweep"
    name: str
    env_id: str
    total_steps: int  # per trial, for a sweep
    steps: int  # the furthest step reached
    final: float  # last evaluation; for a sweep, the best config's median over seeds
    best: float  # best evaluation of any run or trial
    modified: float  # seconds since the epoch
    series: tuple[Series, ...]
    trials: int = 1


def read_config(run_dir: Path) -> dict[str, Any]:
    """The config in effect at the run's last step: config.toml with its live changes applied."""
    return read_config_and_changes(run_dir)[0]


def read_config_and_changes(run_dir: Path) -> tuple[dict[str, Any], dict[str, int]]:
    """The effective config (as `read_config`) and, for each field changed live, the step of its last change."""
    try:
        data, changed = effective_config(run_dir)
    except (OSError, tomllib.TOMLDecodeError) as error:
        raise RunReadError(f"{run_dir} has no readable config.toml ({error})") from None
    return {"env_id": data.get("env_id", ""), **data.get("hyperparameters", {})}, changed


def read_evals(run_dir: Path) -> tuple[tuple[int, float, float], ...]:
    """The run's evaluations, the last one of each step winning (a resumed run rewrites none, but be safe)."""
    return read_metrics(run_dir)[0]


def read_metrics(run_dir: Path) -> tuple[tuple[tuple[int, float, float], ...], int]:
    """The run's evaluations (as `read_evals`) and the furthest step any metrics row reached.

    The step comes from episode and update rows too: a run stopped before its first
    evaluation did train, and the text file says how far without unpickling a checkpoint.
    """
    by_step: dict[int, tuple[int, float, float]] = {}
    reached = 0
    try:
        with (run_dir / "metrics.jsonl").open(encoding="utf-8") as metrics:
            for line in metrics:
                try:
                    row = json.loads(line)
                    step = int(row["step"])
                except (ValueError, TypeError, KeyError):
                    continue  # a line cut by a crash
                reached = max(reached, step)
                if row.get("kind") == "eval":
                    by_step[step] = (step, float(row["mean"]), float(row["std"]))
    except FileNotFoundError:
        pass
    return tuple(by_step[s] for s in sorted(by_step)), reached


def _trial_row(run_dir: Path, variant: str, seed: int) -> TrialRow:
    evals, reached = read_metrics(run_dir)
    best = max(evals, key=lambda e: e[1]) if evals else None
    return TrialRow(run_dir.name, variant, seed, state="", step=max(reached, evals[-1][0] if evals else 0),
                    evals=evals, eval_mean=evals[-1][1] if evals else math.nan,
                    best_eval=best[1] if best else math.nan, best_step=best[0] if best else 0)


def _modified(path: Path) -> float:
    stamps = [p.stat().st_mtime for p in (path / "metrics.jsonl", path / SPEC_FILE, path / "summary.csv", path)
              if p.exists()]
    return max(stamps)


def read_run(run_dir: Path) -> RunRecord:
    config, changed = read_config_and_changes(run_dir)
    row = _trial_row(run_dir, run_dir.name, int(config.get("seed", 0)))
    series = Series.of_rows(run_dir.name, [row], config, changed)
    return RunRecord(run_dir, "run", run_dir.name, str(config.get("env_id", "")), int(config.get("total_steps", 0)),
                     row.step, row.eval_mean, row.best_eval, _modified(run_dir), (series,))


def read_sweep(sweep_dir: Path) -> RunRecord:
    try:
        spec = load_spec(sweep_dir)
    except SweepError as error:
        raise RunReadError(str(error).removeprefix("--resume: ")) from None
    base = spec.base.to_dict()
    series, rows_all, finals = [], [], []
    for variant in sweep_variants(spec, sweep_dir):
        rows = [_trial_row(sweep_dir / trial_name(variant.label, seed), variant.label, seed) for seed in spec.seeds
                if (sweep_dir / trial_name(variant.label, seed)).is_dir()]
        if not rows:
            continue
        rows_all += rows
        config = {**base, **{k: list(v) if isinstance(v, tuple) else v for k, v in variant.as_dict().items()}}
        series.append(Series.of_rows(f"{spec.name}: {variant.label}", rows, config))
        median_final = quartiles([r.eval_mean for r in rows])[0]
        if not math.isnan(median_final):
            finals.append(median_final)
    bests = [r.best_eval for r in rows_all if not math.isnan(r.best_eval)]
    return RunRecord(sweep_dir, "sweep", spec.name, spec.base.env_id, spec.base.total_steps,
                     max((r.step for r in rows_all), default=0), max(finals, default=math.nan),
                     max(bests, default=math.nan), _modified(sweep_dir), tuple(series), len(rows_all))


def read_any(path: Path) -> RunRecord:
    path = Path(path)
    if (path / SPEC_FILE).is_file():
        return read_sweep(path)
    if (path / "config.toml").is_file():
        return read_run(path)
    raise RunReadError(f"{path} is not a run folder (config.toml) or a sweep folder ({SPEC_FILE})")


def list_runs(root: Path = Path("runs")) -> list[RunRecord]:
    """The runs and sweeps under `root`, newest first; folders that cannot be read are left out."""
    candidates: list[Path] = []
    if root.is_dir():
        candidates += [p for p in root.iterdir() if p.is_dir() and p.name != "sweeps"]
    sweeps = root / "sweeps"
    if sweeps.is_dir():
        candidates += [p for p in sweeps.iterdir() if p.is_dir()]
    records = []
    seen: set[Path] = set()
    # A symlink to a run beside the run itself is one run, listed once under its real name (the runs screen
    # keys its rows by the resolved folder): real folders first, so the link is the one left out.
    for path in sorted(candidates, key=lambda p: p.is_symlink()):
        if (real := path.resolve()) in seen:
            continue
        seen.add(real)
        try:
            records.append(read_any(path))
        except (RunReadError, OSError, ValueError, KeyError):
            continue
    return sorted(records, key=lambda r: r.modified, reverse=True)


@dataclass(frozen=True, slots=True)
class FieldValue:
    """One series' value of a field that differs: the value in effect at its last step, and the step of its last
    live change. The words for it ("-", "changed live at step N") are the front-ends' (ddpg_tui.ui.run_text)."""

    value: Any = None
    present: bool = True  # False: this series' config has no such field (an older run, another env's config)
    changed_at: int | None = None  # None: never changed live


def compare_rows(records: Sequence[RunRecord]) -> tuple[list[Series], list[tuple[str, list[FieldValue]]]]:
    """Every series of the chosen runs and sweeps, and the config fields that differ between them."""
    series = [s for record in records for s in record.series]
    return series, differing_fields(series)


def final_of(series: Series) -> float:
    return series.median[-1] if series.median else math.nan


def differing_fields(series: Iterable[Series]) -> list[tuple[str, list[FieldValue]]]:
    """The config fields whose values are not all the same, or that changed live in any series, each
    with its value per series (the value in effect at the run's last step, and the step it was set at)."""
    series = list(series)
    keys: list[str] = []
    for s in series:
        keys += [k for k in s.config if k not in keys]
    result = []
    for key in keys:
        values = [FieldValue(s.config[key], True, s.changed.get(key)) if key in s.config
                  else FieldValue(present=False, changed_at=s.changed.get(key)) for s in series]
        # Compared as the sweep spells them (format_value: 64x64 whether a list or a tuple, 1 and 1.0 alike),
        # so a field differs exactly when its folder name would.
        if len({format_value(v.value) if v.present else None for v in values}) > 1 or any(
                v.changed_at is not None for v in values):
            result.append((key, values))
    return result
