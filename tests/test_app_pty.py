"""The app in a real terminal (a pty): Ctrl+C, SIGTERM and a closed terminal each save and end the process.

Textual turns the terminal's ISIG off, so Ctrl+C reaches the app as a key (\\x03), and
signals reach the process from outside; neither can be seen in a Pilot test. Each run
trains for a million steps, so that only the quit can end it.
"""

from __future__ import annotations

import asyncio
import contextlib
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
import tty
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from agents.checkpoint import load_checkpoint
from ddpg_tui.ui import app as app_module
from ddpg_tui.ui import lifecycle

ROOT = Path(__file__).resolve().parents[1]
ANSI = re.compile(r"\x1b(\[[0-9;?<>=]*[ -/]*[@-~]|\][^\x07\x1b]*(\x07|\x1b\\)|[()][0-9A-Za-z]|[=>78])")
GONE_WITHIN = 10.0  # seconds from the decision to the end of the process (measured: about 1 to 1.5)

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="needs a pty")


class TerminalApp:
    """`ddpg-tui train` on the slave side of a 120x40 pty; everything it draws is collected."""

    def __init__(self, run_dir: Path) -> None:
        master, slave = os.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
        self.master = master
        self.process = subprocess.Popen(
            [sys.executable, "-m", "ddpg_tui", "train", "--run-dir", str(run_dir), "--steps", "1000000",
             "--set", "hidden_sizes=[16,16]", "--set", "learning_starts=100", "--set", "batch_size=32",
             "--set", "eval_every=0", "--set", "threads=1"],
            cwd=ROOT, stdin=slave, stdout=slave, stderr=slave, start_new_session=True,
            env={**os.environ, "TERM": "xterm-256color", "PYTHONUNBUFFERED": "1"},
        )
        os.close(slave)
        self._output = bytearray()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        while True:
            try:
                data = os.read(self.master, 65536)
            except OSError:  # EIO once the app has exited, or the master was closed
                return
            if not data:
                return
            self._output.extend(data)

    @property
    def text(self) -> str:
        return ANSI.sub("", bytes(self._output).decode("utf-8", "replace"))

    def wait_for(self, text: str, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.text:
            assert self.process.poll() is None, f"the app exited ({self.process.returncode}):\n{self.text[-2000:]}"
            assert time.monotonic() < deadline, f"{text!r} never appeared:\n{self.text[-2000:]}"
            time.sleep(0.05)

    def type(self, data: bytes) -> None:
        os.write(self.master, data)

    def close_terminal(self) -> None:
        os.close(self.master)

    def wait_gone(self) -> tuple[int, float]:
        """The exit code, and the seconds it took."""
        start = time.monotonic()
        try:
            code = self.process.wait(timeout=GONE_WITHIN)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            pytest.fail(f"still running {GONE_WITHIN} s after the decision:\n{self.text[-2000:]}")
        self._reader.join(timeout=5)
        return code, time.monotonic() - start

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        with contextlib.suppress(OSError):  # closed already by close_terminal
            os.close(self.master)


@pytest.fixture
def terminal_app(tmp_path: Path):
    app = TerminalApp(tmp_path / "run")
    try:
        app.wait_for("training", timeout=60)  # the dashboard shows the trainer past its warm-up
        time.sleep(0.5)
        yield app
    finally:
        app.kill()


def assert_saved_before_the_end(run_dir: Path) -> None:
    payload = load_checkpoint(run_dir / "checkpoints" / "latest.pt")
    assert 0 < payload["counters"]["step"] < 1_000_000


def test_ctrl_c_asks_and_a_second_ctrl_c_saves_and_quits(terminal_app: TerminalApp, tmp_path: Path) -> None:
    terminal_app.type(b"\x03")
    terminal_app.wait_for("Save a checkpoint before quitting?", timeout=10)
    assert terminal_app.process.poll() is None
    terminal_app.type(b"\x03")
    code, seconds = terminal_app.wait_gone()
    assert code == 0, terminal_app.text[-2000:]
    assert seconds < GONE_WITHIN
    assert_saved_before_the_end(tmp_path / "run")
    assert f"resume:   ddpg-tui train --resume {tmp_path / 'run'}" in terminal_app.text
    assert "Traceback" not in terminal_app.text


def test_sigterm_saves_and_exits_143(terminal_app: TerminalApp, tmp_path: Path) -> None:
    terminal_app.process.send_signal(signal.SIGTERM)
    code, seconds = terminal_app.wait_gone()
    assert code == 143, terminal_app.text[-2000:]
    assert seconds < GONE_WITHIN
    assert_saved_before_the_end(tmp_path / "run")
    assert f"checkpoint {tmp_path / 'run' / 'checkpoints' / 'latest.pt'}" in terminal_app.text
    assert "Traceback" not in terminal_app.text


def test_a_closed_terminal_saves_and_exits_129(terminal_app: TerminalApp, tmp_path: Path) -> None:
    # The terminal goes first, as when its window is closed: from then on every write the app
    # makes fails. Then the SIGHUP that the shell (or the kernel, to a session leader) sends.
    terminal_app.close_terminal()
    time.sleep(0.3)
    terminal_app.process.send_signal(signal.SIGHUP)
    code, seconds = terminal_app.wait_gone()
    assert code == 129
    assert seconds < GONE_WITHIN
    assert_saved_before_the_end(tmp_path / "run")


def drain(master: int) -> bytes:
    """What the pty's program has written so far."""
    data = b""
    while select.select([master], [], [], 0.2)[0]:
        data += os.read(master, 65536)
    return data


@pytest.mark.parametrize(("sig", "gives_it_back"), [(signal.SIGTERM, True), (signal.SIGHUP, False)],
                         ids=["sigterm", "sighup"])
def test_the_fallback_end_gives_a_live_terminal_back_as_it_found_it(monkeypatch: pytest.MonkeyPatch,
                                                                    sig: signal.Signals, gives_it_back: bool) -> None:
    # The path no Pilot test reaches: the event loop has stopped answering, so exit_when_stuck
    # ends the process itself and Textual never restores the terminal. A real pty stands in for it,
    # left as an app leaves it (raw, on the alternate screen, cursor hidden, mouse reports on).
    master, slave = os.openpty()
    loop = asyncio.new_event_loop()  # never run: a callback put on it is never answered
    ended: list[int] = []
    monkeypatch.setattr(lifecycle, "end_process", ended.append)
    try:
        saved = lifecycle.save_terminal(slave, slave)
        assert saved is not None
        tty.setraw(slave)
        os.write(slave, b"\x1b[?1049h\x1b[?25l\x1b[?1000h\x1b[?1006h")
        drain(master)
        assert termios.tcgetattr(slave) != saved.attrs
        app: Any = SimpleNamespace(training_session=None, sweep=None, _signal_loop=loop, received_signal=sig,
                                   exit_code=lifecycle.exit_code(sig))
        app_module.exit_when_stuck(app, saved)
        assert ended == [lifecycle.exit_code(sig)]
        written = drain(master)
        if gives_it_back:
            assert termios.tcgetattr(slave) == saved.attrs
            for sequence in (b"\x1b[?1049l", b"\x1b[?25h", b"\x1b[?1000l", b"\x1b[?1006l"):
                assert sequence in written
        else:  # a hung-up terminal is gone: nothing is written to it, nor set on it
            assert written == b""
            assert termios.tcgetattr(slave) != saved.attrs
    finally:
        loop.close()
        os.close(slave)
        os.close(master)


def test_save_terminal_is_none_off_a_terminal() -> None:
    reader, writer = os.pipe()
    try:
        assert lifecycle.save_terminal(reader, writer) is None
        lifecycle.restore_terminal(None, signal.SIGTERM)  # and restoring nothing is harmless
    finally:
        os.close(reader)
        os.close(writer)
