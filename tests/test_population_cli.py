"""`ddpg-tui train --seeds`: a population headless (or handed to the app), each member an ordinary run folder."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from agents.checkpoint import load_checkpoint
from ddpg_tui.cli.main import main

TINY = ["--set", "hidden_sizes=[16,16]", "--set", "learning_starts=100", "--set", "batch_size=32",
        "--set", "eval_every=200", "--set", "eval_episodes=1", "--set", "buffer_size=1000"]


def test_seeds_train_one_population_with_a_run_folder_per_member(tmp_path: Path, capsys) -> None:
    run_dir = tmp_path / "pop"
    code = main(["train", "--preset", "pendulum", "--seeds", "3,5,8", "--headless", "--steps", "400",
                 "--run-dir", str(run_dir), *TINY])
    out = capsys.readouterr().out
    assert code == 0, out
    for seed in (3, 5, 8):
        config = tomllib.loads((run_dir / f"seed-{seed}" / "config.toml").read_text())["hyperparameters"]
        assert config["seed"] == seed and config["total_steps"] == 400
        assert (run_dir / f"seed-{seed}" / "checkpoints" / "latest.pt").is_file()
    assert "step       400  eval median" in out and "over 3 seeds" in out
    assert "seed 3 " in out and "seed 8 " in out


@pytest.mark.parametrize(("args", "message"), [
    (["--seeds", "0-3"], "the app needs a terminal and stdout is not one; add --headless"),
    (["--seeds", "0-3", "--headless", "--seed", "2"], "--seeds and --seed: give one"),
    (["--seeds", "4", "--headless"], "a population needs at least two seeds"),
    (["--seeds", "three", "--headless"], "expected a range or a list"),
    (["--seeds", "0-2", "--headless", "--resume", "runs/x"], "--seeds starts a new population"),
])
def test_bad_seeds_are_refused_in_one_line(args: list[str], message: str, tmp_path: Path, capsys,
                                           monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["train", *args]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_a_member_folder_that_holds_a_run_is_not_overwritten(tmp_path: Path, capsys) -> None:
    run_dir = tmp_path / "pop"
    args = ["train", "--preset", "pendulum", "--seeds", "0-1", "--headless", "--steps", "200",
            "--run-dir", str(run_dir), *TINY]
    assert main(args) == 0
    before = (run_dir / "seed-1" / "metrics.jsonl").read_text()
    capsys.readouterr()
    assert main(args) == 2
    assert f"{run_dir / 'seed-0'} already holds a run" in capsys.readouterr().err
    assert (run_dir / "seed-1" / "metrics.jsonl").read_text() == before


def test_resume_carries_a_whole_population_on(tmp_path: Path, capsys) -> None:
    run_dir = tmp_path / "pop"
    assert main(["train", "--preset", "pendulum", "--seeds", "0-1", "--headless", "--steps", "200",
                 "--run-dir", str(run_dir), *TINY]) == 0
    assert f"resume:   ddpg-tui train --resume {run_dir} --headless --steps 400" in capsys.readouterr().out
    assert main(["train", "--resume", str(run_dir), "--headless"]) == 2
    assert "already finished 200 of 200 steps" in capsys.readouterr().err
    assert main(["train", "--resume", str(run_dir)]) == 2  # the dashboard, but stdout is captured here
    assert "the app needs a terminal" in capsys.readouterr().err
    assert main(["train", "--resume", str(run_dir), "--headless", "--steps", "400"]) == 0
    out = capsys.readouterr().out
    assert f"resuming the population {run_dir} (seeds 0, 1) at step 200 of 400" in out
    for seed in (0, 1):
        assert load_checkpoint(run_dir / f"seed-{seed}" / "checkpoints" / "latest.pt")["counters"]["step"] == 400


def opened_in_the_app(monkeypatch) -> list:
    """The requests `train` hands the app, with stdout taken for a terminal and the app itself left out."""
    import sys

    from ddpg_tui.ui import app

    opened: list = []
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)
    monkeypatch.setattr(app, "run_app", lambda request: opened.append(request) or 0)
    return opened


def test_seeds_without_headless_open_the_population_in_the_app(tmp_path: Path, monkeypatch) -> None:
    from ddpg_tui.population import PopulationRequest

    opened = opened_in_the_app(monkeypatch)
    assert main(["train", "--preset", "pendulum", "--seeds", "2-4", "--steps", "300",
                 "--run-dir", str(tmp_path / "pop")]) == 0
    (request,) = opened
    assert isinstance(request, PopulationRequest) and not request.resuming
    assert request.seeds == (2, 3, 4) and request.config.total_steps == 300
    assert request.member_dirs() == [tmp_path / "pop" / f"seed-{seed}" for seed in (2, 3, 4)]


def test_resume_without_headless_carries_the_population_on_in_the_app(tmp_path: Path, capsys, monkeypatch) -> None:
    run_dir = tmp_path / "pop"
    assert main(["train", "--preset", "pendulum", "--seeds", "0-1", "--headless", "--steps", "200",
                 "--run-dir", str(run_dir), *TINY]) == 0
    opened = opened_in_the_app(monkeypatch)
    assert main(["train", "--resume", str(run_dir), "--steps", "400"]) == 0
    (request,) = opened
    assert request.resuming and request.seeds == (0, 1) and request.total_steps == 400
    assert request.members == (run_dir / "seed-0", run_dir / "seed-1")
