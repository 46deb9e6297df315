"""The served app process, spoken to as textual-serve speaks to it: packets on its stdin and stdout.

textual-serve starts one such process per tab with pipes (no pty) and
TEXTUAL_DRIVER=textual.drivers.web_driver:WebDriver. A closed tab reaches it as a "quit"
meta packet, and the server's Ctrl+C as SIGINT/SIGTERM. Each must save the run and end
the process with the code a terminal would give it (129 for a hangup, 143 for SIGTERM),
and the packet stream must stay whole while the run prints to fd 1.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from printing_site import printing_site

ROOT = Path(__file__).resolve().parents[1]
GONE_WITHIN = 30.0  # seconds from the quit to the end of the process (a bound, not a speed: a save takes well under it)

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="needs POSIX signals")


def packet(kind: bytes, payload: bytes) -> bytes:
    return kind + len(payload).to_bytes(4, "big") + payload


class ServedApp:
    """`python -m ddpg_tui.cli.served_app` with textual-serve's pipes and environment."""

    def __init__(self, tmp_path: Path) -> None:
        self.runs = tmp_path / "runs"
        env = {**os.environ, "TEXTUAL_DRIVER": "textual.drivers.web_driver:WebDriver", "COLUMNS": "120",
               "ROWS": "40", "TEXTUAL_COLOR_SYSTEM": "truecolor",
               "PYTHONPATH": os.pathsep.join([str(ROOT), str(printing_site(tmp_path / "printer"))])}
        self.stderr = (tmp_path / "stderr.txt").open("wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "ddpg_tui.cli.served_app", "--runs-root", str(self.runs)],
            cwd=tmp_path, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.stderr, env=env,
            start_new_session=True,
        )
        self.kinds: list[bytes] = []  # the type byte of every packet read
        self.prelude = threading.Event()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        with contextlib.suppress(OSError, ValueError):  # the test closed the pipe, as a dead server does
            self._read_packets()

    def _read_packets(self) -> None:
        stdout = self.process.stdout
        assert stdout is not None
        if stdout.readline() != b"__GANGLION__\n":
            return
        self.prelude.set()
        while header := stdout.read(5):
            if len(header) < 5:
                self.kinds.append(b"?short header")
                return
            self.kinds.append(header[:1])
            payload = stdout.read(int.from_bytes(header[1:], "big"))
            if header[:1] == b"M" and json.loads(payload).get("type") == "exit":
                self.kinds.append(b"exit")

    def send(self, data: bytes) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(data)
        self.process.stdin.flush()

    def keys(self, text: str) -> None:
        self.send(packet(b"D", text.encode()))

    def meta(self, **fields: object) -> None:
        self.send(packet(b"M", json.dumps(fields).encode()))

    def start_training(self) -> Path:
        assert self.prelude.wait(60), "no __GANGLION__ prelude on stdout"
        self.meta(type="focus")
        deadline = time.monotonic() + 120
        metrics = None
        while metrics is None:
            # The picker opens on pendulum: Enter opens its form, Ctrl+S starts training. The app may
            # still be starting when the first keys come, so they are sent again until a run exists.
            assert self.process.poll() is None, "the app exited before training"
            assert time.monotonic() < deadline, "no run started"
            self.keys("\r")
            time.sleep(1.5)
            self.keys("\x13")
            time.sleep(1.5)
            metrics = next(self.runs.glob("*/metrics.jsonl"), None)
        while not any('"kind": "update"' in line for line in metrics.read_text().splitlines()):
            assert time.monotonic() < deadline, "the run never learned"
            time.sleep(0.2)
        return metrics.parent

    def wait_gone(self) -> int:
        return self.process.wait(GONE_WITHIN)

    def close(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        self.reader.join(5)
        for stream in (self.process.stdin, self.process.stdout, self.stderr):
            if stream is not None:
                with contextlib.suppress(OSError):  # a pipe the test closed under its reader
                    stream.close()


@pytest.fixture
def served(tmp_path: Path) -> Iterator[ServedApp]:
    app = ServedApp(tmp_path)
    yield app
    app.close()


def test_a_closed_tab_saves_and_ends_like_a_closed_terminal_while_the_run_prints(served: ServedApp) -> None:
    run_dir = served.start_training()
    time.sleep(1.0)  # the printing thread has been at it all along the run
    served.meta(type="quit")  # what textual-serve sends when the tab's websocket closes
    assert served.wait_gone() == 129
    assert (run_dir / "checkpoints" / "latest.pt").exists()
    served.reader.join(5)
    assert set(served.kinds) <= {b"D", b"M", b"P", b"exit"}, "the packet stream was broken by a print"
    assert served.kinds[-1] == b"exit"


def test_sigterm_from_the_server_saves_and_ends_with_143(served: ServedApp) -> None:
    # WebDriver alone would turn SIGTERM into a bare exit, with the trainer unsaved.
    run_dir = served.start_training()
    served.process.send_signal(signal.SIGTERM)
    assert served.wait_gone() == 143
    assert (run_dir / "checkpoints" / "latest.pt").exists()


def test_the_served_app_refuses_to_run_outside_textual_serve(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "ddpg_tui.cli.served_app"], cwd=tmp_path, capture_output=True,
                            text=True, env={k: v for k, v in os.environ.items() if k != "TEXTUAL_DRIVER"} |
                            {"PYTHONPATH": str(ROOT)}, timeout=60)
    assert result.returncode == 2
    assert result.stderr.startswith("ddpg-tui: error: ") and result.stderr.count("\n") == 1


def test_a_server_that_dies_saves_the_run_and_ends_its_tabs(served: ServedApp) -> None:
    # A killed server sends no quit packet, and both its pipes close: the app sees its stdin end, and
    # takes that for a hangup too; its writes to the closed stdout must not stop it from saving.
    run_dir = served.start_training()
    assert served.process.stdin is not None and served.process.stdout is not None
    served.process.stdin.close()
    os.close(served.process.stdout.fileno())  # under the reader thread, which then stops on EBADF
    assert served.wait_gone() == 129
    assert (run_dir / "checkpoints" / "latest.pt").exists()
