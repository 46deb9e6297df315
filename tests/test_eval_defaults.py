"""`eval` and `watch` default to the episodes of the run's own in-run evaluation."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agents.config import DDPGConfig
from agents.evaluation import evaluation_seed, load_checkpoint_policy
from agents.trainer import Trainer
from ddpg_tui.cli.main import main

SEED = 7  # not 0, so that the old default (--seed 0) gives other episodes


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    config = DDPGConfig(env_id="Pendulum-v1", total_steps=400, learning_starts=100, batch_size=16,
                        hidden_sizes=(8,), eval_every=200, eval_episodes=3, threads=1, device="cpu", seed=SEED)
    run = tmp_path_factory.mktemp("defaults") / "run"
    Trainer(config, None, run).run()
    return run


def last_in_run_evaluation(run: Path) -> dict:
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    return [row for row in rows if row["kind"] == "eval"][-1]


def test_eval_with_defaults_reports_the_runs_last_in_run_evaluation(run_dir: Path, capsys) -> None:
    dashboard = last_in_run_evaluation(run_dir)
    assert main(["eval", str(run_dir), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["step"] == dashboard["step"] == 400  # latest.pt is the checkpoint that evaluation scored
    assert report["episodes"] == 3 and report["seed"] == evaluation_seed(SEED)
    assert report["returns"] == pytest.approx(dashboard["returns"], abs=1e-9)
    assert report["mean"] == pytest.approx(dashboard["mean"], abs=1e-9)


def test_an_explicit_seed_still_picks_other_episodes(run_dir: Path, capsys) -> None:
    assert main(["eval", str(run_dir), "--json", "--seed", "0", "--episodes", "3"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["seed"] == 0 and report["mean"] != pytest.approx(last_in_run_evaluation(run_dir)["mean"])


def test_watch_starts_from_the_same_episodes(run_dir: Path) -> None:
    loaded = load_checkpoint_policy(run_dir)
    try:
        assert loaded.first_seed(None) == evaluation_seed(SEED) and loaded.first_seed(5) == 5
    finally:
        loaded.env.close()


@pytest.mark.parametrize("command", ["eval", "watch"])
def test_help_says_which_episodes_are_the_default(command: str, capsys) -> None:
    with pytest.raises(SystemExit):
        main([command, "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "the episodes of the in-run evaluation of the checkpoint's run" in text
