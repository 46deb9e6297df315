"""Run folders: names that never collide, and metrics that a resume trims to its checkpoint."""

from __future__ import annotations

import json
from pathlib import Path

from agents.events import EpisodeEnd, EvalResult
from agents.run_files import RunFiles, claim_run_dir


def test_two_runs_started_in_the_same_second_get_distinct_folders(tmp_path: Path) -> None:
    folders = [claim_run_dir(tmp_path, "pendulum") for _ in range(3)]
    assert len(set(folders)) == 3
    assert all(folder.is_dir() and folder.parent == tmp_path for folder in folders)


def test_drop_metrics_after_keeps_rows_up_to_the_step_and_skips_a_torn_last_line(tmp_path: Path) -> None:
    files = RunFiles(tmp_path)
    for step in (100, 200, 300):
        files.record(EpisodeEnd(step, step // 100, -1.0, 100))
    files.record(EvalResult(200, -1.0, 0.0, (-1.0,)))
    files.close()
    with files.metrics_path.open("a") as metrics:
        metrics.write('{"kind": "episode", "st')  # a crash mid-write
    files.drop_metrics_after(200)
    rows = [json.loads(line) for line in files.metrics_path.read_text().splitlines()]
    assert [(row["kind"], row["step"]) for row in rows] == [("episode", 100), ("episode", 200), ("eval", 200)]
