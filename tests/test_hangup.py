"""Closing the terminal for real: the pty is the process's controlling terminal, closed from the master side.

The kernel then sends the session leader SIGHUP *and* SIGCONT, which is what left the
picker spinning at 100% CPU (Textual's SIGCONT handler restarts its input thread) and what
cost a headless run its stop-save (rich raised EIO inside the training loop). A pty opened
with `Popen(start_new_session=True)` alone is not a controlling terminal and sends nothing,
so each child here calls setsid() and TIOCSCTTY itself.
"""

from __future__ import annotations

import contextlib
import csv
import fcntl
import os
import re
import select
import signal
import struct
import subprocess
import sys
import termios
import threading
import time
from pathlib import Path

import pytest

from agents.checkpoint import load_checkpoint

ROOT = Path(__file__).resolve().parents[1]
ANSI = re.compile(r"\x1b(\[[0-9;?<>=]*[ -/]*[@-~]|\][^\x07\x1b]*(\x07|\x1b\\)|[()][0-9A-Za-z]|[=>78])")
GONE_WITHIN = 3.0  # seconds after the terminal closes
TRIES = 5  # the picker's hang came 4 times in 5: five tries catch a race that rare
TRAIN = ["--run-dir", "run", "--steps", "1000000", "--set", "hidden_sizes=[16,16]", "--set", "learning_starts=100",
         "--set", "batch_size=32", "--set", "eval_every=0", "--set", "threads=1"]

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="needs a Linux pty")


def _take_the_terminal() -> None:
    os.setsid()
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


class ControllingTerminal:
    """`ddpg-tui ARGS` whose controlling terminal is a 120x40 pty; its output is collected."""

    def __init__(self, args: list[str], cwd: Path) -> None:
        master, slave = os.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
        self.master = master
        environment = {key: value for key, value in os.environ.items() if key != "RAY_ADDRESS"}  # a sweep: its own Ray
        environment |= {"TERM": "xterm-256color", "PYTHONUNBUFFERED": "1", "PYTHONPATH": str(ROOT)}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "ddpg_tui", *args], cwd=cwd, stdin=slave, stdout=slave, stderr=slave,
            preexec_fn=_take_the_terminal, env=environment)
        os.close(slave)
        self._output = bytearray()
        self._closing = threading.Event()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        # Never block in read(): a thread inside read() keeps the master open after os.close(),
        # and then the terminal never hangs up.
        with contextlib.suppress(OSError, ValueError):
            while not self._closing.is_set():
                if select.select([self.master], [], [], 0.05)[0]:
                    if not (data := os.read(self.master, 65536)):
                        return
                    self._output.extend(data)

    @property
    def output(self) -> bytes:
        return bytes(self._output)

    @property
    def text(self) -> str:
        return ANSI.sub("", self.output.decode("utf-8", "replace"))

    def wait_for(self, text: str, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.text:
            assert self.process.poll() is None, f"exited ({self.process.returncode}):\n{self.text[-1500:]}"
            assert time.monotonic() < deadline, f"{text!r} never appeared:\n{self.text[-1500:]}"
            time.sleep(0.05)

    def close(self) -> None:
        self._closing.set()
        self._reader.join()
        os.close(self.master)

    def assert_nothing_left(self) -> None:
        try:
            self.process.wait(timeout=GONE_WITHIN)
        except subprocess.TimeoutExpired:
            pytest.fail(f"still running {GONE_WITHIN} s after the terminal closed")
        with pytest.raises(ProcessLookupError):  # nor anything it started in its session
            os.killpg(self.process.pid, 0)

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, 9)
        self.process.wait()
        if not self._closing.is_set():
            self.close()


def stop_step(run_dir: Path) -> int:
    return load_checkpoint(run_dir / "checkpoints" / "latest.pt")["counters"]["step"]


@pytest.mark.parametrize("attempt", range(TRIES))
@pytest.mark.parametrize("after_q", [False, True], ids=["idle", "0.3s-after-q"])
def test_closing_the_terminal_on_the_picker_leaves_no_process(tmp_path: Path, after_q: bool, attempt: int) -> None:
    app = ControllingTerminal([], tmp_path)
    try:
        app.wait_for("pendulum")
        time.sleep(0.3)
        if after_q:
            os.write(app.master, b"q")
            time.sleep(0.3)
        app.close()
        app.assert_nothing_left()
    finally:
        app.kill()


@pytest.mark.parametrize("attempt", range(TRIES))
@pytest.mark.parametrize("front_end", ["headless", "dashboard"])
def test_closing_the_terminal_mid_training_saves_and_leaves_no_process(tmp_path: Path, front_end: str,
                                                                       attempt: int) -> None:
    # No periodic save at all (save_every=0), so a checkpoint can only be the stop's own.
    args = ["train", *TRAIN, *(["--headless"] if front_end == "headless" else [])]
    app = ControllingTerminal(args, tmp_path)
    try:
        app.wait_for("steps/s" if front_end == "headless" else "training")
        time.sleep(1.0)
        app.close()
        app.assert_nothing_left()
        assert app.process.returncode == 129, app.text[-1500:]
    finally:
        app.kill()
    assert 100 < stop_step(tmp_path / "run") < 1_000_000


SWEEP_GONE_WITHIN = 15.0  # seconds from the close: the trials save, the driver ends and Ray's services after it
SWEEP_SCREEN_TRIES = 1  # the sweep screen: an extra case beside the headless sweep's five tries of the same
# stop path (SWEEP_STOP_BOUND), one try per signal; each starts Ray (~17 s)
SWEEP_SETTINGS = [part for setting in ("learning_starts=100", "batch_size=32", "hidden_sizes=[16,16]",
                                       "eval_every=300", "eval_episodes=1", "save_every=0", "buffer_size=10000",
                                       "device=cpu") for part in ("--set", setting)]
SWEEP_SCREEN = ["sweep", "--env", "Pendulum-v1", "--seeds", "0", "--steps", "1000000", "--name", "hangup",
                "--jobs", "1", *SWEEP_SETTINGS]
SWEEP = [*SWEEP_SCREEN, "--headless"]


def session_members(session: int) -> list[str]:
    """Every process still in the session `session` (its leader's pid), by /proc."""
    left = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, IndexError, ValueError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[3]) == session:  # the fields after the name: state, ppid, pgrp, session
                left.append((stat.parent / "cmdline").read_bytes().replace(b"\0", b" ").decode()[:120])
    return left


def wait_for_a_trial_eval(sweep: ControllingTerminal, sweep_dir: Path) -> None:
    """Until a trial has evaluated, so that it has trained past its warm-up and has something to save."""
    deadline = time.monotonic() + 120
    while not any('"kind": "eval"' in path.read_text() for path in sweep_dir.glob("*/*/metrics.jsonl")):
        assert sweep.process.poll() is None, sweep.text[-1500:]
        assert time.monotonic() < deadline, f"no trial evaluated:\n{sweep.text[-1500:]}"
        time.sleep(0.1)


def assert_sweep_gone(sweep: ControllingTerminal, since: float) -> None:
    """The driver and every process of its session (Ray's included) gone within one bound from `since`."""
    deadline = since + SWEEP_GONE_WITHIN
    try:
        sweep.process.wait(timeout=max(0.0, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        pytest.fail(f"the driver was still running {SWEEP_GONE_WITHIN} s after the stop was asked for")
    driver_gone = time.monotonic() - since
    while (left := session_members(sweep.process.pid)) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not left, f"left behind {SWEEP_GONE_WITHIN} s after the stop was asked for: {left}"
    print(f"driver gone {driver_gone:.1f} s, session {time.monotonic() - since:.1f} s after the stop was asked for")


def assert_every_trial_paused_with_its_save(sweep_dir: Path) -> None:
    rows = list(csv.DictReader((sweep_dir / "summary.csv").read_text().splitlines()))
    assert [row["state"] for row in rows] == ["paused"]
    assert 300 <= stop_step(sweep_dir / rows[0]["trial"]) == int(rows[0]["steps"])


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::DeprecationWarning")
@pytest.mark.parametrize("attempt", range(TRIES))
def test_closing_the_terminal_on_a_headless_sweep_saves_every_trial_and_leaves_no_process(
        tmp_path: Path, attempt: int) -> None:
    sweep = ControllingTerminal(SWEEP, tmp_path)
    sweep_dir = tmp_path / "runs" / "sweeps" / "hangup"
    try:
        wait_for_a_trial_eval(sweep, sweep_dir)
        sweep.close()
        assert_sweep_gone(sweep, time.monotonic())
        assert sweep.process.returncode == 129, sweep.text[-1500:]
    finally:
        sweep.kill()
    assert_every_trial_paused_with_its_save(sweep_dir)


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::DeprecationWarning")
@pytest.mark.parametrize("attempt", range(SWEEP_SCREEN_TRIES))
@pytest.mark.parametrize(("how", "exit_code"), [("close", 129), ("sigterm", 143), ("ctrl+c", 0)])
def test_the_sweep_screen_saves_every_trial_and_ends_with_the_signals_code(
        tmp_path: Path, how: str, exit_code: int, attempt: int) -> None:
    # `ddpg-tui sweep` without --headless: the same sweep, drawn by the sweep screen's app. Its
    # Ctrl+C is a key (Textual turns ISIG off), the screen's quit: no signal, so exit 0, as the app's.
    sweep = ControllingTerminal(SWEEP_SCREEN, tmp_path)
    sweep_dir = tmp_path / "runs" / "sweeps" / "hangup"
    try:
        wait_for_a_trial_eval(sweep, sweep_dir)
        if how == "close":
            sweep.close()
        elif how == "sigterm":
            sweep.process.send_signal(signal.SIGTERM)
        else:
            os.write(sweep.master, b"\x03")
        assert_sweep_gone(sweep, time.monotonic())
        assert sweep.process.returncode == exit_code, sweep.text[-1500:]
        if how != "close":  # the terminal is still there: the app gave it back as it found it
            time.sleep(0.2)  # the reader's last bytes
            assert b"\x1b[?1049l" in sweep.output, sweep.text[-1500:]
    finally:
        sweep.kill()
    assert_every_trial_paused_with_its_save(sweep_dir)
