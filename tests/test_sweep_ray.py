"""Sweeps on a real Ray: two local nodes (`ray.cluster_utils.Cluster`, 1 CPU each), started once for the module.

Every test here runs on both nodes, so the multi-node path (trials on a node that is not the driver's,
the controls actor found across nodes, checkpoints persisted from a remote worker) runs in each of them.
"""

from __future__ import annotations

import json
import logging
import math
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from agents.config import DDPGConfig
from ddpg_tui.sweeps.cluster import connect, quiet_ray_environment
from ddpg_tui.sweeps.spec import NAMESPACE, SweepSpec, create_sweep_folder, write_spec

pytestmark = [
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
    pytest.mark.filterwarnings("ignore::ResourceWarning"),
    pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning"),
    pytest.mark.filterwarnings("ignore::FutureWarning"),
]

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent
THRESHOLD = -1400.0


@pytest.fixture(scope="module")
def cluster() -> Iterator[object]:
    quiet_ray_environment()
    import ray
    from ray.cluster_utils import Cluster

    nodes = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False})
    nodes.add_node(num_cpus=1)
    # The rigged env's module lives here; trial workers import it by its env id.
    ray.init(address=nodes.address, namespace=NAMESPACE, log_to_driver=False, logging_level=logging.ERROR,
             runtime_env={"env_vars": {"PYTHONPATH": str(TESTS)}})
    nodes.wait_for_nodes()
    yield nodes
    ray.shutdown()
    nodes.shutdown()
    # Ray leaves Popen objects of its stopped processes behind; collected later, during another module's
    # test, their ResourceWarnings would fail that test (warnings are errors). Collect them here.
    import gc
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        gc.collect()


def tiny(**changes: object) -> DDPGConfig:
    """Pendulum with nets small enough that a trial of 600 steps takes about a second."""
    return DDPGConfig(env_id="Pendulum-v1", total_steps=600, learning_starts=100, batch_size=32,
                      hidden_sizes=(16, 16), eval_every=200, eval_episodes=1, save_every=200, buffer_size=10_000,
                      device="cpu").replace(**changes)


def new_run(root: Path, name: str, base: DDPGConfig, grid: dict | None = None, seeds: tuple[int, ...] = (0,),
            **spec_fields: object):
    from ddpg_tui.sweeps.driver import SweepRun

    spec = SweepSpec(name=name, label="test", base=base, grid=grid or {}, seeds=seeds, threshold=THRESHOLD,
                     **spec_fields)
    sweep_dir = create_sweep_folder(root, name)
    write_spec(sweep_dir, spec)
    return SweepRun(spec, sweep_dir, connect(None, None), progress_every=0.3)


def eval_rows(run_dir: Path) -> list[dict]:
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    return [row for row in map(json.loads, lines) if row["kind"] == "eval"]


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.05)


def sweep_command(save_every: int) -> tuple[list[str], list[str]]:
    """`ddpg-tui sweep` as a user runs it, and --set options that make its Pendulum trials tiny."""
    installed = shutil.which("ddpg-tui")
    command = [installed] if installed else [sys.executable, "-m", "ddpg_tui"]
    settings = ["learning_starts=100", "batch_size=32", "hidden_sizes=[16,16]", "eval_every=500", "eval_episodes=1",
                f"save_every={save_every}", "buffer_size=10000", "device=cpu"]
    return command, [part for setting in settings for part in ("--set", setting)]


def checkpoint_step(path: Path) -> int:
    from agents.checkpoint import load_checkpoint

    return int(load_checkpoint(path)["counters"]["step"])


def test_a_two_by_two_sweep_completes_on_both_nodes_and_its_summary_matches_each_trials_metrics(
        cluster, tmp_path: Path) -> None:
    import csv

    run = new_run(tmp_path, "grid", tiny(total_steps=400), grid={"actor_lr": (1e-3, 3e-4)}, seeds=(0, 1))
    result = run.fit()
    run.close()

    assert result.state == "finished"
    assert {row.state for row in result.snapshot.trials} == {"finished"}
    assert len({row.node for row in result.snapshot.trials}) == 2, "both nodes ran trials"
    rows = list(csv.DictReader((run.sweep_dir / "summary.csv").open()))
    assert sorted(r["trial"] for r in rows) == sorted(name for name, _, _ in run.spec.trials())
    for row in rows:
        run_dir = run.sweep_dir / row["trial"]
        evals = eval_rows(run_dir)
        assert [e["step"] for e in evals] == [200, 400]
        assert float(row["final_eval"]) == pytest.approx(evals[-1]["mean"], abs=1e-3)
        assert float(row["best_eval"]) == pytest.approx(max(e["mean"] for e in evals), abs=1e-3)
        reached = next((e["step"] for e in evals if e["mean"] >= THRESHOLD), None)
        assert row["steps_to_threshold"] == ("" if reached is None else str(reached))
        assert (int(row["steps"]), row["state"]) == (400, "finished")
        assert float(row["wall_seconds"]) > 0
        config = (run_dir / "config.toml").read_text()
        assert f"actor_lr = {float(row['actor_lr'])!r}" in config and f"seed = {row['seed']}" in config
        assert "threads = 1" in config  # one CPU per trial, so one torch thread
    text = (run.sweep_dir / "summary.md").read_text()
    assert "`actor_lr=0.001`" in text and "`actor_lr=0.0003`" in text
    # The driver's summary writes best.toml too: the first config of the ranking, as a preset file.
    from presets import load_preset_file

    winner = text.split("| 1 | `actor_lr=", 1)[1].split("`", 1)[0]
    assert "IQM 95% CI" in text
    assert load_preset_file(run.sweep_dir / "best.toml").config == run.spec.base.replace(actor_lr=float(winner))

    # A trial is an ordinary run folder: eval and train --resume work on it.
    from agents.evaluation import evaluate_checkpoint
    from agents.trainer import Trainer

    trial = run.sweep_dir / rows[0]["trial"]
    assert evaluate_checkpoint(trial, episodes=1, seed=0).step == 400
    outcome = Trainer(None, None, trial, resume_from=trial / "checkpoints" / "latest.pt", total_steps=600).run()
    assert (outcome.state.value, outcome.step) == ("finished", 600)


def test_a_killed_trial_worker_is_retried_from_its_last_checkpoint(cluster, tmp_path: Path) -> None:
    # Far more steps after the kill point than a slow machine runs between two progress reports, so the
    # kill always lands on a running trial.
    run = new_run(tmp_path, "killed-worker", tiny(total_steps=6000, eval_every=1000, save_every=1000))
    name = run.spec.trials()[0][0]
    killed: list[tuple[int, int]] = []

    def kill_after_a_save() -> None:
        def ready() -> bool:
            row = run.board.row(name)
            return row is not None and row.pid > 0 and row.step >= 2200
        wait_for(ready, 120, "the trial to pass step 2200")
        row = run.board.row(name)
        killed.append((row.pid, row.step))
        os.kill(row.pid, signal.SIGKILL)

    killer = threading.Thread(target=kill_after_a_save, daemon=True)
    killer.start()
    result = run.fit()
    run.close()
    killer.join(5)

    assert killed, "the worker was never killed"
    row = next(r for r in result.snapshot.trials if r.name == name)
    assert row.state == "finished" and row.step == 6000
    assert row.attempts == 2 and row.pid != killed[0][0]
    # Saves fall on episode boundaries here (200 steps on Pendulum): the last before the kill was at 2000 or later.
    assert 2000 <= row.resumed_from <= killed[0][1] and row.resumed_from % 1000 == 0
    steps = [e["step"] for e in eval_rows(run.sweep_dir / name)]
    assert steps == [1000, 2000, 3000, 4000, 5000, 6000], "no evaluation lost or written twice"
    assert checkpoint_step(run.sweep_dir / name / "checkpoints" / "latest.pt") == 6000


def test_stopping_a_trial_and_then_the_sweep_saves_each_and_resume_carries_on_the_rest(
        cluster, tmp_path: Path) -> None:
    from ddpg_tui.sweeps.driver import SweepRun
    from ddpg_tui.sweeps.spec import load_spec

    # Long enough that the other trial cannot finish while the first one is being stopped, even on a slow
    # machine (at 1,600 steps it once did on CI, and the sweep then ended "finished" instead of "paused").
    # Two configs of one seed each: a trial is a config, and stopping one stops all its seeds.
    run = new_run(tmp_path, "stopped", tiny(total_steps=8000, eval_every=2000, save_every=2000),
                  grid={"actor_lr": (1e-3, 3e-4)}, seeds=(0,))
    outcome: list = []
    driver = threading.Thread(target=lambda: outcome.append(run.fit()), daemon=True)
    driver.start()

    def training() -> list:
        return [r for r in run.board.snapshot().trials if r.state == "training" and r.step >= 400]
    wait_for(lambda: len(training()) == 2, 120, "two trials training")
    stopped, other = sorted(training(), key=lambda r: r.name)
    assert run.stop_trial(stopped.name)
    wait_for(lambda: run.board.row(stopped.name).state == "stopped", 60, "the stopped trial to save and end")
    run.stop_sweep()
    driver.join(180)
    run.close()
    assert outcome and outcome[0].state == "paused"
    rows = {r.name: r for r in outcome[0].snapshot.trials}
    paused = rows[other.name]
    assert paused.state == "paused" and 400 <= paused.step < 8000
    assert checkpoint_step(run.sweep_dir / other.name / "checkpoints" / "latest.pt") == paused.step
    stopped_step = rows[stopped.name].step
    assert checkpoint_step(run.sweep_dir / stopped.name / "checkpoints" / "latest.pt") == stopped_step
    stopped_metrics = (run.sweep_dir / stopped.name / "metrics.jsonl").read_bytes()
    # Stopped through Tune's own interruption: Tune wrote its state one last time, after the trial's paused
    # report (a raise from the callback skipped that write, leaving what Tune had saved seconds before).
    (state_file,) = (run.sweep_dir / "tune").glob("experiment_state-*.json")
    saved = {json.loads(trial)["status"]: json.loads(runtime)["last_result"]["seed_reports"]
             for trial, runtime in json.loads(state_file.read_text())["trial_data"]}
    assert [(r["state"], r["step"]) for r in saved["RUNNING"]] == [("paused", paused.step)], saved

    resumed = SweepRun(load_spec(run.sweep_dir), run.sweep_dir, connect(None, None), resume=True, progress_every=0.3)
    result = resumed.fit()
    resumed.close()
    assert result.state == "finished"
    rows = {r.name: r for r in result.snapshot.trials}
    assert rows[stopped.name].state == "stopped" and rows[stopped.name].step == stopped_step, "not redone"
    assert (run.sweep_dir / stopped.name / "metrics.jsonl").read_bytes() == stopped_metrics
    assert rows[other.name].state == "finished" and rows[other.name].resumed_from == paused.step
    assert {r.state for n, r in rows.items() if n != stopped.name} == {"finished"}
    assert "stopped" in (run.sweep_dir / "summary.csv").read_text()




def test_a_resume_on_this_machine_runs_as_many_trials_at_once_as_its_own_jobs_allow(tmp_path: Path) -> None:
    # Started with --jobs 1, resumed with --jobs 2 when a core is free. Tune restores its own limit on trials
    # at once unchanged, so with that limit set the second trial waited for the first one's end.
    command, settings = sweep_command(save_every=100_000)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("RAY_ADDRESS", None)  # a local instance of its own, as a user's sweep starts
    sweep_dir = tmp_path / "runs" / "sweeps" / "jobs"

    def started() -> list[Path]:
        return [m.parent for m in sweep_dir.glob("*/*/metrics.jsonl") if eval_rows(m.parent)]

    def run_until(args: list[str], ready: Callable[[], bool], what: str) -> None:
        driver = subprocess.Popen([*command, "sweep", *args, "--headless"], cwd=tmp_path, env=env,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, process_group=0)
        try:
            wait_for(lambda: ready() or driver.poll() is not None, 180, what)
            assert driver.poll() is None, driver.stderr.read().decode()[-2000:]
            os.killpg(driver.pid, signal.SIGINT)
            assert driver.wait(120) == 130, driver.stderr.read().decode()[-2000:]
        finally:
            if driver.poll() is None:
                os.killpg(driver.pid, signal.SIGKILL)
            driver.wait()
            driver.stderr.close()

    run_until(["--env", "Pendulum-v1", "--grid", "tau=0.005,0.01", "--seeds", "0", "--steps", "200000", *settings,
               "--name", "jobs",
               "--jobs", "1"], lambda: bool(started()), "the first trial's first evaluation")
    assert len(started()) == 1
    run_until(["--resume", str(sweep_dir), "--jobs", "2"], lambda: len(started()) == 2,
              "the second trial to start beside the first")

def test_asha_judges_configs_by_the_median_over_their_seeds_on_a_rigged_env_whose_seeds_do_not_tie(
        cluster, tmp_path: Path) -> None:
    # The rigged env pays seed 1 a bonus and seed 2 a penalty (see test_sweep_rigged_env): the good config
    # (actor_lr=0.01) has one bad seed, each frozen config one lucky seed that beats the good config's bad one.
    # Three configs on two slots: the third starts when a rung already holds the good config's median.
    from test_sweep_rigged_env import ENV_ID

    base = tiny(env_id=ENV_ID, total_steps=400, learning_starts=50, eval_every=50, save_every=100,
                buffer_size=1000, critic_lr=1e-2)
    good, frozen = "actor_lr=0.01", ("actor_lr=1e-07", "actor_lr=2e-07")
    seeds = (0, 1, 2)
    run = new_run(tmp_path, "asha", base, grid={"actor_lr": (1e-2, 1e-7, 2e-7)}, seeds=seeds, scheduler="asha",
                  reeval=2)
    result = run.fit()
    run.close()

    rows = {(r.variant, r.seed): r for r in result.snapshot.trials}
    states = {variant: {rows[(variant, seed)].state for seed in seeds} for variant in (good, *frozen)}
    assert states[good] == {"finished"}, states  # its bad seed too: it was never judged on its own
    assert all(len(s) == 1 for s in states.values()), f"a config's seeds were split: {states}"
    stopped = [variant for variant in frozen if states[variant] == {"early-stopped"}]
    assert stopped, states

    def at(row: object, step: int) -> float:
        return next(mean for s, mean, _ in row.evals if s == step)
    lucky, unlucky = rows[(stopped[0], 1)], rows[(good, 2)]
    assert at(lucky, 100) > at(unlucky, 100), "seed by seed, the stopped config's lucky seed was ahead"
    assert len({round(at(rows[(good, seed)], 100), 3) for seed in seeds}) == 3, "the seeds do not tie"
    early = rows[(stopped[0], 0)]
    assert early.step < 400 and not math.isnan(early.eval_mean)

    # The summary ranks the finished config alone; the stopped ones are below with the step they reached,
    # and --reeval evaluated their seeds too.
    text = (run.sweep_dir / "summary.md").read_text()
    finished, _, below = text.partition("Stopped before the end")
    assert f"| 1 | `{good}` | 3 |" in finished and f"`{stopped[0]}`" not in finished
    assert f"| `{stopped[0]}` | early-stopped | 3 |" in below
    stopped_row = next(line for line in below.splitlines() if f"`{stopped[0]}`" in line)
    assert stopped_row.split("|")[7].strip(), f"the stopped config was not re-evaluated: {stopped_row} {result.message}"


def test_resume_after_a_killed_driver_does_not_redo_finished_trials(cluster, tmp_path: Path) -> None:
    address = cluster.address
    command, settings = sweep_command(save_every=500)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    driver = subprocess.Popen([*command, "sweep", "--env", "Pendulum-v1", "--seeds", "0-2", "--steps", "1000",
                               *settings, "--name", "killed", "--address", address, "--headless"],
                              cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    sweep_dir = tmp_path / "runs" / "sweeps" / "killed"

    def finished_trials() -> list[Path]:
        # Its last row, the final save: the trial's worker lives in the cluster, not in the driver killed below,
        # so a seed read at its final evaluation still appends that row a moment later.
        done = []
        for metrics in sweep_dir.glob("*/*/metrics.jsonl"):
            rows = [json.loads(line) for line in metrics.read_text().splitlines()]
            if any(r["kind"] == "save" and r.get("reason") == "final" and r["step"] == 1000 for r in rows):
                done.append(metrics.parent)
        return done
    try:
        wait_for(lambda: bool(finished_trials()) or driver.poll() is not None, 180, "a first trial to finish")
        assert driver.poll() is None, driver.stderr.read().decode()
        assert len(finished_trials()) < 3  # killed at once: Tune's state may not have recorded anything since
    finally:
        driver.kill()
        driver.wait()
    done = {path.relative_to(sweep_dir): (path / "metrics.jsonl").read_bytes() for path in finished_trials()}

    resumed = subprocess.run([*command, "sweep", "--resume", str(sweep_dir), "--address", address, "--headless"],
                             cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    for name, metrics in done.items():
        assert (sweep_dir / name / "metrics.jsonl").read_bytes() == metrics, f"{name} was trained again"
    summary = (sweep_dir / "summary.csv").read_text().splitlines()
    assert len(summary) == 4 and all(",finished,1000,1000," in line for line in summary[1:]), summary
    for path in sweep_dir.glob("*/seed*"):
        assert [row["step"] for row in eval_rows(path)] == [500, 1000]


async def test_a_sweep_started_from_the_form_runs_in_the_app_and_q_goes_back_to_the_form(
        cluster, tmp_path: Path) -> None:
    from textual.widgets import Input

    from ddpg_tui.ui.app import DDPGApp
    from ddpg_tui.ui.screens.hyperparameters import HyperparametersScreen
    from ddpg_tui.ui.screens.sweep import SweepScreen

    app = DDPGApp(runs_root=tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        app.push_screen(HyperparametersScreen(tiny(total_steps=400), "Pendulum-v1"))
        await pilot.pause()
        box = app.screen.query_one("#field-actor_lr", Input)
        box.focus()
        await pilot.press("ctrl+g")
        box.value = "1e-3, 3e-4"
        await pilot.press("ctrl+t")
        await pilot.pause()
        app.screen.query_one("#sweep-seeds", Input).value = "0"
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert isinstance(app.screen, SweepScreen) and app.sweep is not None
        deadline = time.monotonic() + 180
        while not app.sweep.finished.is_set():
            assert time.monotonic() < deadline, "the sweep did not end"
            await pilot.pause(0.2)
        await pilot.pause(0.5)
        assert app.sweep.result is not None, app.sweep.board.snapshot().message
        assert app.sweep.result.state == "finished"
        assert {(r.variant, r.state) for r in app.screen.last.trials} == {
            ("actor_lr=0.001", "finished"), ("actor_lr=0.0003", "finished")}
        await pilot.press("q")  # the sweep has ended: back to the form it came from
        await pilot.pause()
        assert isinstance(app.screen, HyperparametersScreen)
    sweep_dir = app.sweep.sweep_dir
    assert sweep_dir.parent == tmp_path / "sweeps"
    assert len((sweep_dir / "summary.csv").read_text().splitlines()) == 3
    assert app.sweep.closing_lines()[0].startswith(f"sweep {sweep_dir.name}: finished; summary: ")


def test_ray_tune_imports_and_ray_starts_inside_the_app_whose_stdio_has_no_encoding_or_fileno() -> None:
    # Textual replaces sys.stdout and sys.stderr with captures that have no `encoding` (Tune's import
    # reads it) and a fileno of -1 (ray.init enables faulthandler on stderr).
    script = """
import logging, sys
class Capture:
    def write(self, text): return len(text)
    def flush(self): pass
    def fileno(self): return -1
sys.stdout = sys.stderr = Capture()
from ddpg_tui.ui.screens.sweep import stdio_for_ray
with stdio_for_ray():
    import ray.tune
    import ray
    ray.init(address="local", num_cpus=1, include_dashboard=False, log_to_driver=False, logging_level=logging.ERROR)
ray.shutdown()
assert isinstance(sys.stdout, Capture) and isinstance(sys.stderr, Capture)
"""
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]


def test_a_closing_terminal_hangs_up_the_whole_job_and_every_trial_still_saves(cluster, tmp_path: Path) -> None:
    # A shell runs a command as a process group of its own and, when the terminal closes, sends SIGHUP
    # to that whole group: Ray's GCS and raylet are in it too, and they must outlive the trials' saves.
    # With the module's cluster running (as `ray start` would leave one), the sweep still starts its own.
    command, settings = sweep_command(save_every=100_000)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("RAY_ADDRESS", None)
    driver = subprocess.Popen([*command, "sweep", "--env", "Pendulum-v1", "--seeds", "0-1", "--steps", "200000",
                               *settings, "--name", "hangup", "--jobs", "2", "--headless"],
                              cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                              process_group=0)
    sweep_dir = tmp_path / "runs" / "sweeps" / "hangup"
    try:
        def both_evaluated() -> bool:
            return driver.poll() is not None or sum(
                bool(eval_rows(m.parent)) for m in sweep_dir.glob("*/*/metrics.jsonl")) == 2
        wait_for(both_evaluated, 180, "both trials' first evaluation")
        assert driver.poll() is None, driver.stderr.read().decode()[-2000:]
        os.killpg(driver.pid, signal.SIGHUP)
        code = driver.wait(120)
    finally:
        if driver.poll() is None:
            os.killpg(driver.pid, signal.SIGKILL)
        driver.wait()
    assert code == 129, driver.stderr.read().decode()[-2000:]
    import csv

    rows = list(csv.DictReader((sweep_dir / "summary.csv").open()))
    assert [r["state"] for r in rows] == ["paused", "paused"]
    for row in rows:  # saved on the way out (the periodic saves were 100,000 steps apart)
        assert 500 <= int(row["steps"]) < 200_000
        assert checkpoint_step(sweep_dir / row["trial"] / "checkpoints" / "latest.pt") == int(row["steps"])


def test_resuming_a_sweep_whose_trials_all_finished_keeps_their_results(cluster, tmp_path: Path) -> None:
    # The driver killed after the last trial ended but before the summary: Tune has nothing left to run,
    # and its loop then never steps; the board must still get every trial as it ended.
    from ddpg_tui.sweeps.driver import SweepRun
    from ddpg_tui.sweeps.spec import load_spec

    run = new_run(tmp_path, "all-done", tiny(total_steps=400), seeds=(0, 1))
    first = run.fit()
    run.close()
    assert first.state == "finished"
    (run.sweep_dir / "summary.csv").unlink()
    resumed = SweepRun(load_spec(run.sweep_dir), run.sweep_dir, connect(None, None), resume=True, progress_every=0.3)
    result = resumed.fit()
    resumed.close()
    assert result.state == "finished"
    assert {(r.state, r.step) for r in result.snapshot.trials} == {("finished", 400)}
    assert all(",finished,400,400," in line for line in (run.sweep_dir / "summary.csv").read_text().splitlines()[1:])
