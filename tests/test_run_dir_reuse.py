"""A folder that holds a run is never trained into afresh, however it is named."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import pytest

from agents.config import DDPGConfig
from agents.run_files import existing_run
from agents.trainer import Trainer
from ddpg_tui.cli.commands import train
from ddpg_tui.request import UsageError

TINY = DDPGConfig(total_steps=150, learning_starts=100, batch_size=16, hidden_sizes=(8,), eval_every=0,
                  eval_episodes=1, threads=1)


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory) -> Path:
    run_dir = tmp_path_factory.mktemp("reuse") / "runs" / "done"
    Trainer(TINY, None, run_dir).run()
    return run_dir


def request_for(run_dir: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    train.add_arguments(parser)
    return parser.parse_args(["--run-dir", run_dir, "--headless"])


def folder_contents(run_dir: Path) -> dict[str, bytes]:
    return {str(p.relative_to(run_dir)): p.read_bytes() for p in sorted(run_dir.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("naming", ["relative", "absolute", "trailing-slash", "symlink"])
def test_a_folder_holding_a_run_is_refused_however_it_is_named(finished_run: Path, naming: str,
                                                               monkeypatch) -> None:
    monkeypatch.chdir(finished_run.parent.parent)
    link = finished_run.parent / "link"
    if naming == "symlink" and not link.exists():
        link.symlink_to(finished_run, target_is_directory=True)
    name = {"relative": "runs/done", "absolute": str(finished_run), "trailing-slash": "runs/done/",
            "symlink": "runs/link"}[naming]
    before = folder_contents(finished_run)
    with pytest.raises(UsageError, match=r"already holds a run \(step 150 of 150\); resume it with --resume"):
        train.resolve_training_request(request_for(name))
    assert folder_contents(finished_run) == before


def test_an_empty_or_missing_folder_is_free(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    assert existing_run(tmp_path / "empty") is None
    assert existing_run(tmp_path / "missing") is None
    os.chdir(tmp_path)
    assert train.resolve_training_request(request_for("empty")).run_dir == Path("empty")
