"""The sweep without Ray: --grid/--sample/--seeds parsing, the variants, the summary, and the trial's reporter."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from agents.config import ConfigError, DDPGConfig
from ddpg_tui.sweeps.board import SweepBoard, TrialReport, TrialRow, median_curve
from ddpg_tui.sweeps.space import (
    SampleSpec,
    SweepSpaceError,
    Variant,
    check_disjoint,
    format_value,
    parse_grid,
    parse_sample,
    parse_seeds,
    trial_name,
    variants,
)
from ddpg_tui.sweeps.spec import SweepSpec
from ddpg_tui.sweeps.summary import quartiles, summarize_trials, summarize_variants, write_summary


def test_a_grid_parses_each_value_as_set_would() -> None:
    assert parse_grid("actor_lr=1e-3,3e-4") == ("actor_lr", (0.001, 0.0003))
    assert parse_grid("lr_schedule=constant,linear") == ("lr_schedule", ("constant", "linear"))
    assert parse_grid("hidden_sizes=[64,64],[256,256]") == ("hidden_sizes", ((64, 64), (256, 256)))


@pytest.mark.parametrize(("text", "message"), [
    ("gama=0.9,0.99", "unknown hyperparameter 'gama'; allowed: actor_lr"),
    ("gamma=0.9,1.5", "gamma: 1.5 is not allowed; expected a number from 0 to 1"),
    ("actor_lr", "--grid 'actor_lr': expected key=value1,value2, e.g. --grid actor_lr=1e-3,3e-4"),
    ("actor_lr=1e-3,,3e-4", "an empty value"),
    ("actor_lr=1e-3,0.001", "a value is repeated"),
    ("hidden_sizes=[64,64", "unbalanced brackets"),
    ("seed=1,2", "seed cannot be searched (use --seeds)"),
    ("=1,2", "--grid: expected key=values"),
])
def test_a_bad_grid_is_one_line_naming_what_is_wrong(text: str, message: str) -> None:
    with pytest.raises(ConfigError) as error:
        parse_grid(text)
    assert message in str(error.value) and "\n" not in str(error.value)


def test_samples_parse_and_check_their_bounds_against_the_field() -> None:
    assert parse_sample("critic_lr=loguniform(1e-4,1e-2)") == SampleSpec("critic_lr", "loguniform", (1e-4, 1e-2))
    assert parse_sample("noise=choice(gaussian,ou)").arguments == ("gaussian", "ou")
    for text, message in [("critic_lr=lognormal(1e-4,1e-2)", "expected one of uniform(a,b)"),
                          ("critic_lr=loguniform(1e-2,1e-4)", "low bound must be below"),
                          ("critic_lr=loguniform(0,1e-2)", "critic_lr: 0.0 is not allowed"),
                          ("gamma=uniform(0.9,1.5)", "gamma: 1.5 is not allowed"),
                          ("batch_size=loguniform(64,512)", "batch_size takes an integer"),
                          ("critic_lr=uniform(1e-4)", "takes two bounds")]:
        with pytest.raises(ConfigError) as error:
            parse_sample(text)
        assert message in str(error.value), (text, str(error.value))


def test_seeds_take_ranges_and_lists() -> None:
    assert parse_seeds("0-4") == (0, 1, 2, 3, 4)
    assert parse_seeds("0,2,7") == (0, 2, 7)
    for text in ("4-0", "a", "1,1", "-1"):
        with pytest.raises(SweepSpaceError):
            parse_seeds(text)


def test_a_key_is_gridded_sampled_or_set_but_only_once() -> None:
    with pytest.raises(SweepSpaceError, match="actor_lr is given by both --grid and --set"):
        check_disjoint({"actor_lr": (1e-3,)}, [], ["actor_lr"])


def test_every_grid_value_is_crossed_with_every_other_keys_and_each_sample() -> None:
    grid = {"actor_lr": (1e-3, 3e-4), "lr_schedule": ("constant", "linear")}
    labels = [v.label for v in variants(grid, [])]
    assert labels == ["actor_lr=0.001,lr_schedule=constant", "actor_lr=0.001,lr_schedule=linear",
                      "actor_lr=0.0003,lr_schedule=constant", "actor_lr=0.0003,lr_schedule=linear"]
    sampled = variants({"tau": (0.005,)}, [{"critic_lr": 0.00123}, {"critic_lr": 0.0042}])
    assert [v.label for v in sampled] == ["s0,tau=0.005,critic_lr=0.00123", "s1,tau=0.005,critic_lr=0.0042"]
    assert variants({}, []) == [Variant(())]
    spec = SweepSpec(name="x", label="pendulum", base=DDPGConfig(), grid=grid, seeds=(0, 1, 2))
    assert len(spec.trials()) == 12 and len({name for name, _, _ in spec.trials()}) == 12


def test_values_print_short_but_exact_so_folder_names_never_collide() -> None:
    assert format_value(3e-4) == "0.0003" and format_value(0.1 + 0.2) == "0.30000000000000004"
    assert format_value((64, 64)) == "64x64" and format_value(True) == "true"
    assert trial_name("hidden_sizes=64x64,noise=ou", 3) == "hidden_sizes=64x64,noise=ou/seed3"


def test_the_spec_survives_sweep_json() -> None:
    spec = SweepSpec(name="n", label="pendulum", base=DDPGConfig(hidden_sizes=(64, 64)),
                     grid={"hidden_sizes": ((64, 64), (32, 32)), "noise": ("ou",)},
                     samples=(SampleSpec("critic_lr", "loguniform", (1e-4, 1e-2)),), sample_count=2,
                     drawn=({"critic_lr": 0.001},), seeds=(0, 3), scheduler="asha", threshold=-200.0, reeval=100)
    assert SweepSpec.from_json(spec.to_json()) == spec


def row(name: str, variant: str, seed: int, evals: list[tuple[int, float]], state: str = "finished") -> TrialRow:
    full = tuple((s, m, 1.0) for s, m in evals)
    return TrialRow(name, variant, seed, state=state, step=evals[-1][0], total_steps=300, evals=full,
                    best_eval=max(m for _, m in evals), best_step=max(evals, key=lambda e: e[1])[0])


def test_finished_configs_rank_by_final_median_and_stopped_ones_are_listed_apart_at_the_step_they_reached(
        tmp_path: Path) -> None:
    rows = [row("a/seed0", "a", 0, [(100, -300), (200, -150), (300, -120)]),
            row("a/seed1", "a", 1, [(100, -400), (200, -250), (300, -180)]),
            row("a/seed2", "a", 2, [(100, -500), (200, -600), (300, -900)]),
            # c finished below a; b was stopped at 100 (one seed a step further): far better there than a was,
            # but that is a median at a third of the steps, so it is not ranked with the finished.
            row("c/seed0", "c", 0, [(100, -900), (200, -800), (300, -700)]),
            row("b/seed0", "b", 0, [(100, -100), (200, -50)], state="early-stopped"),
            row("b/seed1", "b", 1, [(100, -120)], state="early-stopped")]
    variants_ = [Variant((("actor_lr", 0.001),)), Variant((("actor_lr", 0.0003),))]
    trials = summarize_trials(rows, -200.0, variants_)
    assert [t.steps_to_threshold for t in trials] == [200, 300, None, None, 100, 100]
    ranked = summarize_variants(trials, -200.0)
    assert [(v.variant, v.state, v.step) for v in ranked] == [
        ("a", "finished", 300), ("c", "finished", 300), ("b", "early-stopped", 100)]
    assert ranked[0].final == (-180.0, -540.0, -150.0)
    assert ranked[2].final[0] == -110.0  # at step 100, where both its seeds are: not b/seed0's -50 at 200
    assert ranked[0].median_steps_to_threshold == 300 and ranked[0].reached == 2
    _, md_path, text = write_summary(tmp_path, "t", ["fact"], rows, variants_, ["actor_lr"], -200.0)
    finished, _, stopped = text.partition("Stopped before the end")
    assert "| 1 | `a` | 3 | -180.0 | -540.0 – -150.0 | 300 | 2/3 |" in finished
    assert "| 2 | `c` | 1 | -700.0 |" in finished and "`b`" not in finished
    assert "| `b` | early-stopped | 2 | 100 | -110.0 |" in stopped
    assert md_path.read_text() == text
    assert all(math.isnan(q) for q in quartiles([]))


def test_the_overlay_curve_is_the_median_over_seeds_with_its_range() -> None:
    rows = [row("x", "a", 0, [(100, 1.0), (200, 4.0)]), row("y", "a", 1, [(100, 3.0)]),
            row("z", "a", 2, [(100, 2.0), (200, 6.0)])]
    assert median_curve(rows) == ([100, 200], [2.0, 5.0], [1.0, 4.0], [3.0, 6.0])


def test_a_retried_trial_drops_the_episodes_it_redoes_from_the_board() -> None:
    board = SweepBoard(trials=[("t", "v", 0)], total_steps=1000)
    first = TrialReport("t", "v", 0, "training", step=600, total_steps=1000, attempt="a",
                        new_episodes=((200, -1.0), (400, -2.0), (600, -3.0)))
    board.report(first)
    board.report(TrialReport("t", "v", 0, "training", step=500, total_steps=1000, attempt="b", resumed_from=400,
                             new_episodes=((500, -4.0),)))
    assert board.row("t").episodes == ((200, -1.0), (400, -2.0), (500, -4.0))
    assert TrialReport.from_metrics(first.to_metrics()) == first


def test_a_configs_seeds_take_turns_and_each_report_is_the_median_at_a_step_every_seed_reached(
        tmp_path: Path) -> None:
    """The trainable's body on real Trainers, with Tune's report replaced by a list."""
    import json
    import statistics

    from agents.checkpoint import load_checkpoint
    from agents.evaluation import evaluate_checkpoint
    from ddpg_tui.sweeps.trial import MARKER_FILE, ConfigTrial, TrialPlan

    config = DDPGConfig(total_steps=600, learning_starts=100, batch_size=32, hidden_sizes=(16, 16), eval_every=200,
                        eval_episodes=1, save_every=200, buffer_size=1000, threads=1, device="cpu")
    plan = TrialPlan(sweep_dir=str(tmp_path), base=config.to_dict(), grid_keys=("actor_lr",), seeds=(0, 1, 2),
                     progress_every=3600)
    reports: list[tuple[dict, dict | None]] = []

    def report(metrics: dict, checkpoint: object = None) -> None:
        reports.append((metrics, checkpoint))

    def marker(folder: str) -> dict:  # Tune copies the folder during report; here it is read at once
        return json.loads((Path(folder) / MARKER_FILE).read_text())

    trial = ConfigTrial(Variant((("actor_lr", 0.001),)), plan, report, marker, attempt="x", node="n")
    trial.run({}, threads=1, controls=None)

    for metrics, _ in reports:  # round-robin: no seed is ever more than one evaluation ahead of another
        counts = [len(seed["evals"]) for seed in metrics["seed_reports"]]
        assert max(counts) - min(counts) <= 1, counts
    for metrics, _ in reports:  # ASHA's clock and the median stand at one step until every seed has finished
        assert metrics["asha_step"] == metrics["median_step"] or metrics["median_step"] == 600, metrics
    rungs = {m["median_step"]: m["median_eval"] for m, _ in reports if m["median_step"]}
    assert sorted({m["asha_step"] for m, _ in reports if m["asha_step"]}) == [200, 400], "the end is no ASHA rung"
    last = reports[-1][0]
    assert [seed["state"] for seed in last["seed_reports"]] == ["finished"] * 3
    assert last["median_step"] == 600, "the last result holds the final median (what a searcher reads)"
    for step, median in rungs.items():
        at_step = [mean for seed in last["seed_reports"] for s, mean, _ in seed["evals"] if s == step]
        assert len(at_step) == 3 and median == pytest.approx(statistics.median(at_step)), step
    markers = [c for _, c in reports if c is not None]
    assert markers, "no save was reported to Tune"
    for seed in (0, 1, 2):  # the last marker names each seed's latest.pt as it is in its own run folder
        saved = load_checkpoint(tmp_path / "actor_lr=0.001" / f"seed{seed}" / "checkpoints" / "latest.pt")
        assert markers[-1][str(seed)] == {"step": 600, "save_id": saved["save_id"]}
        assert evaluate_checkpoint(tmp_path / "actor_lr=0.001" / f"seed{seed}", episodes=1, seed=0).step == 600
    assert [len(m) for m in markers] == sorted(len(m) for m in markers)


def test_samples_are_drawn_once_with_tunes_domains_and_the_same_seed_draws_the_same() -> None:
    from ddpg_tui.sweeps.space import draw_samples

    samples = [parse_sample("critic_lr=loguniform(1e-4,1e-2)"), parse_sample("batch_size=randint(64,66)"),
               parse_sample("noise=choice(gaussian,ou)")]
    drawn = draw_samples(samples, 20, seed=7)
    assert drawn == draw_samples(samples, 20, seed=7) != draw_samples(samples, 20, seed=8)
    assert all(1e-4 <= d["critic_lr"] <= 1e-2 and type(d["critic_lr"]) is float for d in drawn)
    assert {d["batch_size"] for d in drawn} == {64, 65, 66}, "randint includes its high bound"
    assert {d["noise"] for d in drawn} == {"gaussian", "ou"}


def test_every_trial_tune_resolves_from_the_space_is_one_config_of_the_spec_with_all_its_seeds() -> None:
    from ray.tune.search.variant_generator import generate_variants

    from ddpg_tui.sweeps.space import param_space, variant_of

    drawn = [{"critic_lr": 0.0005}, {"critic_lr": 0.002}]
    spec = SweepSpec(name="x", label="pendulum", base=DDPGConfig(), grid={"hidden_sizes": ((64, 64), (32, 32))},
                     samples=(SampleSpec("critic_lr", "loguniform", (1e-4, 1e-2)),), sample_count=2,
                     drawn=tuple(drawn), seeds=(0, 1))
    resolved = [config for _, config in generate_variants(param_space(spec.grid, drawn))]
    assert len(resolved) == 4, "one Tune trial per config: the seeds are not in Tune's space"
    labels = [variant_of(config, list(spec.grid)).label for config in resolved]
    assert sorted(labels) == sorted(v.label for v in spec.variants())
    names = [trial_name(label, seed) for label in labels for seed in spec.seeds]
    assert sorted(names) == sorted(name for name, _, _ in spec.trials()) and len(names) == 8


def test_the_screens_standings_rank_finished_configs_and_list_the_others_at_the_step_all_their_seeds_reached() -> None:
    from ddpg_tui.sweeps.board import SweepSnapshot, standings_text

    rows = (row("a/seed0", "a", 0, [(100, -300), (300, -120)]), row("a/seed1", "a", 1, [(100, -400), (300, -180)]),
            row("c/seed0", "c", 0, [(100, -900), (300, -700)]),
            row("b/seed0", "b", 0, [(100, -100), (200, -50)], state="early-stopped"),
            row("b/seed1", "b", 1, [(100, -120)], state="early-stopped"))
    lines = standings_text(SweepSnapshot(trials=rows, variants=("a", "b", "c")))
    assert lines == ["finished, by final median: 1. a -150.0  2. c -700.0",
                     "not finished (median at the step all its seeds reached): b early-stopped -110.0 @ 100"]
