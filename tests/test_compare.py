"""`ddpg-tui compare` on real folders: a run, and a sweep whose trials are ordinary runs (trained here without Ray)."""

from __future__ import annotations

import statistics
import subprocess
import sys
from pathlib import Path

import pytest

from agents.config import DDPGConfig
from ddpg_tui.sweeps.history import list_runs, read_any, read_evals
from ddpg_tui.sweeps.space import trial_name
from ddpg_tui.sweeps.spec import SweepSpec, write_spec

ROOT = Path(__file__).resolve().parents[1]


def tiny(**changes: object) -> DDPGConfig:
    return DDPGConfig(total_steps=400, learning_starts=100, batch_size=32, hidden_sizes=(16, 16), eval_every=200,
                      eval_episodes=1, buffer_size=1000, threads=1, device="cpu").replace(**changes)


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """runs/pendulum-a (gamma 0.9) and runs/sweeps/demo (actor_lr 1e-3 and 1e-4, seeds 0 and 1)."""
    from agents.trainer import Trainer

    root = tmp_path_factory.mktemp("compare") / "runs"
    Trainer(tiny(gamma=0.9), None, root / "pendulum-a").run()
    spec = SweepSpec(name="demo", label="pendulum", base=tiny(), grid={"actor_lr": (1e-3, 1e-4)}, seeds=(0, 1))
    sweep_dir = root / "sweeps" / "demo"
    sweep_dir.mkdir(parents=True)
    write_spec(sweep_dir, spec)
    for variant in spec.variants():
        for seed in spec.seeds:
            config = spec.base.replace(**variant.as_dict(), seed=seed)
            Trainer(config, None, sweep_dir / trial_name(variant.label, seed)).run()
    return root


def compare(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ddpg_tui", "compare", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=120)


def test_a_sweep_reads_back_as_one_series_per_config_the_median_over_its_seeds(runs: Path) -> None:
    record = read_any(runs / "sweeps" / "demo")
    assert (record.kind, record.trials, record.env_id) == ("sweep", 4, "Pendulum-v1")
    assert [s.label for s in record.series] == ["demo: actor_lr=0.001", "demo: actor_lr=0.0001"]
    first = record.series[0]
    seeds = [read_evals(runs / "sweeps" / "demo" / "actor_lr=0.001" / f"seed{seed}") for seed in (0, 1)]
    assert first.steps == (200, 400)
    assert first.median[-1] == pytest.approx(statistics.median(e[-1][1] for e in seeds))
    assert first.low[-1] == min(e[-1][1] for e in seeds) and first.high[-1] == max(e[-1][1] for e in seeds)
    assert first.config["actor_lr"] == 0.001 and first.seeds == 2


def test_the_list_holds_runs_and_sweeps_newest_first(runs: Path) -> None:
    assert [r.name for r in list_runs(runs)] == ["demo", "pendulum-a"]


def test_headless_compare_prints_each_series_the_fields_that_differ_and_a_text_plot(runs: Path) -> None:
    result = compare(["runs/sweeps/demo", "runs/pendulum-a", "--headless"], runs.parent)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    for text in ("demo: actor_lr=0.001", "demo: actor_lr=0.0001", "pendulum-a", "fields that differ",
                 "evaluation return", "env steps"):
        assert text in out, text
    header = next(line for line in out.splitlines() if "run / config" in line)
    assert "IQM" in header and "IQM 95% CI" in header
    # Two configs on one env with two seeds each: how likely the better one beats the other, and a word on seeds.
    assert "P(demo: actor_lr=" in out and "on a seed) = " in out and "(95% CI " in out
    assert ": 2 seeds: the 95% interval is wide" in out
    fields = out.split("fields that differ")[1]
    assert "actor_lr" in fields and "gamma" in fields and "batch_size" not in fields


def test_headless_compare_of_nothing_lists_what_is_under_runs(runs: Path) -> None:
    result = compare(["--headless"], runs.parent)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert "sweep" in lines[1] and "demo" in lines[1] and "pendulum-a" in lines[2]


def test_a_folder_that_is_neither_a_run_nor_a_sweep_is_one_line_and_exit_2(tmp_path: Path) -> None:
    result = compare(["nowhere", "--headless"], tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "ddpg-tui: error: compare: nowhere is not a run folder (config.toml) or a sweep folder (sweep.json)"]
    empty = compare(["--headless"], tmp_path)
    assert empty.returncode == 2 and "no runs or sweeps under runs/" in empty.stderr


def test_a_run_stopped_before_any_evaluation_shows_the_step_it_reached(tmp_path: Path) -> None:
    import json

    from agents.trainer import Trainer
    from ddpg_tui.ui.run_text import steps_text

    run_dir = tmp_path / "runs" / "stopped"
    trainer = Trainer(tiny(total_steps=20_000, eval_every=0, save_every=0), None, run_dir)
    real_update = trainer.agent.update

    def update_then_stop(batch):
        if trainer.step == 1315:
            trainer.controls.stop(save=True)
        return real_update(batch)

    trainer.agent.update = update_then_stop
    assert trainer.run().step == 1315
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert not any(row["kind"] == "eval" for row in rows)  # the column used to come from evaluations only
    record = read_any(run_dir)
    assert record.steps == max(row["step"] for row in rows) == 1315  # the stop flushes an update row
    assert steps_text(record) == f"{record.steps:,}/20,000"


def test_a_run_reached_through_two_symlinks_is_listed_once(runs: Path, tmp_path: Path) -> None:
    # The runs screen keys its rows by the resolved folder: a run listed twice ended the app (DuplicateKey).
    root = tmp_path / "runs"
    root.mkdir()
    (root / "pendulum-a").symlink_to(runs / "pendulum-a")
    (root / "link").symlink_to(runs / "pendulum-a")
    assert [r.path.resolve() for r in list_runs(root)] == [(runs / "pendulum-a").resolve()]


def test_a_folder_named_twice_on_the_command_line_is_one_row(runs: Path, tmp_path: Path) -> None:
    from ddpg_tui.ui.screens.runs import with_chosen

    named = [runs / "pendulum-a", runs / "pendulum-a" / ".." / "pendulum-a"]
    assert len(with_chosen(list_runs(tmp_path / "nothing"), named)) == 1
