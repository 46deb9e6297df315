"""The session's side of a resumed run: the history it reads back from metrics.jsonl."""

from __future__ import annotations

import json
from pathlib import Path

from agents.events import EpisodeEnd, EvalResult, UpdateStats
from ddpg_tui.request import TrainingRequest
from ddpg_tui.ui.session import TrainingSession, read_history


def write_rows(path: Path, rows: list[dict | str]) -> None:
    path.write_text("".join((row if isinstance(row, str) else json.dumps(row)) + "\n" for row in rows))


def test_history_keeps_the_rows_up_to_the_checkpoint_and_skips_what_it_cannot_read(tmp_path: Path) -> None:
    metrics = tmp_path / "metrics.jsonl"
    write_rows(metrics, [
        {"kind": "episode", "step": 200, "episode": 1, "episode_return": -1200.5, "length": 200},
        {"kind": "update", "step": 300, "updates": 200, "critic_loss": 1.5, "actor_loss": 20.0, "mean_q": -20.0},
        {"kind": "eval", "step": 400, "mean": -900.0, "std": 10.0, "returns": [-890.0, -910.0], "best": True,
         "a_field_of_a_later_version": 1},
        {"kind": "episode", "step": 400, "episode": 2, "episode_return": -1100.0},  # lacks a field
        {"kind": "histogram", "step": 400},  # a kind this version does not know
        '{"kind": "episode", "step": 40',  # cut by a crash mid-write
        {"kind": "episode", "step": 600, "episode": 3, "episode_return": -800.0, "length": 200},  # after the save
    ])
    assert read_history(metrics, up_to_step=400) == [
        EpisodeEnd(200, 1, -1200.5, 200),
        UpdateStats(300, 200, 1.5, 20.0, -20.0),
        EvalResult(400, -900.0, 10.0, (-890.0, -910.0), best=True),
    ]


def test_a_missing_metrics_file_is_an_empty_history(tmp_path: Path) -> None:
    assert read_history(tmp_path / "metrics.jsonl", up_to_step=1000) == []


def test_loaded_history_is_drawn_and_logged_once(tmp_path: Path) -> None:
    session = TrainingSession(TrainingRequest(None, tmp_path, tmp_path / "checkpoints" / "latest.pt"))
    session.load_history([EpisodeEnd(200, 1, -1200.0, 200), EpisodeEnd(400, 2, -1000.0, 200),
                          UpdateStats(400, 300, 1.0, 10.0, -10.0), EvalResult(400, -950.0, 5.0, (), best=True)])
    snapshot = session.snapshot()
    assert snapshot.episode_steps == (200, 400) and snapshot.episode_returns == (-1200.0, -1000.0)
    assert snapshot.loss_updates == (300,) and snapshot.best_eval == EvalResult(400, -950.0, 5.0, (), best=True)
    assert [text for *_, text in snapshot.log] == ["resumed: 2 episodes and 1 evaluation from metrics.jsonl"]


def test_every_requested_save_is_news_but_periodic_ones_only_go_to_the_log(tmp_path: Path) -> None:
    from agents.events import Saved
    from ddpg_tui.request import TrainingRequest
    from ddpg_tui.ui.session import TrainingSession

    session = TrainingSession(TrainingRequest(None, tmp_path))
    latest = tmp_path / "checkpoints" / "latest.pt"
    session.sink(Saved(5000, latest, "periodic"))
    assert session.snapshot().toasted_saves == 0
    session.sink(Saved(6100, latest, "requested"))
    session.sink(Saved(7300, latest, "requested"))  # the same path again must still be news
    snapshot = session.snapshot()
    assert snapshot.toasted_saves == 2 and snapshot.last_saved == str(latest)
    assert sum("saved latest.pt" in str(entry) for entry in snapshot.log) == 3
