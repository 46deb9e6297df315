"""One writer per run folder (an flock on `<run>/.lock`); readers never take it; no terminal, no app."""

from __future__ import annotations

import gc
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from agents.config import DDPGConfig
from agents.envs import EnvError
from agents.run_files import RunLock, RunLockedError, refuse_if_locked
from agents.trainer import Trainer

ROOT = Path(__file__).resolve().parent.parent
TINY = DDPGConfig(total_steps=150, learning_starts=100, batch_size=16, hidden_sizes=(8,), eval_every=0,
                  eval_episodes=1, threads=1)
ENV = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "200"}


def ddpg_tui(cwd: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """The command with stdout a pipe, as in a CI log or `| tee`."""
    return subprocess.run([sys.executable, "-m", "ddpg_tui", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, env=ENV, stdin=subprocess.DEVNULL)


def folder_contents(run_dir: Path) -> dict[str, bytes]:
    return {str(p.relative_to(run_dir)): p.read_bytes() for p in sorted(run_dir.rglob("*")) if p.is_file()}


# RunLock in one process ----------------------------------------------------------------


def test_two_open_files_on_one_folder_exclude_each_other_until_released(tmp_path: Path) -> None:
    run_dir = tmp_path / "runs" / "x"
    first = RunLock(run_dir).acquire()
    assert first.held and (run_dir / ".lock").read_text().strip() == str(os.getpid())
    with pytest.raises(RunLockedError) as refused:
        RunLock(run_dir).acquire()
    assert str(refused.value) == f"{run_dir} is being trained by process {os.getpid()}; attach to it, or stop it first"
    with pytest.raises(RunLockedError):
        refuse_if_locked(run_dir)
    first.release()
    first.release()  # twice is harmless
    refuse_if_locked(run_dir)
    with RunLock(run_dir) as again:  # a retry in the same process takes it again
        assert again.held
    assert not again.held
    RunLock(run_dir).acquire().release()


def test_a_trainer_refuses_a_folder_another_writer_holds_and_writes_nothing(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    with RunLock(run_dir):
        before = folder_contents(run_dir)
        with pytest.raises(RunLockedError, match="is being trained by process"):
            Trainer(TINY, None, run_dir)
        assert folder_contents(run_dir) == before


def test_the_lock_is_let_go_when_a_run_ends_or_fails_to_build_so_a_retry_in_this_process_can_reopen(
        tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    trainer = Trainer(TINY, None, run_dir)
    with pytest.raises(RunLockedError):
        RunLock(run_dir).acquire()  # held from the start, not only while run() runs
    trainer.run()
    assert not trainer.run_lock.held
    # A Ray retry in the same actor: the same folder, reopened by a new Trainer.
    resumed = Trainer(None, None, run_dir, resume_from=run_dir / "checkpoints" / "latest.pt", total_steps=250)
    assert resumed.run().step == 250
    never_run = Trainer(TINY, None, tmp_path / "never-run")
    del never_run
    gc.collect()
    RunLock(tmp_path / "never-run").acquire().release()  # collected: let go, and no unclosed-file warning
    broken = tmp_path / "broken"
    with pytest.raises(EnvError):
        Trainer(TINY.replace(env_id="NoSuchEnv-v9"), None, broken)
    RunLock(broken).acquire().release()


def test_eval_of_a_run_being_trained_neither_waits_nor_is_refused(tmp_path: Path, capsys) -> None:
    from ddpg_tui.cli.main import main

    run_dir = tmp_path / "run"
    Trainer(TINY, None, run_dir).run()
    with RunLock(run_dir):  # a writer holds it (flock excludes other open files in this process too)
        started = time.monotonic()
        assert main(["eval", str(run_dir), "--episodes", "1"]) == 0, capsys.readouterr().err
        assert time.monotonic() - started < 60


# Two real processes ------------------------------------------------------------------


def start_writer(tmp_path: Path, run_dir: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "ddpg_tui", "train", "--headless", "--run-dir", run_dir, "--steps", "1000000",
         "--set", "hidden_sizes=[8]", "--set", "learning_starts=100", "--set", "batch_size=16",
         "--set", "eval_every=0", "--set", "save_every=300", "--set", "threads=1", "--set", "buffer_size=20000"],
        cwd=tmp_path, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)


def wait_for(path: Path, writer: subprocess.Popen[bytes], timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert writer.poll() is None, "the first writer ended early"
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.2)


@pytest.mark.slow
def test_a_second_writer_is_refused_in_one_line_and_the_lock_dies_with_the_holder(tmp_path: Path) -> None:
    from agents.checkpoint import load_checkpoint

    writer = start_writer(tmp_path, "runs/x")
    run_dir = tmp_path / "runs" / "x"
    try:
        wait_for(run_dir / "checkpoints" / "latest.pt", writer)
        os.kill(writer.pid, signal.SIGSTOP)  # still holding the lock, but writing nothing while we look
        time.sleep(0.5)
        before = folder_contents(run_dir)
        expected = f"runs/x is being trained by process {writer.pid}; attach to it, or stop it first"
        for second in (["train", "--resume", "runs/x", "--headless"],
                       ["train", "--run-dir", "runs/x", "--headless", "--steps", "500"]):
            result = ddpg_tui(tmp_path, *second)
            assert result.returncode == 2, result.stderr
            assert result.stderr.strip().splitlines() == [f"ddpg-tui: error: {expected}"], second
        assert ddpg_tui(tmp_path, "eval", "runs/x", "--episodes", "1").returncode == 0  # readers are not refused
        assert folder_contents(run_dir) == before
    finally:
        writer.kill()  # SIGKILL: no finally, no close; only the kernel lets go of the lock
        writer.wait(timeout=30)
    saved_step = int(load_checkpoint(run_dir / "checkpoints" / "latest.pt")["counters"]["step"])
    result = ddpg_tui(tmp_path, "train", "--resume", "runs/x", "--headless", "--steps", str(saved_step + 150))
    assert result.returncode == 0, result.stderr
    assert f"resuming runs/x at step {saved_step:,}" in result.stdout


# No terminal -------------------------------------------------------------------------


def test_train_without_headless_and_without_a_terminal_is_refused_in_one_line(tmp_path: Path) -> None:
    result = ddpg_tui(tmp_path, "train", "--preset", "pendulum", "--steps", "200", timeout=60)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("ddpg-tui: error: the app needs a terminal"), result.stderr
    assert "--headless" in lines[0]
    assert result.stdout == ""  # no escape codes in the log
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())  # no run folder left


def test_the_bare_app_without_a_terminal_is_refused_in_one_line(tmp_path: Path) -> None:
    result = ddpg_tui(tmp_path, timeout=60)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "needs a terminal" in lines[0] and "--headless" in lines[0], result.stderr
    assert result.stdout == ""


def test_bad_input_is_still_reported_first_without_a_terminal(tmp_path: Path) -> None:
    result = ddpg_tui(tmp_path, "train", "--preset", "pendulm", timeout=60)
    assert result.returncode == 2
    assert "needs a terminal" not in result.stderr and "pendulm" in result.stderr


# A sweep trial ------------------------------------------------------------------------


class FakeRayContext:
    def get_assigned_resources(self) -> dict[str, float]:
        return {"CPU": 1.0}

    def get_node_id(self) -> str:
        return "node0000"


def test_a_sweep_trial_on_a_folder_another_process_trains_reports_it_and_clears_nothing(tmp_path: Path,
                                                                                       monkeypatch) -> None:
    ray = pytest.importorskip("ray")
    from ray import tune

    from ddpg_tui.sweeps.space import trial_name, variant_of
    from ddpg_tui.sweeps.trial import TrialPlan, train_trial

    reports: list[dict] = []
    monkeypatch.setattr(ray, "get_runtime_context", lambda: FakeRayContext())
    monkeypatch.setattr(tune, "report", lambda metrics, checkpoint=None: reports.append(metrics))
    monkeypatch.setattr(tune, "get_checkpoint", lambda: None)
    trial_dir = tmp_path / trial_name(variant_of({}, ()).label, 0)  # the config's seed 0
    trial_dir.mkdir(parents=True)
    (trial_dir / "metrics.jsonl").write_text('{"kind": "eval", "step": 100}\n')  # a fresh start would clear it
    plan = TrialPlan(str(tmp_path), TINY.to_dict(), ())
    with RunLock(trial_dir):
        train_trial({}, plan)
    assert (trial_dir / "metrics.jsonl").read_text() == '{"kind": "eval", "step": 100}\n'
    seed_report = reports[-1]["seed_reports"][0] if reports else {}
    assert seed_report.get("state") == "error"
    assert f"{trial_dir} is being trained by process {os.getpid()}" in seed_report["message"]
    reports.clear()
    train_trial({}, plan)  # once the holder lets go, the trial runs (and so would a retry in this actor)
    assert reports[-1]["seed_reports"][0]["state"] == "finished"
    RunLock(trial_dir).acquire().release()


def test_the_apps_session_on_a_folder_another_process_trains_shows_why_and_leaves_a_claimed_folder_gone(
        tmp_path: Path) -> None:
    from agents.events import TrainerState
    from ddpg_tui.request import TrainingRequest
    from ddpg_tui.ui.session import TrainingSession

    run_dir = tmp_path / "run"
    with RunLock(run_dir):
        session = TrainingSession(TrainingRequest(TINY, run_dir))
        assert session.run() is None
        snapshot = session.snapshot()
    assert snapshot.state == TrainerState.ERROR
    assert snapshot.message == f"{run_dir} is being trained by process {os.getpid()}; attach to it, or stop it first"
    claimed = tmp_path / "claimed"
    session = TrainingSession(TrainingRequest(TINY.replace(env_id="NoSuchEnv-v9"), claimed, claimed_run_dir=True))
    session.run()
    assert not claimed.exists()  # its .lock does not keep a run that never started on disk
