"""`--search tpe`: Optuna's TPE, through Ray Tune's `OptunaSearch`, over the space `--sample` defines.

Random search draws every config before the sweep starts (`space.draw_samples`); TPE proposes
each config from the results of those before it, so a TPE sweep's configs are known only as
Tune asks for them. What this adds to `OptunaSearch`:

- the space is built here from our `SampleSpec`s, so bounds mean what they mean for random
  search (`randint(a,b)` includes b) and a `choice` may hold values Optuna cannot store
  (lists such as `hidden_sizes=[64,64]`: Optuna keeps their text, `64x64`); a proposed float
  keeps four significant digits, so its folder name stays short and is the value trained;
- `NumberedSearch` gives each proposal its number, in the order proposed, and puts it in the
  trial's config as random search does with a draw's index: two proposals with the same
  values (TPE may propose a `choice` twice) still get folders of their own, `s<n>,key=value`;
- a `ConcurrencyLimiter` lets no more proposals run at once than trials can, so TPE proposes a
  config only when a slot is free, having seen every result that ended before it. With one
  trial at a time and one seeded sampler, the same command proposes the same configs in the
  same order; with several at once, the proposals depend on which trials end first.

The searcher sees each trial's last result, whose `median_eval` is the median over the
config's seeds (at the last step they all reached, for a config ASHA stopped). Its state is
pickled by Tune into `tune/` (`searcher-state-*.pkl`, and the wrappers' counters in
`search_gen_state-*.json`), signed and checked like the rest of Tune's state (`trust.py`).

Import this module only to run a sweep: it imports Ray Tune and Optuna.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ray.tune.search import ConcurrencyLimiter, Searcher

from agents.config import validate_field
from ddpg_tui.sweeps.space import SAMPLE_KEY, SampleSpec, format_value
from ddpg_tui.sweeps.spec import SweepError

METRIC, MODE = "median_eval", "max"  # the median over a config's seeds; ConfigReport.to_metrics reports it


def require_optuna() -> None:
    """Import Optuna, or say which extra brings it."""
    try:
        import optuna  # noqa: F401
        from ray.tune.search.optuna import OptunaSearch  # noqa: F401
    except ImportError:
        raise SweepError("--search tpe runs Optuna, which is not installed: pip install 'ddpg-tui[ray]'") from None


def startup_trials(budget: int) -> int:
    """Random configs before TPE models anything: a quarter of the budget, from 2 to Optuna's own 10.

    Optuna's default of 10 would make any sweep of 10 configs or fewer a plain random search;
    with fewer than 2 results TPE has nothing to split into good and bad.
    """
    return max(2, min(10, budget // 4))


def optuna_space(samples: Sequence[SampleSpec]) -> dict[str, Any]:
    """Optuna's distributions for our --sample specs (checked already by `space.parse_sample`)."""
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    space: dict[str, Any] = {}
    for spec in samples:
        if spec.distribution == "choice":
            space[spec.key] = CategoricalDistribution(tuple(format_value(a) for a in spec.arguments))
            continue
        low, high = spec.arguments
        log = spec.distribution.startswith("log")
        if spec.distribution in ("uniform", "loguniform"):
            space[spec.key] = FloatDistribution(float(low), float(high), log=log)
        else:  # randint, lograndint: both bounds included, as in random search
            space[spec.key] = IntDistribution(int(low), int(high), log=log)
    return space


def decode(samples: Sequence[SampleSpec], values: dict[str, Any]) -> dict[str, Any]:
    """Optuna's proposal as our config's values: a choice's text back to its value, each checked as --set checks."""
    result = {}
    for spec in samples:
        value = values[spec.key]
        if spec.distribution == "choice":
            value = {format_value(a): a for a in spec.arguments}[value]
        value = value.item() if hasattr(value, "item") else value
        if isinstance(value, float):
            value = _short(value, *spec.arguments)
        result[spec.key] = validate_field(spec.key, value)
    return result


def _short(value: float, low: float, high: float) -> float:
    """Four significant digits, inside the bounds: the config's folder reads `actor_lr=0.0006466`, not seventeen
    digits, and the value trained is the one its name shows. TPE's density cannot tell the fifth digit apart."""
    rounded = float(f"{value:.4g}")
    return rounded if low <= rounded <= high else value


class NumberedSearch(Searcher):
    """Numbers the proposals of the searcher it wraps and shapes each as a sampled config (see the module's text).

    Tune saves a wrapper's `get_state` with its search state and finds the wrapped searcher by
    its `searcher` attribute, so a resumed sweep numbers on from where it stopped.
    """

    def __init__(self, searcher: Searcher, samples: Sequence[SampleSpec]) -> None:
        self.searcher = searcher
        self.samples = tuple(samples)
        self.proposed = 0
        super().__init__(metric=searcher.metric, mode=searcher.mode)

    def suggest(self, trial_id: str) -> dict | str | None:
        values = self.searcher.suggest(trial_id)
        if values is None or values == Searcher.FINISHED:
            return values
        config = {SAMPLE_KEY: {"index": self.proposed, **_plain(decode(self.samples, values))}}
        self.proposed += 1
        return config

    def set_search_properties(self, metric: str | None, mode: str | None, config: dict, **spec: Any) -> bool:
        return self.searcher.set_search_properties(metric, mode, config, **spec)

    def set_max_concurrency(self, max_concurrent: int) -> bool:
        return self.searcher.set_max_concurrency(max_concurrent)

    def on_trial_result(self, trial_id: str, result: dict) -> None:
        """Not passed on: TPE learns from final values only (Optuna's intermediate reports feed its pruners, and
        ASHA is ours), and a resumed trial counts Tune's iterations again from its checkpoint, which Optuna
        would warn about at every step it had already seen."""

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        self.searcher.on_trial_complete(trial_id, result=result, error=error)

    def on_pause(self, trial_id: str) -> None:
        self.searcher.on_pause(trial_id)

    def on_unpause(self, trial_id: str) -> None:
        self.searcher.on_unpause(trial_id)

    def get_state(self) -> dict:
        return {"proposed": self.proposed}

    def set_state(self, state: dict) -> None:
        self.proposed = int(state["proposed"])

    def save(self, checkpoint_path: str) -> None:
        self.searcher.save(checkpoint_path)

    def restore(self, checkpoint_path: str) -> None:
        self.searcher.restore(checkpoint_path)


def _plain(values: dict[str, Any]) -> dict[str, Any]:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in values.items()}


def tpe_search(samples: Sequence[SampleSpec], budget: int, seed: int, at_once: int) -> NumberedSearch:
    """TPE over `samples`, seeded, proposing at most `at_once` configs that have not ended."""
    import optuna
    from ray.tune.search.optuna import OptunaSearch

    # Optuna says "A new study created in memory" on stderr: the sweep's screen and table are the user's.
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    sampler = optuna.samplers.TPESampler(seed=seed, n_startup_trials=startup_trials(budget))
    optuna_search = OptunaSearch(optuna_space(samples), metric=METRIC, mode=MODE, sampler=sampler)
    return NumberedSearch(ConcurrencyLimiter(optuna_search, max_concurrent=max(1, at_once)), samples)
