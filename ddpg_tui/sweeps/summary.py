"""A sweep's results: summary.csv (one row per seed run) and summary.md (one row per config, ranked).

Both are made from what the trials reported to the driver (the board's rows), which are
the same evaluations each seed wrote to its own metrics.jsonl. A config is judged by the
median over its seeds and the spread between them (interquartile range), because one
DDPG seed says little: the same preset ends at 217 on one seed and 50 on another.

Configs are compared at equal step counts only: the finished ones by their final median, and
those stopped before the end (by ASHA, by the user, or paused) in a table of their own, each
with the last step all its seeds reached and the median there. Beside the median each config
gets its interquartile mean and that IQM's bootstrap 95% interval over seeds, and the top
two configs the probability that one beats the other (`ddpg_tui.stats`); the best finished config is
written as a preset, best.toml (`best.py`).
"""

from __future__ import annotations

import csv
import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ddpg_tui.stats import Estimate, estimate, few_seeds_note, interval_text, probability_of_improvement
from ddpg_tui.sweeps.best import write_best_preset
from ddpg_tui.sweeps.board import FINISHED, TrialRow, common_step, config_state, quartiles, values_at
from ddpg_tui.sweeps.space import Variant, format_value
from ddpg_tui.sweeps.tensorboard import write_hparams

__all__ = ["quartiles"]  # kept here too: history.py and others read it from the summary


@dataclass(frozen=True, slots=True)
class TrialSummary:
    trial: str
    variant: str
    overrides: dict[str, Any]
    seed: int
    state: str
    steps: int
    total_steps: int
    final_eval: float
    final_eval_std: float
    best_eval: float
    best_eval_step: int
    steps_to_threshold: int | None
    train_seconds: float
    wall_seconds: float
    reeval_mean: float | None = None
    reeval_std: float | None = None
    evals: tuple[tuple[int, float, float], ...] = ()


@dataclass(frozen=True, slots=True)
class VariantSummary:
    variant: str
    seeds: int
    finished: int
    final: tuple[float, float, float]  # median, first and third quartile over seeds at `step` (nan: no eval yet)
    reeval: tuple[float, float, float] | None
    median_steps_to_threshold: float | None  # inf: at most half the seeds reached it; None: no threshold
    reached: int  # seeds that reached the threshold
    state: str = FINISHED  # finished (every seed), or what ended it: early-stopped, stopped, paused, error, running
    step: int = 0  # the last step every seed evaluated at: `final` is taken there
    estimate: Estimate | None = None  # median, IQM and the IQM's interval of the final evals over seeds
    finals: tuple[float, ...] = ()  # the seeds' final evals, for comparing two configs


def steps_to_threshold(evals: Sequence[tuple[int, float, float]], threshold: float | None) -> int | None:
    """The first evaluation at or above the threshold; None if there was none (or no threshold)."""
    if threshold is None:
        return None
    return next((int(step) for step, mean, _ in evals if mean >= threshold), None)


def summarize_trials(rows: Sequence[TrialRow], threshold: float | None, variants: Sequence[Variant],
                     reevals: Mapping[str, tuple[float, float]] | None = None) -> list[TrialSummary]:
    overrides = {v.label: v.as_dict() for v in variants}
    reevals = reevals or {}
    result = []
    for row in rows:
        last = row.evals[-1] if row.evals else None
        reeval = reevals.get(row.name)
        result.append(TrialSummary(
            trial=row.name, variant=row.variant, overrides=overrides.get(row.variant, {}), seed=row.seed,
            state=row.state, steps=row.step, total_steps=row.total_steps,
            final_eval=last[1] if last else math.nan, final_eval_std=last[2] if last else math.nan,
            best_eval=row.best_eval, best_eval_step=row.best_step,
            steps_to_threshold=steps_to_threshold(row.evals, threshold), train_seconds=row.train_seconds,
            wall_seconds=row.wall_seconds, reeval_mean=reeval[0] if reeval else None,
            reeval_std=reeval[1] if reeval else None, evals=row.evals))
    return result


def summarize_variants(trials: Sequence[TrialSummary], threshold: float | None) -> list[VariantSummary]:
    """One row per config: the finished ones first, best final median first; then the others, furthest
    step first. Each config's median is over all its seeds at the last step every one of them reached."""
    groups: dict[str, list[TrialSummary]] = {}
    for trial in trials:
        groups.setdefault(trial.variant, []).append(trial)
    result = []
    for variant, members in groups.items():
        reevals = [t.reeval_mean for t in members if t.reeval_mean is not None]
        to_threshold = [math.inf if t.steps_to_threshold is None else float(t.steps_to_threshold) for t in members]
        curves = [t.evals for t in members]
        step = common_step(curves)
        at_step = list(values_at(curves, step)) if step else []
        result.append(VariantSummary(
            variant=variant, seeds=len(members), finished=sum(t.state == FINISHED for t in members),
            final=quartiles(values_at(curves, step)) if step else (math.nan, math.nan, math.nan),
            state=config_state(members), step=step,
            reeval=quartiles(reevals) if reevals else None,
            median_steps_to_threshold=statistics.median(to_threshold) if threshold is not None and members else None,
            reached=sum(t.steps_to_threshold is not None for t in members),
            # The statistics at the same step as the median: the finished configs' finals, the others' step reached.
            estimate=estimate(at_step) if at_step else None, finals=tuple(at_step)))

    def order(v: VariantSummary) -> tuple[bool, int, float]:
        median = -v.final[0] if not math.isnan(v.final[0]) else math.inf
        return (v.state != FINISHED, 0 if v.state == FINISHED else -v.step, median)
    return sorted(result, key=order)


# Files -----------------------------------------------------------------------------------------


def _number(value: float | None, digits: int = 2) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return f"{value:.{digits}f}"


def write_csv(path: Path, trials: Sequence[TrialSummary], keys: Sequence[str]) -> None:
    reeval = any(t.reeval_mean is not None for t in trials)
    header = ["trial", "config", *keys, "seed", "state", "steps", "total_steps", "final_eval", "final_eval_std",
              "best_eval", "best_eval_step", "steps_to_threshold", "train_seconds", "wall_seconds"]
    if reeval:
        header += ["reeval_mean", "reeval_std"]
    # The config's figures over its seeds, repeated on each of its trials' rows: the file stays one row a trial.
    header += ["config_median", "config_iqm", "config_iqm_ci_low", "config_iqm_ci_high"]
    estimates = {v: estimate([t.final_eval for t in trials if t.variant == v]) for v in {t.variant for t in trials}}
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        for t in trials:
            row = [t.trial, t.variant, *(format_value(t.overrides[k]) if k in t.overrides else "" for k in keys),
                   t.seed, t.state, t.steps, t.total_steps, _number(t.final_eval, 4), _number(t.final_eval_std, 4),
                   _number(t.best_eval, 4), t.best_eval_step or "",
                   "" if t.steps_to_threshold is None else t.steps_to_threshold,
                   _number(t.train_seconds, 1), _number(t.wall_seconds, 1)]
            if reeval:
                row += [_number(t.reeval_mean, 4), _number(t.reeval_std, 4)]
            e = estimates[t.variant]
            row += [_number(e.median, 4), _number(e.iqm, 4), _number(e.low, 4), _number(e.high, 4)]
            writer.writerow(row)


def markdown(title: str, facts: Sequence[str], variants: Sequence[VariantSummary], threshold: float | None,
             reeval_episodes: int = 0) -> str:
    """The ranked table of finished configs, and below it the configs stopped before the end: what to read to
    decide whether a change helps. The two are never one column: their medians are at different steps."""
    lines = [f"# {title}", "", *(f"- {fact}" for fact in facts), ""]
    finished = [v for v in variants if v.state == FINISHED]
    others = [v for v in variants if v.state != FINISHED]
    header = ["rank", "config", "seeds", "final eval: median", "IQR"]
    if reeval_episodes:
        header += [f"{reeval_episodes} episodes: median", "IQR"]
    if threshold is not None:
        header += [f"steps to ≥ {threshold:g}: median", "reached"]
    header += ["IQM", "IQM 95% CI"]
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for rank, v in enumerate(finished, start=1):
        cells = [str(rank), f"`{v.variant}`", str(v.seeds), _number(v.final[0], 1), _iqr(v.final)]
        e = v.estimate
        iqm = [_number(e.iqm, 1), interval_text(e.low, e.high, grouping="")] if e else ["", ""]
        lines.append("| " + " | ".join(cells + _extra_cells(v, threshold, reeval_episodes) + iqm) + " |")
    if not finished:
        lines.append("| " + " | ".join(["", "no config finished", *[""] * (len(header) - 2)]) + " |")
    if others:
        note = "; its re-evaluation is of the policy saved there" if reeval_episodes else ""
        lines += ["", f"Stopped before the end, not ranked with the finished: each median is at the step it reached"
                  f"{note}.", ""]
        header = ["config", "state", "seeds", "step reached", "median there", "IQR"]
        if reeval_episodes:
            header += [f"{reeval_episodes} episodes: median", "IQR"]
        if threshold is not None:
            header += [f"steps to ≥ {threshold:g}: median", "reached"]
        lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        for v in others:
            cells = [f"`{v.variant}`", v.state, str(v.seeds), f"{v.step:,}" if v.step else "-", _number(v.final[0], 1),
                     _iqr(v.final)]
            lines.append("| " + " | ".join(cells + _extra_cells(v, threshold, reeval_episodes)) + " |")
    notes = statistics_lines(finished)
    return "\n".join(lines + (["", *notes] if notes else [])) + "\n"


def statistics_lines(variants: Sequence[VariantSummary]) -> list[str]:
    """What the intervals say about the ranking: P(first > second), and a word when the seeds are too few."""
    ranked = [v for v in variants if v.estimate is not None and not math.isnan(v.estimate.median)]
    if not ranked:
        return []
    lines = []
    first = ranked[0]
    difference, what = 0.1 * abs(first.estimate.iqm), "a tenth of its IQM"
    if len(ranked) > 1:
        second = ranked[1]
        improvement = probability_of_improvement(first.finals, second.finals)
        if improvement is not None:
            interval = interval_text(improvement.low, improvement.high, 2)
            lines.append(f"- P(`{first.variant}` beats `{second.variant}` on a seed) = {improvement.probability:.2f}"
                         + (f" (95% CI {interval})" if interval else ""))
        difference, what = first.estimate.median - second.estimate.median, "the gap to the runner-up's median"
    note = few_seeds_note(first.estimate.seeds, first.estimate.std, difference, what)
    if note:
        lines.append(f"- {note}")
    return lines


def _extra_cells(v: VariantSummary, threshold: float | None, reeval_episodes: int) -> list[str]:
    cells: list[str] = []
    if reeval_episodes:
        cells += [_number(v.reeval[0], 1), _iqr(v.reeval)] if v.reeval else ["", ""]
    if threshold is not None:
        steps = v.median_steps_to_threshold
        cells += ["not reached" if steps is None or math.isinf(steps) else f"{steps:,.0f}", f"{v.reached}/{v.seeds}"]
    return cells


def _iqr(values: tuple[float, float, float] | None) -> str:
    if values is None or math.isnan(values[1]):
        return ""
    return f"{values[1]:.1f} – {values[2]:.1f}"


def write_summary(sweep_dir: Path, title: str, facts: Sequence[str], rows: Sequence[TrialRow],
                  variants: Sequence[Variant], keys: Sequence[str], threshold: float | None,
                  reevals: Mapping[str, tuple[float, float]] | None = None,
                  reeval_episodes: int = 0) -> tuple[Path, Path, str]:
    """Write summary.csv, summary.md and best.toml into the sweep folder; returns the first two's paths and
    the markdown. best.toml needs the folder's sweep.json (the base config) and a config whose seeds all finished."""
    trials = summarize_trials(rows, threshold, variants, reevals)
    csv_path, md_path = sweep_dir / "summary.csv", sweep_dir / "summary.md"
    write_csv(csv_path, trials, keys)
    ranked = summarize_variants(trials, threshold)
    text = markdown(title, facts, ranked, threshold, reeval_episodes)
    md_path.write_text(text, encoding="utf-8")
    write_best_preset(sweep_dir, ranked, variants)
    write_hparams(sweep_dir, trials)  # TensorBoard's HParams tab, in each trial folder
    return csv_path, md_path, text
