"""`ddpg-tui serve` in a real browser: headless Chromium (Debian's package) driven by Playwright.

The terminal is drawn on a canvas, so the test asserts on what the keys typed into the page
do on disk: the tab starts a run, its folder appears and grows, pause and save show up in
metrics.jsonl, and closing the tab saves (latest.pt) and ends the tab's app process.

Every tab's app also prints to fd 1 all through its run (print, os.write and a child
process, from tests/printing_site.py), as a library or Ray might: fd 1
is textual-serve's protocol channel, so without the served app's redirection the page
would stop drawing and taking keys at the first line.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
from printing_site import printing_site

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = Path("/usr/bin/chromium")
T = TypeVar("T")
SCREENSHOT = ROOT / "docs" / "serve.png"  # rewritten when DDPG_TUI_UPDATE_SCREENSHOTS=1

playwright_api = pytest.importorskip("playwright.sync_api", reason="needs Playwright: pip install 'ddpg-tui[serve]'")
pytest.importorskip("textual_serve", reason="needs textual-serve: pip install 'ddpg-tui[serve]'")
pytestmark = pytest.mark.skipif(not CHROMIUM.exists() or sys.platform == "win32",
                                reason="needs Chromium at /usr/bin/chromium: apt-get install -y chromium")

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def app_processes(runs: Path) -> list[int]:
    """Pids of the tab app processes serving this test's runs folder (other tests may run their own)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                cmdline = (entry / "cmdline").read_bytes().split(b"\0")
                if b"ddpg_tui.cli.served_app" in cmdline and os.fsencode(runs.resolve()) in cmdline:
                    pids.append(int(entry.name))
    return pids


@contextlib.contextmanager
def serving(tmp_path: Path, token: str | None = None) -> Iterator[tuple[str, Path]]:
    """`ddpg-tui serve` on a free loopback port (with $DDPG_TUI_TOKEN when `token` is given)."""
    printer = printing_site(tmp_path / "printer")
    runs = tmp_path / "runs"
    port = free_port()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(printer)])}
    env.pop("DDPG_TUI_TOKEN", None)
    if token is not None:
        env["DDPG_TUI_TOKEN"] = token
    process = subprocess.Popen(
        [sys.executable, "-m", "ddpg_tui", "serve", "--port", str(port), "--runs", str(runs)],
        cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True, env=env,
    )
    deadline = time.monotonic() + 30
    while True:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                break
        assert process.poll() is None, "the server exited"
        assert time.monotonic() < deadline, "the server never listened"
        time.sleep(0.1)
    try:
        yield f"http://127.0.0.1:{port}/", runs
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        process.wait(30)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    with serving(tmp_path) as served:
        yield served


def launch(p: Any) -> Any:
    return p.chromium.launch(executable_path=str(CHROMIUM),
                             args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"])


def rows(metrics: Path) -> list[dict]:
    return [json.loads(line) for line in metrics.read_text().splitlines() if line.strip()]


def wait_until(condition: Callable[[], T], what: str, timeout: float = 60.0) -> T:
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        assert time.monotonic() < deadline, f"{what}: not within {timeout:g} s"
        time.sleep(0.2)


def test_a_tab_trains_takes_keys_while_the_run_prints_and_closing_it_saves(server: tuple[str, Path]) -> None:
    url, runs = server
    with playwright_api.sync_playwright() as p:
        browser = launch(p)
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        page.goto(url, wait_until="domcontentloaded")
        page.wait_for_selector("body.-first-byte", timeout=60_000)
        [tab_app] = wait_until(lambda: app_processes(runs), "the tab's app process")
        # Keys reach the app through xterm's hidden textarea; a click would land on some widget.
        page.locator("textarea").first.focus()

        def start_a_run() -> Path | None:
            # The picker opens on pendulum: Enter opens its form, Ctrl+S starts training. On a busy
            # machine the app may not take keys yet, so they go again until the run's folder exists.
            page.keyboard.press("Enter")
            time.sleep(1.5)
            page.keyboard.press("Control+s")
            time.sleep(1.5)
            return next(runs.glob("*/metrics.jsonl"), None)

        metrics = wait_until(start_a_run, "the run's metrics.jsonl", 120)
        run_dir = metrics.parent
        wait_until(lambda: any(r["kind"] == "episode" for r in rows(metrics)), "an episode row", 120)
        size = metrics.stat().st_size
        wait_until(lambda: metrics.stat().st_size > size, "metrics.jsonl growing", 120)

        page.keyboard.press("p")  # pause ...
        wait_until(lambda: any(r["kind"] == "pause" for r in rows(metrics)), "a pause row")
        page.keyboard.press("s")  # ... then save
        wait_until(lambda: any(r["kind"] == "save" for r in rows(metrics)), "a save row")
        page.keyboard.press("p")  # and go on
        wait_until(lambda: any(r["kind"] == "resume" for r in rows(metrics)), "a resume row")
        assert not page.query_selector("body.-closed"), "the session ended under the printing"
        # Keys travel on their own pipe, so a corrupted output stream shows only on the page: it stops
        # drawing. The step counter moves every frame while training runs.
        before = page.screenshot()
        time.sleep(3)  # let the curves fill in for the picture, too
        after = page.screenshot()
        still_drawing = after != before
        assert still_drawing, "the page stopped drawing while the run printed"
        if os.environ.get("DDPG_TUI_UPDATE_SCREENSHOTS"):
            SCREENSHOT.write_bytes(after)

        latest = run_dir / "checkpoints" / "latest.pt"
        saved_before = latest.stat().st_mtime_ns
        page.close()  # closing the tab: textual-serve sends the app a quit packet
        wait_until(lambda: tab_app not in app_processes(runs), "the tab's app process ending")
        browser.close()
    assert latest.stat().st_mtime_ns > saved_before, "closing the tab wrote no new latest.pt"
    assert rows(metrics)[-1]["kind"] in {"save", "stop"}, rows(metrics)[-3:]



def test_with_a_token_a_tab_without_it_is_turned_away_and_with_it_once_in_the_address_draws(tmp_path: Path) -> None:
    token = "a-token-for-the-test"
    with serving(tmp_path, token) as (url, _runs), playwright_api.sync_playwright() as p:
        browser = launch(p)
        page = browser.new_page()
        response = page.request.get(url)  # what a page load without the token gets, without the login box
        assert response.status == 401
        page.goto(f"{url}?token={token}", wait_until="domcontentloaded")
        assert "token" not in page.url  # the token has left the address bar for a cookie
        # The websocket carries only the cookie: the app drawing in the page proves it got in with it.
        page.wait_for_selector("body.-first-byte", timeout=60_000)
        browser.close()


def test_each_tab_gets_its_own_app_process_and_takes_it_away_when_it_closes(server: tuple[str, Path]) -> None:
    url, runs = server
    with playwright_api.sync_playwright() as p:
        browser = launch(p)
        pages = [browser.new_page() for _ in range(2)]
        for page in pages:
            page.goto(url, wait_until="domcontentloaded")
            page.wait_for_selector("body.-first-byte", timeout=60_000)
        wait_until(lambda: len(app_processes(runs)) == 2, "two app processes")
        tabs = app_processes(runs)
        pages[0].close()
        wait_until(lambda: len(app_processes(runs)) == 1, "the first tab's process ending")
        assert set(app_processes(runs)) < set(tabs)  # the other tab's app is untouched
        assert not pages[1].query_selector("body.-closed")
        pages[1].close()
        wait_until(lambda: not app_processes(runs), "the second tab's process ending")
        browser.close()
