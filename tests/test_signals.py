"""Ctrl+C and SIGTERM in headless training save a checkpoint first, then exit 130 / 143."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from agents.checkpoint import load_checkpoint

ROOT = Path(__file__).resolve().parents[1]


def start_headless_run(run_dir: Path) -> tuple[subprocess.Popen, str]:
    """A long headless run of a small net, once it has printed its first line."""
    process = subprocess.Popen(
        [sys.executable, "-m", "ddpg_tui", "train", "--headless", "--run-dir", str(run_dir), "--steps", "1000000",
         "--set", "hidden_sizes=[16,16]", "--set", "learning_starts=100", "--set", "batch_size=32",
         "--set", "eval_every=0", "--set", "threads=1"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert process.stdout is not None
    first_line = process.stdout.readline()
    assert first_line.startswith("training"), first_line + process.communicate()[1]
    return process, first_line


@pytest.mark.parametrize(("sig", "exit_code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_signal_saves_then_exits_with_its_code(tmp_path: Path, sig: signal.Signals, exit_code: int) -> None:
    run_dir = tmp_path / "run"
    process, first_line = start_headless_run(run_dir)
    time.sleep(1.0)  # into the loop, past the warm-up
    process.send_signal(sig)
    rest, stderr = process.communicate(timeout=60)
    stdout = first_line + rest
    assert process.returncode == exit_code, stderr
    assert "Traceback" not in stderr
    payload = load_checkpoint(run_dir / "checkpoints" / "latest.pt")
    assert payload["counters"]["step"] > 0
    assert "saved" in stdout


def test_sigterm_saves_every_member_of_a_population(tmp_path: Path) -> None:
    run_dir = tmp_path / "pop"
    process = subprocess.Popen(
        [sys.executable, "-m", "ddpg_tui", "train", "--headless", "--seeds", "0-2", "--run-dir", str(run_dir),
         "--steps", "1000000", "--set", "hidden_sizes=[16,16]", "--set", "learning_starts=100",
         "--set", "batch_size=32", "--set", "eval_every=0", "--set", "buffer_size=5000"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert process.stdout is not None
    first_line = process.stdout.readline()
    assert first_line.startswith("training"), first_line + process.communicate()[1]
    time.sleep(1.5)
    process.send_signal(signal.SIGTERM)
    stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == 143, stderr
    assert "Traceback" not in stderr
    steps = {load_checkpoint(run_dir / f"seed-{seed}" / "checkpoints" / "latest.pt")["counters"]["step"]
             for seed in range(3)}
    assert len(steps) == 1 and steps.pop() > 100  # the members stopped together, at the same step
    assert "saved every member's checkpoint" in stdout


@pytest.mark.parametrize("after", ["stopping:", "resume:"], ids=["during-the-save", "right-after-the-save"])
def test_a_second_ctrl_c_ends_at_once_with_130_and_no_traceback(tmp_path: Path, after: str) -> None:
    # The second Ctrl+C comes as soon as the line `after` is printed: while the stop saves, or
    # once the save is done and the last lines are out, while the process winds down. There,
    # Python's own handler was back and raised KeyboardInterrupt: a traceback, and death by SIGINT (-2).
    run_dir = tmp_path / "run"
    process, first_line = start_headless_run(run_dir)
    time.sleep(1.0)
    process.send_signal(signal.SIGINT)
    lines = [first_line]
    assert process.stdout is not None
    for line in process.stdout:
        lines.append(line)
        if line.lstrip().startswith(after):
            process.send_signal(signal.SIGINT)
            break
    else:
        pytest.fail(f"{after!r} never printed:\n{''.join(lines)}")
    rest, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, "".join(lines) + rest + stderr
    assert "Traceback" not in stderr and "KeyboardInterrupt" not in stderr, stderr
    if after == "resume:":  # the save had finished: it is whole
        assert load_checkpoint(run_dir / "checkpoints" / "latest.pt")["counters"]["step"] > 100
