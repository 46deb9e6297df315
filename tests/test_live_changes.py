"""A run folder keeps every live change: rows in metrics.jsonl, the starting and the effective config,
compare and the resumed dashboard show them, and a rerun of the recorded requests repeats the run."""

from __future__ import annotations

import json
import tomllib
from collections.abc import Callable
from pathlib import Path

import pytest

from agents.config import ConfigError, DDPGConfig
from agents.controls import Command, Controls
from agents.events import ConfigChanged
from agents.run_files import effective_config, existing_run, recorded_requests
from agents.trainer import Trainer
from ddpg_tui.request import TrainingRequest
from ddpg_tui.sweeps.history import FieldValue, compare_rows, read_any
from ddpg_tui.ui.run_text import differences_text
from ddpg_tui.ui.session import TrainingSession, read_history

CURVES = ("episode", "update", "eval")


def rows(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def after_steps(trainer: Trainer, plan: dict[int, list[Callable[[], object]]]) -> None:
    """Call each of plan[N] right after env step N: the commands they queue are applied before step N + 1,
    wherever N falls (mid-episode too), exactly as a key pressed during step N + 1's wait would be."""
    real = trainer._env_step

    def step() -> None:
        real()
        for action in plan.pop(trainer.step, []):
            action()

    trainer._env_step = step  # type: ignore[method-assign]


def run_a(config: DDPGConfig, run_dir: Path) -> Trainer:
    """Pause and resume at 150, actor_lr halved at 250 (mid-episode), a requested save at 300."""
    trainer = Trainer(config, None, run_dir)
    controls = trainer.controls
    after_steps(trainer, {150: [controls.pause, controls.resume], 250: [lambda: controls.set(actor_lr=5e-4)],
                          300: [controls.save]})
    trainer.run()
    return trainer


@pytest.fixture
def config(tiny_config: DDPGConfig) -> DDPGConfig:
    return tiny_config.replace(eval_every=200, save_every=200)


def test_a_change_from_the_key_is_queued_with_its_source_and_an_unknown_source_is_refused() -> None:
    controls = Controls()
    controls.set(actor_lr=5e-4)
    controls.set(source="channel", gamma=0.9)
    assert controls.next() == Command("set", {"actor_lr": 5e-4}, "key")
    assert controls.next() == Command("set", {"gamma": 0.9}, "channel")
    with pytest.raises(ConfigError, match="unknown source 'ssh'"):
        controls.set(source="ssh", gamma=0.9)


def test_changes_saves_and_pauses_are_rows_and_the_curve_readers_skip_them(config: DDPGConfig, tmp_path: Path) -> None:
    run_dir = tmp_path / "a"
    run_a(config, run_dir)
    record = [row for row in rows(run_dir) if row["kind"] not in CURVES]
    assert record == [
        {"kind": "pause", "step": 150}, {"kind": "resume", "step": 150},
        {"kind": "save", "step": 200, "file": "checkpoints/best.pt", "reason": "best"},
        {"kind": "save", "step": 200, "file": "checkpoints/latest.pt", "reason": "periodic"},
        {"kind": "change", "step": 250, "field": "actor_lr", "old": 0.001, "new": 0.0005, "source": "key"},
        {"kind": "save", "step": 300, "file": "checkpoints/latest.pt", "reason": "requested"},
        *[row for row in record if row["step"] == 400],  # the best save depends on the returns
    ]
    assert {"kind": "save", "step": 400, "file": "checkpoints/latest.pt", "reason": "final"} in record
    # The readers of curves and steps take only their own rows.
    assert existing_run(run_dir) == (400, 400)
    assert read_any(run_dir).series[0].steps == (200, 400)
    assert read_any(run_dir).steps == 400


def test_config_toml_is_the_start_and_config_effective_toml_the_last_save(config: DDPGConfig, tmp_path: Path) -> None:
    run_dir = tmp_path / "a"
    run_a(config, run_dir)
    start = tomllib.loads((run_dir / "config.toml").read_text())
    effective = tomllib.loads((run_dir / "config.effective.toml").read_text())
    assert start["hyperparameters"]["actor_lr"] == 0.001
    assert effective["hyperparameters"]["actor_lr"] == 0.0005
    assert effective_config(run_dir) == (effective, {"actor_lr": 250})  # derivable from config.toml + rows


def test_a_resume_keeps_the_start_uses_the_effective_config_and_records_its_own_changes(
        config: DDPGConfig, tmp_path: Path) -> None:
    run_dir = tmp_path / "a"
    run_a(config, run_dir)
    start = (run_dir / "config.toml").read_text()
    resumed = Trainer(None, None, run_dir, resume_from=run_dir / "checkpoints" / "latest.pt", total_steps=500)
    assert resumed.config.actor_lr == 0.0005
    resumed.run()
    assert (run_dir / "config.toml").read_text() == start  # it used to be rewritten with the changed config
    assert [row for row in rows(run_dir) if row["kind"] == "change"][-1] == {
        "kind": "change", "step": 400, "field": "total_steps", "old": 400, "new": 500, "source": "resume"}
    data, changed = effective_config(run_dir)
    assert (data["hyperparameters"]["actor_lr"], data["hyperparameters"]["total_steps"]) == (0.0005, 500)
    assert changed == {"actor_lr": 250, "total_steps": 400}
    assert tomllib.loads((run_dir / "config.effective.toml").read_text()) == data


def test_compare_shows_the_effective_value_and_the_step_it_changed_at(config: DDPGConfig, tmp_path: Path,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    from ddpg_tui.cli.commands.compare import print_comparison

    run_a(config, tmp_path / "a")
    Trainer(config, None, tmp_path / "b").run()
    records = [read_any(tmp_path / "a"), read_any(tmp_path / "b")]
    _, differences = compare_rows(records)
    # a ends at 0.0005, b at 0.001; and a's value says it was changed live.
    assert dict(differences)["actor_lr"] == [FieldValue(0.0005, changed_at=250), FieldValue(0.001)]
    assert dict(differences_text(differences))["actor_lr"] == ["0.0005 (changed live at step 250)", "0.001"]
    print_comparison(records)
    assert "0.0005 (changed live at step 250)" in capsys.readouterr().out


def test_a_field_changed_live_is_listed_even_where_the_runs_end_equal(config: DDPGConfig, tmp_path: Path) -> None:
    run_a(config, tmp_path / "a")
    Trainer(config.replace(actor_lr=5e-4), None, tmp_path / "b").run()
    _, differences = compare_rows([read_any(tmp_path / "a"), read_any(tmp_path / "b")])
    assert dict(differences_text(differences))["actor_lr"] == ["0.0005 (changed live at step 250)", "0.0005"]


def test_the_resumed_dashboard_lists_the_recorded_changes_in_its_events(config: DDPGConfig, tmp_path: Path) -> None:
    run_dir = tmp_path / "a"
    run_a(config, run_dir)
    history = read_history(run_dir / "metrics.jsonl", up_to_step=400)
    assert ConfigChanged(250, {"actor_lr": 0.0005}, {"actor_lr": 0.001}, "key") in history
    assert not any(isinstance(e, ConfigChanged) for e in read_history(run_dir / "metrics.jsonl", up_to_step=200))
    session = TrainingSession(TrainingRequest(None, run_dir, run_dir / "checkpoints" / "latest.pt"))
    session.load_history(history)
    assert (250, "set actor_lr=0.0005") in [(step, text) for _, level, step, text in session.snapshot().log
                                            if level == "config"]


def test_a_rerun_of_the_recorded_requests_repeats_the_run_row_for_row(config: DDPGConfig, tmp_path: Path) -> None:
    run_a(config, tmp_path / "a")
    requests = recorded_requests(tmp_path / "a")
    assert [(step, c.name) for step, c in requests] == [(150, "pause"), (150, "resume"), (250, "set"), (300, "save")]
    rerun = Trainer(config, None, tmp_path / "b")  # the same seed: the config of a's config.toml
    plan: dict[int, list[Callable[[], object]]] = {}
    for step, command in requests:
        plan.setdefault(step, []).append(lambda command=command: rerun.controls.request(command))
    after_steps(rerun, plan)
    rerun.run()
    a, b = rows(tmp_path / "a"), rows(tmp_path / "b")
    assert [row for row in a if row["kind"] == "update"]  # losses are compared, not only returns
    assert b == a
    # ... and the requests did shape them: without them the same seed gives other losses after step 250.
    Trainer(config, None, tmp_path / "c").run()
    plain = [row for row in rows(tmp_path / "c") if row["kind"] == "update" and row["step"] > 250]
    assert plain != [row for row in a if row["kind"] == "update" and row["step"] > 250]


def test_a_stop_while_paused_is_recorded_and_a_rerun_stops_there_too(config: DDPGConfig, tmp_path: Path) -> None:
    first = Trainer(config, None, tmp_path / "a")
    after_steps(first, {170: [first.controls.pause, first.controls.stop]})
    assert first.run().step == 170
    assert [row for row in rows(tmp_path / "a") if row["kind"] in ("pause", "resume", "stop")] == [
        {"kind": "pause", "step": 170}, {"kind": "stop", "step": 170}]
    rerun = Trainer(config, None, tmp_path / "b")
    plan: dict[int, list[Callable[[], object]]] = {}
    for step, command in recorded_requests(tmp_path / "a"):
        plan.setdefault(step, []).append(lambda command=command: rerun.controls.request(command))
    after_steps(rerun, plan)
    assert rerun.run().step == 170  # without the stop it would wait paused for ever
    assert rows(tmp_path / "b") == rows(tmp_path / "a")


def test_the_folder_check_and_compare_read_total_steps_as_changed_live(tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text(DDPGConfig(total_steps=1500).to_toml())
    lines = [json.dumps(row) for row in [
        {"kind": "episode", "step": 200, "episode": 1, "episode_return": -1.0, "length": 200},
        {"kind": "change", "step": 700, "field": "total_steps", "old": 1500, "new": 900, "source": "key"},
        {"kind": "pause", "step": 900},
    ]]
    lines.append('{"kind": "change", "step": 9')  # cut by a crash mid-write
    (tmp_path / "metrics.jsonl").write_text("\n".join(lines) + "\n")
    assert existing_run(tmp_path) == (900, 900)  # config.toml alone says 1,500
    record = read_any(tmp_path)
    assert record.total_steps == 900 and record.series[0].changed == {"total_steps": 700}
