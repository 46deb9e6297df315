"""How sure can one be of a config's return, given a few seeds? The figures rliable recommends.

For a config's per-seed final returns:
- the median, and the interquartile mean (IQM: the mean of the middle half, what is left after cutting
  int(n/4) seeds off each end, as `scipy.stats.trim_mean(x, 0.25)`), which is robust to one lucky or
  unlucky seed yet uses more of the data than the median;
- a 95% confidence interval of the IQM by the percentile bootstrap over seeds;
- for two configs, the probability of improvement P(X > Y): the chance that a seed of X ends above a seed
  of Y (ties count half), the Mann-Whitney statistic over n·m, with its bootstrap interval.

When the returns span several tasks (envs), pass a mapping task -> per-seed returns: the bootstrap
resamples seeds within each task (stratified, as rliable's `StratifiedBootstrap`), the IQM is taken over
all of them together, and P(X > Y) is the mean over the tasks both configs ran. rliable itself pulls in
arch, statsmodels, seaborn and matplotlib; `scipy.stats.bootstrap` does the same resampling: given several
samples it resamples each one independently, which is exactly the stratification.

The bootstrap's generator has a fixed seed, so the same returns always give the same interval.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

# scipy.stats is imported where it is used: it takes about 0.6 s here, and the summary, `compare` and the
# screens that import this module mostly start up without needing it.

CONFIDENCE = 0.95
RESAMPLES = 10_000
BOOTSTRAP_SEED = 0
FEW_SEEDS = 5  # below this many seeds the interval is too wide to rank configs by
POWER = 0.8  # the chance of telling a real difference apart, in `seeds_needed`

Scores = Sequence[float] | Mapping[str, Sequence[float]]


@dataclass(frozen=True, slots=True)
class Estimate:
    """One config over its seeds: the point figures and the interval of the IQM (nan when there is none)."""

    seeds: int
    median: float
    iqm: float
    low: float
    high: float
    std: float  # the spread between seeds (pooled over tasks), for `seeds_needed`


@dataclass(frozen=True, slots=True)
class Improvement:
    """P(X > Y) with its interval."""

    probability: float
    low: float
    high: float


def _by_task(scores: Scores) -> dict[str, np.ndarray]:
    items = scores.items() if isinstance(scores, Mapping) else [("", scores)]
    result = {}
    for task, values in items:
        array = np.asarray([v for v in values if not math.isnan(v)], dtype=float)
        if array.size:
            result[task] = array
    return result


def iqm(values: Sequence[float] | np.ndarray) -> float:
    """The interquartile mean; nan for no values."""
    from scipy import stats

    array = np.asarray(values, dtype=float)
    return float(stats.trim_mean(array, 0.25)) if array.size else math.nan


def _iqm_of_all(*samples: np.ndarray, axis: int = -1) -> np.ndarray:
    from scipy import stats

    return stats.trim_mean(np.concatenate(samples, axis=axis), 0.25, axis=axis)


def _bootstrap(samples: Sequence[np.ndarray], statistic, seed: int) -> tuple[float, float]:
    from scipy import stats

    result = stats.bootstrap(tuple(samples), statistic, n_resamples=RESAMPLES, confidence_level=CONFIDENCE,
                             method="percentile", vectorized=True, rng=np.random.default_rng(seed))
    return float(result.confidence_interval.low), float(result.confidence_interval.high)


def estimate(scores: Scores, seed: int = BOOTSTRAP_SEED) -> Estimate:
    """Median, IQM and the IQM's bootstrap interval; the interval is nan below two seeds in every task."""
    tasks = _by_task(scores)
    if not tasks:
        return Estimate(0, math.nan, math.nan, math.nan, math.nan, math.nan)
    samples = list(tasks.values())
    flat = np.concatenate(samples)
    low = high = math.nan
    if all(s.size >= 2 for s in samples):
        low, high = _bootstrap(samples, _iqm_of_all, seed)
    # The spread between seeds within a task: the tasks' own scales differ, so they are pooled, not mixed.
    spread = [float(np.var(s, ddof=1)) for s in samples if s.size >= 2]
    std = math.sqrt(sum(spread) / len(spread)) if spread else math.nan
    return Estimate(int(flat.size), float(np.median(flat)), iqm(flat), low, high, std)


def _p_greater(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """P(a seed of x > a seed of y), ties half, over the last axis (the leading ones are bootstrap batches)."""
    gt = (x[..., :, None] > y[..., None, :]).mean(axis=(-2, -1))
    eq = (x[..., :, None] == y[..., None, :]).mean(axis=(-2, -1))
    return gt + 0.5 * eq


def probability_of_improvement(x: Scores, y: Scores, seed: int = BOOTSTRAP_SEED) -> Improvement | None:
    """P(X > Y) averaged over the tasks both ran, with its stratified bootstrap interval; None if none shared."""
    xs, ys = _by_task(x), _by_task(y)
    shared = [task for task in xs if task in ys]
    if not shared:
        return None
    pairs = [array for task in shared for array in (xs[task], ys[task])]
    point = float(np.mean([_p_greater(xs[t], ys[t]) for t in shared]))
    if not all(a.size >= 2 for a in pairs):
        return Improvement(point, math.nan, math.nan)

    def statistic(*samples: np.ndarray, axis: int = -1) -> np.ndarray:
        return np.mean([_p_greater(samples[i], samples[i + 1]) for i in range(0, len(samples), 2)], axis=0)

    low, high = _bootstrap(pairs, statistic, seed)
    return Improvement(point, low, high)


def seeds_needed(std: float, difference: float) -> int | None:
    """Seeds per config for a two-sided 5% test to tell `difference` apart with 80% power, at this spread.

    The normal approximation n = 2 (z_0.975 + z_0.8)² σ² / Δ²: a rough figure, which is all one can say
    before having the seeds. None when the spread or the difference is unknown or zero.
    """
    from scipy import stats

    if not (math.isfinite(std) and math.isfinite(difference)) or std <= 0 or difference == 0:
        return None
    z = stats.norm.ppf(1 - (1 - CONFIDENCE) / 2) + stats.norm.ppf(POWER)
    return max(2, math.ceil(2 * (z * std / abs(difference)) ** 2))


def few_seeds_note(seeds: int, std: float, difference: float, what: str) -> str | None:
    """One line when there are too few seeds to trust the interval; None from FEW_SEEDS seeds on.

    `what` names the difference, e.g. "the gap to the runner-up".
    """
    if seeds >= FEW_SEEDS:
        return None
    needed = seeds_needed(std, difference)
    head = f"{seeds} seed{'s' if seeds != 1 else ''}: the 95% interval is wide"
    if needed is None:
        return f"{head}; use {FEW_SEEDS} or more seeds to rank configs by it"
    spread = f"at this spread between seeds (std {std:,.1f})"
    if needed <= seeds:
        return (f"{head}, but {what} ({abs(difference):,.1f}) is large: {spread} about {needed} seeds per config "
                "tell it apart")
    return f"{head}; telling {what} ({abs(difference):,.1f}) apart {spread} needs about {needed} seeds per config"


def interval_text(low: float, high: float, digits: int = 1, grouping: str = ",") -> str:
    """'low – high'; grouping "" leaves out the thousands separator, as summary.md's other columns do."""
    return "" if math.isnan(low) else f"{low:{grouping}.{digits}f} – {high:{grouping}.{digits}f}"
