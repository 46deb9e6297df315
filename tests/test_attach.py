"""`ddpg-tui attach`: the dashboard on a run another thread trains, over a real channel (Pilot drives the keys)."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from agents.config import DDPGConfig
from agents.controls import Controls
from agents.events import TrainerState
from agents.trainer import Trainer
from ddpg_tui.channel.location import ChannelError
from ddpg_tui.channel.server import ChannelServer
from ddpg_tui.ui.app import DDPGApp
from ddpg_tui.ui.remote_session import GONE, RemoteSession
from ddpg_tui.ui.screens.modals import DetachOrStopScreen


class LiveRun:
    """A Trainer in a thread with its channel, as a detached process has them."""

    def __init__(self, config: DDPGConfig, run_dir: Path) -> None:
        self.run_dir = run_dir
        self.controls = Controls()
        self.server = ChannelServer(run_dir, self.controls, env_id=config.env_id)
        self.trainer = Trainer(config, self.server.publish, run_dir, controls=self.controls)
        self.server.start(self.trainer.step)
        self.thread = threading.Thread(target=self._run)
        self.thread.start()

    def _run(self) -> None:
        try:
            self.trainer.run()
        finally:
            self.server.close()


@pytest.fixture
def live_run(tiny_config: DDPGConfig, tmp_path: Path) -> Iterator[LiveRun]:
    run = LiveRun(tiny_config.replace(total_steps=1_000_000, save_every=0), tmp_path / "run")
    yield run
    run.controls.stop(save=False)
    run.thread.join(60)
    run.server.close()


async def until(condition: Callable[[], object], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.05)


async def test_every_key_reaches_the_run_and_both_attached_dashboards_show_it(live_run: LiveRun) -> None:
    first, second = RemoteSession(live_run.run_dir), RemoteSession(live_run.run_dir)
    watcher = threading.Thread(target=second.run)  # the second client, as another terminal's dashboard
    watcher.start()
    app = DDPGApp(session=first)
    async with app.run_test(size=(100, 30)) as pilot:
        await until(lambda: first.snapshot().progress is not None)
        await pilot.press("p")
        await until(lambda: live_run.trainer.state == TrainerState.PAUSED)
        await until(lambda: first.snapshot().state == second.snapshot().state == TrainerState.PAUSED)
        await pilot.press("s")
        await until(lambda: all("(requested)" in " ".join(t for *_, t in s.snapshot().log) for s in (first, second)))
        first.controls.set(noise_sigma=0.05)  # what the h dialog's apply calls
        await until(lambda: live_run.trainer.config.noise_sigma == 0.05)
        await until(lambda: any("noise_sigma=0.05 (channel)" in t for *_, t in second.snapshot().log))
        await pilot.press("e")
        await until(lambda: any(t.startswith("eval ") for *_, t in second.snapshot().log))
        await pilot.press("p")
        await until(lambda: live_run.trainer.state == TrainerState.TRAINING)
        await pilot.press("q")
        await until(lambda: isinstance(app.screen, DetachOrStopScreen))
        await pilot.press("d")  # detach: the run goes on
        await until(lambda: first.finished.is_set())
    assert first.detached and live_run.thread.is_alive()
    step = live_run.trainer.step
    await until(lambda: live_run.trainer.step > step)
    assert second.snapshot().state == TrainerState.TRAINING  # the other client is still attached
    second.detach()
    watcher.join(10)


async def test_stop_from_an_attached_dashboard_saves_and_ends_the_run(live_run: LiveRun) -> None:
    session = RemoteSession(live_run.run_dir)
    app = DDPGApp(session=session)
    async with app.run_test(size=(100, 30)) as pilot:
        await until(lambda: session.snapshot().progress is not None)
        await pilot.press("q")
        await until(lambda: isinstance(app.screen, DetachOrStopScreen))
        await pilot.press("s")
        await until(lambda: not live_run.thread.is_alive(), timeout=60)
    assert live_run.trainer.state == TrainerState.STOPPED
    assert (live_run.run_dir / "checkpoints" / "latest.pt").exists()
    assert session.snapshot().state == TrainerState.STOPPED and session.snapshot().message != GONE


async def test_a_client_whose_run_dies_says_so_in_one_line_and_keeps_the_history(live_run: LiveRun) -> None:
    session = RemoteSession(live_run.run_dir)
    worker = threading.Thread(target=session.run)
    worker.start()
    await until(lambda: len(session.snapshot().episode_steps) >= 2)
    episodes = session.snapshot().episode_steps
    live_run.server.close()  # as if the process had died: the channel goes, with no last StateChanged
    worker.join(10)
    snapshot = session.snapshot()
    assert snapshot.state == TrainerState.ERROR and snapshot.message == GONE
    assert snapshot.episode_steps[:len(episodes)] == episodes
    assert [t for *_, t in snapshot.log if GONE in t] == [f"warning: {GONE}"]


def test_attaching_to_a_run_that_is_not_live_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ChannelError, match="is not a live run"):
        RemoteSession(tmp_path)


async def test_a_paused_run_attached_to_shows_its_whole_history_in_the_plots(live_run: LiveRun) -> None:
    from ddpg_tui.ui.widgets.plots import RewardPlot

    await until(lambda: live_run.trainer.episode >= 3)
    live_run.controls.pause()
    await until(lambda: live_run.trainer.state == TrainerState.PAUSED)
    session = RemoteSession(live_run.run_dir)
    app = DDPGApp(session=session)
    async with app.run_test(size=(100, 30)) as pilot:
        await until(lambda: len(session.snapshot().episode_steps) >= 3)
        # No event comes while paused: the plot must still catch up with the history read after the first draw.
        await until(lambda: app.screen.query_one(RewardPlot)._drawn[0] == len(session.snapshot().episode_steps))
        assert any(t.startswith("attached: ") for *_, t in session.snapshot().log)
        await pilot.press("q")
        await pilot.press("d")


def test_attach_list_shows_each_live_run_with_its_step_speed_and_state(tiny_config: DDPGConfig, tmp_path: Path,
                                                                       monkeypatch, capsys) -> None:
    from ddpg_tui.cli.main import main

    monkeypatch.chdir(tmp_path)
    assert main(["attach", "--list"]) == 0
    assert capsys.readouterr().out == "no live run under runs/\n"
    run = LiveRun(tiny_config.replace(total_steps=1_000_000), Path("runs/live"))
    try:
        deadline = time.monotonic() + 30
        while run.trainer.step < 400:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        run.controls.pause()
        while run.trainer.state != TrainerState.PAUSED:
            time.sleep(0.05)
        assert main(["attach", "--list"]) == 0
        header, line = capsys.readouterr().out.splitlines()
        assert header.split() == ["run", "step", "steps/s", "state", "pid", "attached"]
        cells = line.split()
        assert cells[0] == "runs/live" and cells[1] == f"{run.trainer.step:,}/1,000,000" and cells[3] == "paused"
        assert cells[5] == "0", "the listing's own connection is no attached client"
    finally:
        run.controls.stop(save=False)
        run.thread.join(60)
