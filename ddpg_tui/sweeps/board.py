"""What a trial tells the sweep's driver, and the driver's picture of the whole sweep.

A Tune trial is one config; its seeds train in turn in it. It reports a `ConfigReport` to Tune
(a flat dict of metrics: the median over its seeds at the last step every seed has evaluated
at, which is what ASHA judges, plus one `TrialReport` per seed) every round of evaluations, every
save and every few seconds. On the driver, Tune's callback hands each seed's to `SweepBoard`,
which folds it into plain data behind a lock; the sweep screen and the headless table take
a `SweepSnapshot` on a timer, as the dashboard does with a training session. The board
never reads trial folders: on a cluster they live on other machines.
"""

from __future__ import annotations

import math
import statistics
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ddpg_tui.sweeps.spec import SweepSpec

# Trial states beyond the trainer's own (warming up, training, evaluating, finished, stopped, error).
PENDING, STARTING, PAUSED, EARLY_STOPPED, RETRYING = "pending", "starting", "paused", "early-stopped", "retrying"
FINISHED, STOPPED, ERROR = "finished", "stopped", "error"
DONE_STATES = {FINISHED, STOPPED, EARLY_STOPPED, ERROR}
MAX_POINTS = 2000  # episode returns / losses kept per trial for its read-only view


@dataclass(frozen=True, slots=True)
class TrialReport:
    """One report of a trial: the metrics Tune receives. Flat scalars, plus short lists."""

    trial: str
    variant: str
    seed: int
    state: str
    step: int
    total_steps: int
    episodes: int = 0
    steps_per_second: float = 0.0
    train_seconds: float = 0.0
    eval_step: int = 0
    # ASHA's clock: the step of the last evaluation before the end. It moves only at an evaluation, so a
    # rung always sees a fresh one; and never reaches total_steps, where ASHA would stop (kill) a trial
    # that is finishing anyway, before its final save.
    asha_step: int = 0
    eval_mean: float = math.nan
    eval_std: float = math.nan
    best_eval: float = math.nan
    best_step: int = 0
    evals: tuple[tuple[int, float, float], ...] = ()  # the whole eval curve so far (step, mean, std)
    new_episodes: tuple[tuple[int, float], ...] = ()  # episode ends since the previous report
    new_losses: tuple[tuple[int, float, float], ...] = ()  # (updates, critic loss, actor loss) since then
    resumed_from: int = 0  # the step this attempt started from (0: from scratch)
    checkpoint_step: int = 0  # step of the last latest.pt this trial reported to Tune
    attempt: str = ""  # new for every start of the trial's code: a retry, a resume
    pid: int = 0
    node: str = ""
    message: str = ""

    def to_metrics(self) -> dict[str, Any]:
        metrics = asdict(self)
        for key in ("evals", "new_episodes", "new_losses"):
            metrics[key] = [list(row) for row in metrics[key]]
        return metrics

    @classmethod
    def from_metrics(cls, metrics: Mapping[str, Any]) -> TrialReport | None:
        """Ours from a Tune result (which adds keys of its own); None if it is not one of ours."""
        if "trial" not in metrics or "variant" not in metrics:
            return None
        values = {f.name: metrics[f.name] for f in fields(cls) if f.name in metrics}
        for key in ("evals", "new_episodes", "new_losses"):
            values[key] = tuple(tuple(row) for row in values.get(key, ()))
        return cls(**values)


@dataclass(frozen=True, slots=True)
class ConfigReport:
    """One report of a config's trial to Tune: what its scheduler judges, and each seed's own report.

    `asha_step` is the last evaluation step below the end that every seed has reached, and
    `median_eval` the median over the seeds at the last step every seed reached (the same step,
    until all have finished): a rung compares configs at one step, on all their seeds, and stops
    all of them together or none. A trial's last result holds its final median.
    """

    config: str  # the config's label
    asha_step: int
    median_eval: float  # at median_step
    seeds: tuple[TrialReport, ...]
    median_step: int = 0  # the last step every seed evaluated at (total_steps once all have finished)

    def to_metrics(self) -> dict[str, Any]:
        # "config" is Tune's own key in a result (the trial's resolved config): ours is sweep_config.
        return {"sweep_config": self.config, "asha_step": self.asha_step, "median_eval": self.median_eval,
                "median_step": self.median_step, "seed_reports": [seed.to_metrics() for seed in self.seeds]}

    @classmethod
    def from_metrics(cls, metrics: Mapping[str, Any]) -> ConfigReport | None:
        """Ours from a Tune result; None if it is not one of ours."""
        if "sweep_config" not in metrics:
            return None
        seeds = tuple(r for r in map(TrialReport.from_metrics, metrics.get("seed_reports", ())) if r is not None)
        return cls(str(metrics["sweep_config"]), int(metrics.get("asha_step", 0)),
                   float(metrics.get("median_eval", math.nan)), seeds, int(metrics.get("median_step", 0)))


def quartiles(values: Sequence[float]) -> tuple[float, float, float]:
    """Median, first and third quartile; nan for no values."""
    values = [v for v in values if not math.isnan(v)]
    if not values:
        return (math.nan, math.nan, math.nan)
    if len(values) == 1:
        return (values[0], values[0], values[0])
    q1, median, q3 = statistics.quantiles(values, n=4, method="inclusive")
    return (median, q1, q3)


def common_step(evals: Sequence[Sequence[tuple[int, float, float]]], below: int | None = None) -> int:
    """The last evaluation step every seed has reached (below `below`, if given); 0 if there is none."""
    if not evals or any(not curve for curve in evals):
        return 0
    shared = set.intersection(*({int(step) for step, _, _ in curve} for curve in evals))
    return max((step for step in shared if below is None or step < below), default=0)


def values_at(evals: Sequence[Sequence[tuple[int, float, float]]], step: int) -> list[float]:
    """Each seed's evaluation at `step` (the seeds that have one)."""
    return [float(mean) for curve in evals for s, mean, _ in curve if int(s) == step]


@dataclass(frozen=True, slots=True)
class TrialRow:
    """One trial as the screens show it."""

    name: str
    variant: str
    seed: int
    state: str = PENDING
    step: int = 0
    total_steps: int = 0
    steps_per_second: float = 0.0
    eval_mean: float = math.nan
    eval_std: float = math.nan
    eval_step: int = 0
    best_eval: float = math.nan
    best_step: int = 0
    evals: tuple[tuple[int, float, float], ...] = ()
    train_seconds: float = 0.0
    wall_seconds: float = 0.0
    episodes_done: int = 0
    attempts: int = 0
    attempt: str = ""
    resumed_from: int = 0
    checkpoint_step: int = 0  # step of the last latest.pt the seed saved (0: none yet)
    pid: int = 0
    node: str = ""
    message: str = ""
    episodes: tuple[tuple[int, float], ...] = ()
    losses: tuple[tuple[int, float, float], ...] = ()

    @property
    def done(self) -> bool:
        return self.state in DONE_STATES


@dataclass(frozen=True, slots=True)
class SweepSnapshot:
    """Everything the sweep screen draws, copied out under the board's lock."""

    version: int = 0
    name: str = ""
    sweep_dir: str = ""
    env_id: str = ""
    threshold: float | None = None
    state: str = "starting"  # starting, running, stopping, finished, paused, error
    message: str = ""
    trials: tuple[TrialRow, ...] = ()
    variants: tuple[str, ...] = ()  # in the sweep's order: a variant keeps its colour
    elapsed: float = 0.0
    # The seed runs the sweep will make: TPE's configs arrive as they are proposed, so `trials` may hold fewer.
    expected_runs: int = 0

    def by_variant(self) -> dict[str, list[TrialRow]]:
        groups: dict[str, list[TrialRow]] = {v: [] for v in self.variants}
        for row in self.trials:
            groups.setdefault(row.variant, []).append(row)
        return groups

    def counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for row in self.trials:
            counts[row.state] = counts.get(row.state, 0) + 1
        return counts


@dataclass
class _Trial:
    row: TrialRow
    episodes: list[tuple[int, float]] = field(default_factory=list)
    losses: list[tuple[int, float, float]] = field(default_factory=list)


class SweepBoard:
    """The driver's fold of every trial's reports; thread-safe, never blocks a caller for long."""

    def __init__(self, name: str = "", sweep_dir: str = "", env_id: str = "", threshold: float | None = None,
                 trials: Iterable[tuple[str, str, int]] = (), total_steps: int = 0, expected_runs: int = 0) -> None:
        self._lock = threading.Lock()
        self._name, self._sweep_dir, self._env_id, self._threshold = name, sweep_dir, env_id, threshold
        self._expected_runs = expected_runs
        self._trials: dict[str, _Trial] = {}
        self._variants: list[str] = []
        self._state, self._message = "starting", ""
        self._started = time.monotonic()
        self._ended: float | None = None
        self.version = 0  # bumped by every change; an int read needs no lock
        for name_, variant, seed in trials:
            trial = self._add(name_, variant, seed)
            trial.row = replace(trial.row, total_steps=total_steps)

    @classmethod
    def for_sweep(cls, spec: SweepSpec, sweep_dir: str) -> SweepBoard:
        """Every trial of a `SweepSpec`, pending, before anything has run."""
        return cls(spec.name, sweep_dir, spec.base.env_id, spec.threshold, spec.trials(), spec.base.total_steps,
                   spec.config_count * len(spec.seeds))

    # The driver's side ------------------------------------------------------------------

    def _add(self, name: str, variant: str, seed: int) -> _Trial:
        if variant not in self._variants:
            self._variants.append(variant)
        trial = self._trials.get(name)
        if trial is None:
            trial = self._trials[name] = _Trial(TrialRow(name, variant, seed))
        return trial

    def report(self, report: TrialReport, wall_seconds: float | None = None) -> None:
        with self._lock:
            trial = self._add(report.trial, report.variant, report.seed)
            row = trial.row
            if report.attempt != row.attempt:  # a retry went back to its checkpoint: drop what it redoes
                trial.episodes = [e for e in trial.episodes if e[0] <= report.resumed_from]
            trial.episodes.extend(report.new_episodes)
            trial.losses.extend(report.new_losses)
            del trial.episodes[:-MAX_POINTS], trial.losses[:-MAX_POINTS]
            trial.row = replace(
                row, state=report.state, step=report.step, total_steps=report.total_steps,
                steps_per_second=report.steps_per_second, eval_mean=report.eval_mean, eval_std=report.eval_std,
                eval_step=report.eval_step, best_eval=report.best_eval, best_step=report.best_step,
                evals=report.evals, train_seconds=report.train_seconds, episodes_done=report.episodes,
                wall_seconds=wall_seconds if wall_seconds is not None else row.wall_seconds,
                resumed_from=report.resumed_from, attempt=report.attempt, pid=report.pid,
                checkpoint_step=max(report.checkpoint_step, row.checkpoint_step),
                node=report.node or row.node,
                message=report.message or row.message)
            self.version += 1

    def trial_state(self, name: str, state: str, message: str = "", *, variant: str = "", seed: int = 0,
                    new_attempt: bool = False) -> None:
        with self._lock:
            trial = self._trials.get(name) or self._add(name, variant, seed)
            row = trial.row
            trial.row = replace(row, state=state, message=message or row.message,
                                attempts=row.attempts + (1 if new_attempt else 0))
            self.version += 1

    def set_state(self, state: str, message: str = "") -> None:
        with self._lock:
            self._state, self._message = state, message
            if state in ("finished", "paused", "error") and self._ended is None:
                self._ended = time.monotonic()
            self.version += 1

    # The readers' side -------------------------------------------------------------------

    def row(self, name: str) -> TrialRow | None:
        with self._lock:
            trial = self._trials.get(name)
            return None if trial is None else self._full_row(trial)

    @staticmethod
    def _full_row(trial: _Trial) -> TrialRow:
        return replace(trial.row, episodes=tuple(trial.episodes), losses=tuple(trial.losses))

    def snapshot(self) -> SweepSnapshot:
        """Rows without their episode and loss histories (`row(name)` has those): the table and
        the overlay plot need only the evaluations, and copying less keeps the lock short."""
        with self._lock:
            end = self._ended if self._ended is not None else time.monotonic()
            return SweepSnapshot(
                version=self.version, name=self._name, sweep_dir=self._sweep_dir, env_id=self._env_id,
                threshold=self._threshold, state=self._state, message=self._message,
                trials=tuple(t.row for t in self._trials.values()), variants=tuple(self._variants),
                elapsed=end - self._started, expected_runs=self._expected_runs)


# Ranking: configs at equal steps ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Standing:
    """A config in the ranking: its seeds' median (and quartiles) at the last step all of them reached."""

    variant: str
    state: str  # finished (every seed), or what ended or holds it: early-stopped, stopped, paused, error, running
    step: int
    median: float
    q1: float
    q3: float
    seeds: int

    @property
    def finished(self) -> bool:
        return self.state == FINISHED


CONFIG_STATE_ORDER = (ERROR, EARLY_STOPPED, STOPPED, PAUSED)  # the first one any seed is in names the config's


def config_state(rows: Sequence[TrialRow]) -> str:
    states = {row.state for row in rows}
    if rows and states == {FINISHED}:
        return FINISHED
    return next((state for state in CONFIG_STATE_ORDER if state in states), "running")


def standing(variant: str, rows: Sequence[TrialRow]) -> Standing:
    curves = [row.evals for row in rows]
    step = common_step(curves)
    median, q1, q3 = quartiles(values_at(curves, step)) if step else (math.nan, math.nan, math.nan)
    return Standing(variant, config_state(rows), step, median, q1, q3, len(rows))


def standings(groups: Mapping[str, Sequence[TrialRow]]) -> tuple[list[Standing], list[Standing]]:
    """(finished configs, best final median first; the others, furthest step first, then best median).

    Configs are compared only at equal step counts: a finished config's final median is never
    ranked beside a stopped one's median at a quarter of the steps, so the others are a list of
    their own, each with the step it reached.
    """
    every = [standing(variant, rows) for variant, rows in groups.items() if rows]
    finished = sorted((s for s in every if s.finished), key=_best_first)
    others = sorted((s for s in every if not s.finished), key=lambda s: (-s.step, *_best_first(s)))
    return finished, others


def standings_text(snapshot: SweepSnapshot) -> list[str]:
    """The ranking as two lines for a screen: finished configs by final median, then the others with their step."""
    finished, others = standings(snapshot.by_variant())
    lines = []
    if finished:
        lines.append("finished, by final median: " + "  ".join(
            f"{rank}. {s.variant} {_short(s.median)}" for rank, s in enumerate(finished, start=1)))
    if others:
        lines.append("not finished (median at the step all its seeds reached): " + "  ".join(
            f"{s.variant} {s.state} {_short(s.median)} @ {s.step:,}" for s in others))
    return lines


def _short(value: float) -> str:
    return "-" if math.isnan(value) else f"{value:,.1f}"


def _best_first(s: Standing) -> tuple[float]:
    return (math.inf if math.isnan(s.median) else -s.median,)


def median_curve(rows: Sequence[TrialRow]) -> tuple[list[int], list[float], list[float], list[float]]:
    """Steps, and the median, min and max over seeds of the evaluation at each step.

    A step is drawn while at least one seed has reached it; seeds stopped early (ASHA) simply
    drop out, so the band narrows instead of the median jumping to a missing value.
    """
    by_step: dict[int, list[float]] = {}
    for row in rows:
        for step, mean, _ in row.evals:
            by_step.setdefault(int(step), []).append(float(mean))
    steps = sorted(by_step)
    return (steps, [statistics.median(by_step[s]) for s in steps], [min(by_step[s]) for s in steps],
            [max(by_step[s]) for s in steps])
