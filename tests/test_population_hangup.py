"""Closing the terminal for real on the population dashboard: every member saved, exit 129, nothing left.

The same pty as tests/test_hangup.py (the child's controlling terminal, closed from the
master side, so the kernel sends SIGHUP and SIGCONT), on `train --seeds` without --headless.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest
from test_hangup import TRAIN, ControllingTerminal

from agents.checkpoint import load_checkpoint

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="needs a Linux pty")
SEEDS = (0, 1, 2)


@pytest.mark.parametrize("attempt", range(2))
def test_closing_the_terminal_on_the_population_dashboard_saves_every_member(tmp_path: Path, attempt: int) -> None:
    # No periodic save (the preset's save_every is 5000), so a checkpoint can only be the stop's own.
    app = ControllingTerminal(["train", "--seeds", "0-2", *TRAIN, "--set", "save_every=0"], tmp_path)
    try:
        app.wait_for("3 seeds  training")
        time.sleep(1.0)
        app.close()
        app.assert_nothing_left()
        assert app.process.returncode == 129, app.text[-1500:]
    finally:
        app.kill()
    steps = [load_checkpoint(tmp_path / "run" / f"seed-{seed}" / "checkpoints" / "latest.pt")["counters"]["step"]
             for seed in SEEDS]
    assert len(set(steps)) == 1 and 100 < steps[0] < 1_000_000  # one stop, one save of every member
