"""`sweep --seeds-together` on a real Ray (the two-node cluster of test_sweep_ray): a config's seeds as one
population in its trial, judged by ASHA as a whole, stopped and resumed as a whole."""

from __future__ import annotations

import math
import threading
from pathlib import Path

import pytest
from test_sweep_ray import (
    checkpoint_step,
    cluster,  # noqa: F401 - the two-node Ray cluster, a fixture of this module too
    eval_rows,
    new_run,
    tiny,
    wait_for,
)
from test_sweep_ray import pytestmark as ray_marks

from ddpg_tui.sweeps.driver import SweepRun
from ddpg_tui.sweeps.space import config_folder

pytestmark = [*ray_marks, pytest.mark.usefixtures("cluster")]


def test_a_sweep_with_seeds_together_trains_each_config_as_one_population_trial(tmp_path: Path) -> None:
    run = new_run(tmp_path, "together", tiny(total_steps=400), grid={"actor_lr": (1e-3, 3e-4)}, seeds=(0, 1),
                  seeds_together=True)
    result = run.fit()
    run.close()

    assert result.state == "finished", result.message
    configs = {config_folder(v.label) for v in run.spec.variants()}
    assert {p.name for p in (run.sweep_dir / "tune").iterdir() if p.is_dir()} == configs, "one Tune trial a config"
    rows = result.snapshot.trials
    assert sorted((r.variant, r.seed, r.state, r.step) for r in rows) == sorted(
        (v, s, "finished", 400) for v in ("actor_lr=0.001", "actor_lr=0.0003") for s in (0, 1))
    for row in rows:
        assert [e["step"] for e in eval_rows(run.sweep_dir / row.name)] == [200, 400]
        assert checkpoint_step(run.sweep_dir / row.name / "checkpoints" / "latest.pt") == 400
    # One population per config: its members share one training clock (seeds in turns each have their own).
    for variant in {r.variant for r in rows}:
        seconds = {r.train_seconds for r in rows if r.variant == variant}
        assert len(seconds) == 1 and seconds.pop() > 0, f"{variant}'s seeds were not one population"
    text = (run.sweep_dir / "summary.md").read_text()
    assert "| 1 | `actor_lr=" in text and "| 2 | `actor_lr=" in text
    assert "its seeds as one population" in text


def test_asha_stops_a_whole_population_config_on_the_median_over_its_seeds(tmp_path: Path) -> None:
    # The rigged env of test_sweep_ray's ASHA test: the good config has one bad seed, each frozen one a lucky seed.
    from test_sweep_rigged_env import ENV_ID

    base = tiny(env_id=ENV_ID, total_steps=400, learning_starts=50, eval_every=50, save_every=100,
                buffer_size=1000, critic_lr=1e-2)
    good, frozen = "actor_lr=0.01", ("actor_lr=1e-07", "actor_lr=2e-07")
    seeds = (0, 1, 2)
    run = new_run(tmp_path, "asha-together", base, grid={"actor_lr": (1e-2, 1e-7, 2e-7)}, seeds=seeds,
                  scheduler="asha", seeds_together=True)
    result = run.fit()
    run.close()

    rows = {(r.variant, r.seed): r for r in result.snapshot.trials}
    states = {variant: {rows[(variant, seed)].state for seed in seeds} for variant in (good, *frozen)}
    assert states[good] == {"finished"}, states
    assert all(len(s) == 1 for s in states.values()), f"a config's seeds were split: {states}"
    stopped = [variant for variant in frozen if states[variant] == {"early-stopped"}]
    assert stopped, states
    for seed in seeds:  # every member saved on its way out, at the one step the population had reached
        row = rows[(stopped[0], seed)]
        assert row.step < 400 and not math.isnan(row.eval_mean)
    steps = {checkpoint_step(run.sweep_dir / rows[(stopped[0], s)].name / "checkpoints" / "latest.pt") for s in seeds}
    assert len(steps) == 1 and 0 < steps.pop() < 400


def test_s_stops_one_population_config_and_a_stopped_sweep_resumes_the_others_members_where_they_saved(
        tmp_path: Path) -> None:
    from ddpg_tui.sweeps.cluster import connect
    from ddpg_tui.sweeps.spec import load_spec
    from ddpg_tui.sweeps.trial import STOPPED_FILE

    run = new_run(tmp_path, "together-resume", tiny(total_steps=6000, eval_every=1000, save_every=1000),
                  grid={"actor_lr": (1e-3, 3e-4)}, seeds=(0, 1), seeds_together=True)
    outcome: list = []
    driver = threading.Thread(target=lambda: outcome.append(run.fit()), daemon=True)
    driver.start()

    def training(variant: str | None = None) -> list:
        return [r for r in run.board.snapshot().trials
                if r.state == "training" and r.step >= 400 and variant in (None, r.variant)]
    wait_for(lambda: len(training()) == 4, 120, "both configs' members training")
    stopped_config, other_config = "actor_lr=0.001", "actor_lr=0.0003"
    assert run.stop_trial(f"{stopped_config}/seed0")  # `s` on one seed's row stops its whole config
    wait_for(lambda: {r.state for r in run.board.snapshot().trials if r.variant == stopped_config} == {"stopped"},
             60, "the stopped config's members to save and end")
    assert (run.sweep_dir / stopped_config / STOPPED_FILE).exists()
    run.stop_sweep()
    driver.join(180)
    run.close()
    assert outcome and outcome[0].state == "paused", outcome and outcome[0].message
    rows = {r.name: r for r in outcome[0].snapshot.trials}

    def saved_steps(variant: str) -> set[int]:
        return {checkpoint_step(run.sweep_dir / name / "checkpoints" / "latest.pt")
                for name, r in rows.items() if r.variant == variant}
    assert len(saved_steps(stopped_config)) == 1, "the stopped config saved every member, at one step"
    assert {r.state for r in rows.values() if r.variant == other_config} == {"paused"}
    (paused_at,) = saved_steps(other_config)
    assert paused_at < 6000
    stopped_metrics = {n: (run.sweep_dir / n / "metrics.jsonl").read_bytes() for n, r in rows.items()
                       if r.variant == stopped_config}

    resumed = SweepRun(load_spec(run.sweep_dir), run.sweep_dir, connect(None, None), resume=True, progress_every=0.3)
    result = resumed.fit()
    resumed.close()
    assert result.state == "finished", result.message
    after = [r for r in result.snapshot.trials if r.variant == other_config]
    for row in after:
        assert (row.state, row.step, row.resumed_from) == ("finished", 6000, paused_at)
        assert [e["step"] for e in eval_rows(run.sweep_dir / row.name)] == [1000, 2000, 3000, 4000, 5000, 6000]
    assert len({r.train_seconds for r in after}) == 1, "resumed as one population, not in turns"
    for name, metrics in stopped_metrics.items():
        assert (run.sweep_dir / name / "metrics.jsonl").read_bytes() == metrics, f"{name} was trained on"
        assert next(r for r in result.snapshot.trials if r.name == name).state == "stopped"


def test_a_killed_population_trial_is_retried_and_resumes_every_member_from_the_marker(tmp_path: Path) -> None:
    import os
    import signal

    run = new_run(tmp_path, "together-killed", tiny(total_steps=6000, eval_every=1000, save_every=1000),
                  seeds=(0, 1), seeds_together=True)
    names = [name for name, _, _ in run.spec.trials()]
    killed: list[tuple[int, int]] = []

    def kill_after_a_save() -> None:
        def ready() -> bool:
            row = run.board.row(names[0])
            return row is not None and row.pid > 0 and row.step >= 2200
        wait_for(ready, 120, "the population to pass step 2200")
        row = run.board.row(names[0])
        killed.append((row.pid, row.step))
        os.kill(row.pid, signal.SIGKILL)

    killer = threading.Thread(target=kill_after_a_save, daemon=True)
    killer.start()
    result = run.fit()
    run.close()
    killer.join(5)

    assert killed, "the worker was never killed"
    rows = [r for r in result.snapshot.trials if r.name in names]
    assert len(rows) == 2, (names, [(r.name, r.state) for r in result.snapshot.trials], result.message)
    resumed_from = {r.resumed_from for r in rows}
    assert len(resumed_from) == 1, resumed_from
    at = min(resumed_from)
    assert 2000 <= at <= killed[0][1] and at % 1000 == 0, (at, killed)
    for row in rows:
        assert (row.state, row.step, row.attempts) == ("finished", 6000, 2) and row.pid != killed[0][0]
        assert [e["step"] for e in eval_rows(run.sweep_dir / row.name)] == [1000, 2000, 3000, 4000, 5000, 6000]
        assert checkpoint_step(run.sweep_dir / row.name / "checkpoints" / "latest.pt") == 6000
    assert len({r.train_seconds for r in rows}) == 1, "retried as one population, not in turns"


def test_the_command_lines_seeds_together_reaches_the_trials_and_is_written_to_sweep_json(
        tmp_path: Path, request: pytest.FixtureRequest) -> None:
    import json
    import os
    import subprocess

    from test_sweep_ray import ROOT, sweep_command

    command, settings = sweep_command(save_every=500)
    address = request.getfixturevalue("cluster").address
    done = subprocess.run([*command, "sweep", "--env", "Pendulum-v1", "--seeds", "0-1", "--steps", "1000", *settings,
                           "--seeds-together", "--name", "cli", "--address", address, "--headless"],
                          cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    sweep_dir = tmp_path / "runs" / "sweeps" / "cli"
    assert json.loads((sweep_dir / "sweep.json").read_text())["seeds_together"] is True
    assert "its seeds as one population" in (sweep_dir / "summary.md").read_text()
    summary = (sweep_dir / "summary.csv").read_text().splitlines()
    assert len(summary) == 3 and all(",finished,1000,1000," in line for line in summary[1:]), summary
