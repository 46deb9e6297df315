"""--search tpe without starting Ray: the space Optuna gets, the numbering of proposals, and the files that
remember a TPE sweep's configs (which are not known before it starts)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from agents.config import DDPGConfig
from ddpg_tui.sweeps.space import SAMPLE_KEY, Variant, parse_sample
from ddpg_tui.sweeps.spec import SweepSpec

pytestmark = [pytest.mark.filterwarnings("ignore::DeprecationWarning"),
              pytest.mark.filterwarnings("ignore::FutureWarning")]

SAMPLES = (parse_sample("batch_size=randint(16,64)"), parse_sample("hidden_sizes=choice([16,16],[32,32])"),
           parse_sample("critic_lr=loguniform(1e-4,1e-2)"))


def tpe_spec(**changes: object) -> SweepSpec:
    return SweepSpec(name="t", label="pendulum", base=DDPGConfig(env_id="Pendulum-v1", total_steps=400),
                     samples=SAMPLES, sample_count=8, sample_seed=3, seeds=(0, 1, 2), search="tpe", **changes)


def test_optunas_space_keeps_our_bounds_and_holds_list_choices_as_their_text() -> None:
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    from ddpg_tui.sweeps.search import decode, optuna_space

    space = optuna_space(SAMPLES)
    assert space["batch_size"] == IntDistribution(16, 64), "randint(a,b) includes b, as in random search"
    assert space["hidden_sizes"] == CategoricalDistribution(("16x16", "32x32"))
    assert space["critic_lr"] == FloatDistribution(1e-4, 1e-2, log=True)
    values = decode(SAMPLES, {"batch_size": 64, "hidden_sizes": "32x32", "critic_lr": 0.0006466422717414558})
    assert values == {"batch_size": 64, "hidden_sizes": (32, 32), "critic_lr": 0.0006466}, "short, readable floats"
    edge = (parse_sample("gamma=uniform(0.9,0.99995)"),)
    assert decode(edge, {"gamma": 0.999951}) == {"gamma": 0.999951}, "never rounded out of its bounds"


class _Proposer:
    """A searcher that proposes the same values every time: TPE may well propose a choice twice."""

    metric, mode = "median_eval", "max"

    def __init__(self) -> None:
        self.completed: list[tuple[str, float]] = []

    def suggest(self, trial_id: str) -> dict:
        return {"batch_size": 32, "hidden_sizes": "16x16", "critic_lr": 0.001}

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        self.completed.append((trial_id, (result or {})["median_eval"]))


def test_proposals_are_numbered_in_order_so_equal_values_get_folders_of_their_own_and_a_restore_numbers_on() -> None:
    from ddpg_tui.sweeps.search import NumberedSearch
    from ddpg_tui.sweeps.space import variant_of

    inner = _Proposer()
    search = NumberedSearch(inner, SAMPLES)  # type: ignore[arg-type]
    first, second = search.suggest("a"), search.suggest("b")
    assert first[SAMPLE_KEY]["index"] == 0 and second[SAMPLE_KEY]["index"] == 1
    labels = [variant_of(config, ()).label for config in (first, second)]
    assert labels[0] != labels[1] and labels[0].startswith("s0,") and labels[1].startswith("s1,")
    assert variant_of(first, ()).as_dict()["hidden_sizes"] == (16, 16)
    search.on_trial_complete("a", {"median_eval": -3.5})
    assert inner.completed == [("a", -3.5)], "the wrapped searcher sees the config's median"

    restored = NumberedSearch(_Proposer(), SAMPLES)  # type: ignore[arg-type]
    restored.set_state(search.get_state())
    assert restored.suggest("c")[SAMPLE_KEY]["index"] == 2


def test_tpe_follows_the_sample_seed_and_proposes_only_when_a_slot_is_free() -> None:
    from ddpg_tui.sweeps.search import tpe_search

    def first_two(seed: int) -> list[dict]:
        search = tpe_search(SAMPLES, budget=8, seed=seed, at_once=2)
        return [search.suggest(f"t{seed}-{n}") for n in range(2)]
    assert first_two(0) == first_two(0)
    assert first_two(0) != first_two(1), "the sampler is seeded with --sample-seed"

    one_at_a_time = tpe_search(SAMPLES, budget=8, seed=0, at_once=1)
    assert one_at_a_time.suggest("a") is not None
    assert one_at_a_time.suggest("b") is None, "nothing more is proposed while the only slot's config runs"
    one_at_a_time.on_trial_complete("a", {"median_eval": 1.0})
    assert one_at_a_time.suggest("b")[SAMPLE_KEY]["index"] == 1


def test_a_few_random_configs_before_tpe_models_anything() -> None:
    from ddpg_tui.sweeps.search import startup_trials

    assert [startup_trials(n) for n in (1, 4, 8, 16, 40, 200)] == [2, 2, 2, 4, 10, 10]


def test_a_tpe_spec_knows_its_budget_not_its_configs_and_keeps_its_search_in_sweep_json() -> None:
    spec = tpe_spec()
    assert spec.variants() == [] and spec.trials() == []
    assert spec.config_count == 8
    facts = "\n".join(spec.facts())
    assert "8 configs × 3 seeds (0-2) = 24 runs" in facts and "--search tpe --samples 8" in facts
    again = SweepSpec.from_json(spec.to_json())
    assert again.search == "tpe" and again == spec
    old = spec.to_json().replace('"search": "tpe"', '"unused": 0')
    assert SweepSpec.from_json(old).search == "random", "a sweep.json from before --search is a random one"
    with pytest.raises(ValueError, match="search 'bayes'"):
        SweepSpec.from_json(spec.to_json().replace('"search": "tpe"', '"search": "bayes"'))


def test_proposals_are_kept_in_the_sweep_folder_for_the_summary_and_compare(tmp_path: Path) -> None:
    from ddpg_tui.sweeps.proposed import read_proposed, sweep_variants, write_proposed

    proposed = [Variant((("batch_size", 48), ("hidden_sizes", (32, 32))), sample=1),
                Variant((("batch_size", 16), ("hidden_sizes", (16, 16))), sample=0)]
    write_proposed(tmp_path, proposed)
    assert read_proposed(tmp_path) == sorted(proposed, key=lambda v: v.sample)
    assert sweep_variants(tpe_spec(), tmp_path) == read_proposed(tmp_path)
    random = SweepSpec(name="r", label="p", base=DDPGConfig(env_id="Pendulum-v1"), samples=SAMPLES[:1],
                       sample_count=2, drawn=({"batch_size": 20}, {"batch_size": 30}))
    assert [v.label for v in sweep_variants(random, tmp_path)] == ["s0,batch_size=20", "s1,batch_size=30"]
    (tmp_path / "proposed.json").write_text('[{"index": 0, "overrides": {"batch_size": -4}}]')
    assert read_proposed(tmp_path) == [], "a value --set would refuse is not a config"


def test_the_headless_headline_counts_the_budget_before_tpe_has_proposed_it() -> None:
    from ddpg_tui.cli.commands.sweep import headline
    from ddpg_tui.sweeps.board import SweepBoard

    board = SweepBoard.for_sweep(tpe_spec(), "runs/sweeps/t")
    board.trial_state("s0,x/seed0", "finished", variant="s0,x", seed=0)
    snapshot = board.snapshot()
    assert len(snapshot.trials) == 1 and snapshot.expected_runs == 24
    assert "1/24 trials done" in headline(snapshot)
    assert not math.isnan(snapshot.elapsed)
