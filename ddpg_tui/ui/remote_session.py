"""A run trained by another process, as the dashboard sees it: the Session protocol over the run's channel.

The dashboard cannot tell it from the app's own TrainingSession: the same folding of events into a
Snapshot (this is a TrainingSession that never trains), and Controls whose requests go over the
channel instead of into a queue. The history comes from metrics.jsonl first, then the stream (see
ddpg_tui/channel/server.py). `run()`, the dashboard's worker, returns when the channel closes: the run
ended, the process died (the snapshot says so in one line and keeps the history), or the user detached.
"""

from __future__ import annotations

import threading
import tomllib
from pathlib import Path
from typing import Any

from agents.config import ConfigError, DDPGConfig
from agents.controls import Controls
from agents.events import Event, Notice, StateChanged, TrainerState
from agents.run_files import read_history
from ddpg_tui.channel.client import ChannelClient, CommandRefused
from ddpg_tui.channel.location import ChannelError
from ddpg_tui.channel.protocol import event_from_message
from ddpg_tui.request import TrainingRequest
from ddpg_tui.ui.session import ACTIVE_STATES, TrainingSession

GONE = "the training process has gone away; showing the run as it was"


class RemoteControls(Controls):
    """Controls whose requests go to the run's process; False (or ConfigError) once it is gone."""

    def __init__(self, client: ChannelClient) -> None:
        super().__init__()
        self.client = client

    def _ask(self, cmd: str, **fields: Any) -> bool:
        try:
            self.client.request(cmd, **fields)
        except ChannelError:
            return False
        return True

    def pause(self) -> bool:
        return self._ask("pause")

    def resume(self) -> bool:
        return self._ask("resume")

    def toggle_pause(self) -> bool:
        return self._ask("toggle_pause")

    def evaluate(self) -> bool:
        return self._ask("evaluate")

    def save(self) -> bool:
        return self._ask("save")

    def stop(self, save: bool = True) -> bool:
        return self._ask("stop", save=save)

    def set(self, *, source: str = "channel", **changes: Any) -> dict[str, Any]:
        try:
            return self.client.request("set", changes=changes)["changes"]
        except CommandRefused as error:
            raise ConfigError(str(error)) from None
        except ChannelError:
            raise ConfigError("training has ended; nothing to change") from None

    @property
    def closed(self) -> bool:
        return not self.client.connected.is_set()


class _RemoteFlag(threading.Event):
    """record_evaluations of the remote run: the Agent panel's set/clear is sent to the process."""

    def __init__(self, controls: RemoteControls) -> None:
        super().__init__()
        self._controls = controls

    def set(self) -> None:
        super().set()
        self._controls._ask("record_evaluations", on=True)

    def clear(self) -> None:
        super().clear()
        self._controls._ask("record_evaluations", on=False)


class RemoteSession(TrainingSession):
    detachable = True  # quitting asks: detach (the run goes on) or stop
    HISTORY_WORD = "attached"

    def __init__(self, run_dir: Path) -> None:
        """Connect to the live run in `run_dir`; ChannelError says why it is not live."""
        super().__init__(TrainingRequest(None, Path(run_dir)))
        self._early: list[Event] | None = []  # events that came before the history was folded
        self._early_lock = threading.Lock()
        self.client = ChannelClient.connect(Path(run_dir), on_event=self._on_event)
        self.controls = RemoteControls(self.client)
        self.record_evaluations = _RemoteFlag(self.controls)
        self.detached = False
        self.config = _effective_config(Path(run_dir))
        self.env_id = self.config.env_id if self.config else ""

    def run(self) -> None:
        """Fold the history, then the stream, until the channel closes."""
        try:
            self._follow()
        finally:
            self.finished.set()

    def _follow(self) -> None:
        try:
            subscription = self.client.subscribe()
        except ChannelError:
            self._gone()
            return
        status = subscription.status
        self.env_id = status.get("env_id") or self.env_id
        history = read_history(self.request.run_dir / "metrics.jsonl", subscription.history_before - 1)
        self.load_history(history)
        for event in subscription.tail:
            self.sink(event)
        state = status.get("state")
        if state:
            self.sink(StateChanged(int(status.get("step", 0)), TrainerState(state), status.get("message", "")))
        if status.get("progress"):
            self.sink(event_from_message(status["progress"]))
        with self._early_lock:
            early, self._early = self._early or [], None
        for event in early:
            self.sink(event)
        self.client.disconnected.wait()
        if not self.detached and self.snapshot().state in ACTIVE_STATES:
            self._gone()

    def _on_event(self, event: Event) -> None:
        with self._early_lock:
            if self._early is not None:
                self._early.append(event)
                return
        self.sink(event)

    def _gone(self) -> None:
        step = self.snapshot().progress.step if self.snapshot().progress else 0
        self.sink(Notice(step, GONE))
        self.sink(StateChanged(step, TrainerState.ERROR, GONE))

    def detach(self) -> None:
        """Leave the run going: close the connection only."""
        self.detached = True
        self.client.close()


def _effective_config(run_dir: Path) -> DDPGConfig | None:
    """The run's config as of its last save (what the `h` dialog starts from); None if unreadable."""
    try:
        data = tomllib.loads((run_dir / "config.effective.toml").read_text(encoding="utf-8"))
        values = {"env_id": data.get("env_id"), **data.get("hyperparameters", {})}
        values = {k: tuple(v) if isinstance(v, list) else v for k, v in values.items() if v is not None}
        return DDPGConfig.from_mapping(values)
    except (OSError, ValueError, TypeError, ConfigError):
        return None
