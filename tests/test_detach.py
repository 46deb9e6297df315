"""`ddpg-tui train --detach`, with real processes: the run goes on in its own session, reachable on its channel."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ddpg_tui.channel.client import ChannelClient
from ddpg_tui.channel.location import CONTROL_FILE, ChannelError, pid_alive

ROOT = Path(__file__).resolve().parents[1]
TINY = ["--set", "hidden_sizes=[16,16]", "--set", "batch_size=32", "--set", "learning_starts=100",
        "--set", "eval_every=0", "--set", "eval_episodes=1", "--set", "threads=1"]


def ddpg_tui(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ddpg_tui", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=180, env={**os.environ, "PYTHONPATH": str(ROOT)}, stdin=subprocess.DEVNULL)


def wait_for(condition, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_a_detached_run_lives_in_its_own_session_and_ends_when_stopped_over_its_channel(tmp_path: Path) -> None:
    result = ddpg_tui("train", "--preset", "pendulum", "--steps", "1e6", *TINY, "--detach", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    pid = int(re.search(r"process (\d+)", result.stdout).group(1))
    try:
        run_dir = tmp_path / re.search(r"→ (\S+)", result.stdout).group(1)
        assert f"ddpg-tui attach {run_dir.relative_to(tmp_path)}" in result.stdout
        # The parent returned while the child trains: a session of its own, so no terminal's hangup reaches it.
        assert os.getsid(pid) == pid and pid_alive(pid)
        assert (run_dir / CONTROL_FILE).exists()
        client = ChannelClient.connect(run_dir)
        wait_for(lambda: client.request("status")["step"] > 0)
        client.request("stop", save=True)
        client.close()
        wait_for(lambda: not pid_alive(pid) or _reaped(pid))
        assert not (run_dir / CONTROL_FILE).exists()
        assert (run_dir / "checkpoints" / "latest.pt").exists()
        assert "saved" in (run_dir / "train.log").read_text()  # its output went to the log
    finally:
        if pid_alive(pid):
            os.kill(pid, signal.SIGKILL)


def _reaped(pid: int) -> bool:
    # The child is not ours (the command's process that started it has exited), so it is never a zombie of ours.
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z"
    except OSError:
        return True


def test_a_detached_run_that_cannot_start_says_why_here_and_leaves_no_folder(tmp_path: Path) -> None:
    result = ddpg_tui("train", "--env", "Pendulm-v1", "--detach", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [result.stderr.strip()]
    assert result.stderr.startswith("ddpg-tui: error: unknown environment 'Pendulm-v1'")
    assert list((tmp_path / "runs").iterdir()) == []


async def test_an_attached_dashboard_steers_a_detached_process_and_sees_it_die(tmp_path: Path) -> None:
    import asyncio

    from agents.events import TrainerState
    from ddpg_tui.ui.app import DDPGApp
    from ddpg_tui.ui.remote_session import GONE, RemoteSession
    from ddpg_tui.ui.screens.modals import DetachOrStopScreen

    async def until(condition, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            assert time.monotonic() < deadline, "timed out"
            await asyncio.sleep(0.05)

    result = ddpg_tui("train", "--preset", "pendulum", "--steps", "1e6", *TINY, "--detach", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    pid = int(re.search(r"process (\d+)", result.stdout).group(1))
    run_dir = tmp_path / re.search(r"→ (\S+)", result.stdout).group(1)
    try:
        session = RemoteSession(run_dir)
        app = DDPGApp(session=session)
        async with app.run_test(size=(100, 30)) as pilot:
            await until(lambda: session.snapshot().progress is not None)
            await pilot.press("p")
            await until(lambda: session.snapshot().state == TrainerState.PAUSED)
            await pilot.press("q")
            await until(lambda: isinstance(app.screen, DetachOrStopScreen))
            await pilot.press("d")
            await until(lambda: session.finished.is_set())
        assert pid_alive(pid) and not _reaped(pid)  # detached: the run is still there, paused

        again = RemoteSession(run_dir)  # attach again: it is paused, as the first client left it
        app = DDPGApp(session=again)
        async with app.run_test(size=(100, 30)):
            await until(lambda: again.snapshot().state == TrainerState.PAUSED)
            os.kill(pid, signal.SIGKILL)  # the training process dies while attached
            await until(lambda: again.snapshot().message == GONE)
            assert again.snapshot().progress is not None  # the panels still show the run
        assert (run_dir / CONTROL_FILE).exists()  # left behind by kill -9: stale, and recognised as such
        with pytest.raises(ChannelError, match="stale"):
            RemoteSession(run_dir)
    finally:
        if pid_alive(pid) and not _reaped(pid):
            os.kill(pid, signal.SIGKILL)


async def test_q_then_b_hands_the_apps_run_to_a_background_process_that_goes_on_from_there(
        tiny_config, tmp_path: Path, monkeypatch) -> None:
    import asyncio
    import json

    from ddpg_tui.request import TrainingRequest
    from ddpg_tui.ui.app import DDPGApp
    from ddpg_tui.ui.screens.modals import ConfirmQuitScreen

    monkeypatch.setenv("PYTHONPATH", str(ROOT))  # the background process runs this checkout's code
    monkeypatch.chdir(tmp_path)
    run_dir = tmp_path / "run"
    app = DDPGApp(TrainingRequest(tiny_config.replace(total_steps=1_000_000), run_dir))
    async with app.run_test(size=(100, 30)) as pilot:
        session = app.training_session
        deadline = time.monotonic() + 60
        while session.snapshot().progress is None or session.snapshot().progress.step < 300:
            assert time.monotonic() < deadline
            await asyncio.sleep(0.05)
        await pilot.press("q")
        while not isinstance(app.screen, ConfirmQuitScreen):
            await asyncio.sleep(0.05)
        await pilot.press("b")
        while app.is_running and time.monotonic() < deadline + 120:
            await asyncio.sleep(0.1)
    assert "ddpg-tui attach" in session.handover, session.handover
    pid = int(re.search(r"process (\d+)", session.handover).group(1))
    try:
        handed_at = session.outcome.step
        assert handed_at % 200 == 0  # an episode end of Pendulum: the resume is bit-exact
        client = ChannelClient.connect(run_dir)
        wait_for(lambda: client.request("status")["step"] > handed_at + 200)
        client.request("stop", save=True)
        client.close()
        wait_for(lambda: not pid_alive(pid) or _reaped(pid))
        rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
        episodes = [row["step"] for row in rows if row["kind"] == "episode"]
        assert episodes == list(range(200, episodes[-1] + 1, 200))  # one run: no gap, no step twice
        assert "resuming" in (run_dir / "train.log").read_text()
    finally:
        if pid_alive(pid) and not _reaped(pid):
            os.kill(pid, signal.SIGKILL)
