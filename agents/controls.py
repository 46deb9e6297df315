"""Controls: how any thread steers a running trainer.

Every request returns at once; the trainer applies it between two environment steps and
confirms it with an event. Once the trainer has ended, requests are refused (they return
False) instead of disappearing into a queue that nobody reads any more.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from agents.config import FIELDS, ConfigError, validate_field

# Who may ask for a live change; recorded with each change in metrics.jsonl. "key": the app's
# `h` dialog; "channel": a command sent over the run's control channel (ddpg_tui/channel/, e.g. `ddpg-tui attach`).
SOURCES = ("key", "channel")


@dataclass(frozen=True, slots=True)
class Command:
    name: str  # pause, resume, toggle_pause, evaluate, save, stop, stop_at_episode_end, set
    changes: dict[str, Any] | None = None
    source: str = "key"  # for "set": who asked, one of SOURCES


class Controls:
    """Thread-safe requests to a running trainer."""

    def __init__(self) -> None:
        self._commands: queue.SimpleQueue[Command] = queue.SimpleQueue()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._closed = False
        self.save_on_stop = True

    def pause(self) -> bool:
        return self._put(Command("pause"))

    def resume(self) -> bool:
        return self._put(Command("resume"))

    def toggle_pause(self) -> bool:
        return self._put(Command("toggle_pause"))

    def evaluate(self) -> bool:
        return self._put(Command("evaluate"))

    def save(self) -> bool:
        return self._put(Command("save"))

    def stop_at_episode_end(self) -> bool:
        """Stop with a save at the next episode boundary (now, if at one): a resume from it is bit-exact,
        so another process can carry the run on as if it had never stopped."""
        return self._put(Command("stop_at_episode_end"))

    def stop(self, save: bool = True) -> bool:
        """End training after the current step; with `save`, write a checkpoint first."""
        with self._lock:
            if self._closed:
                return False
            self.save_on_stop = save
            self._stop.set()
            self._commands.put(Command("stop"))
            return True

    def set(self, *, source: str = "key", **changes: Any) -> dict[str, Any]:
        """Validate in the caller's thread (so a form can mark the field), then queue.

        `source` says who asked (one of SOURCES); the run records it with the change.
        Raises ConfigError for a bad value, or when training has already ended.
        """
        if source not in SOURCES:
            raise ConfigError(f"unknown source {source!r} of a change; one of: {', '.join(SOURCES)}")
        clean: dict[str, Any] = {}
        for name, value in changes.items():
            if name not in FIELDS:
                raise ConfigError(f"unknown hyperparameter {name!r}")
            if not FIELDS[name].live:
                live = ", ".join(n for n, s in FIELDS.items() if s.live)
                raise ConfigError(f"{name} cannot change while training runs; live fields: {live}")
            clean[name] = validate_field(name, value)
        if not self._put(Command("set", clean, source)):
            raise ConfigError("training has ended; nothing to change")
        return clean

    def request(self, command: Command) -> bool:
        """Queue a recorded command again (agents.run_files.recorded_requests); a change is validated as by `set`."""
        if command.name == "set":
            self.set(source=command.source, **(command.changes or {}))
            return True
        if command.name == "stop":
            return self.stop()
        return self._put(command)

    @property
    def stop_requested(self) -> bool:
        return self._stop.is_set()

    @property
    def closed(self) -> bool:
        return self._closed

    # The trainer's side ----------------------------------------------------------------

    def pending(self) -> bool:
        return not self._commands.empty()

    def next(self, timeout: float | None = None) -> Command | None:
        try:
            return self._commands.get(timeout=timeout) if timeout else self._commands.get_nowait()
        except queue.Empty:
            return None

    def close(self) -> list[Command]:
        """Refuse every later request, and hand back the ones still queued so that the
        trainer can answer each instead of dropping it silently."""
        with self._lock:
            self._closed = True
            left: list[Command] = []
            while (command := self.next()) is not None:
                left.append(command)
            return left

    def _put(self, command: Command) -> bool:
        with self._lock:
            if self._closed:
                return False
            self._commands.put(command)
            return True


@dataclass(frozen=True, slots=True)
class CommandHandlers:
    """What a trainer does for each command; `apply_commands` owns their order and the pause."""

    pause: Callable[[], None]
    resume: Callable[[], None]
    evaluate: Callable[[bool], None]  # the argument: paused, so the evaluation returns to the pause
    save: Callable[[], None]
    other: Callable[[Command], None]  # set, stop_at_episode_end: what each trainer does its own way


def apply_commands(controls: Controls, handlers: CommandHandlers) -> None:
    """Apply the pending commands in order, between two environment steps. A pause holds here,
    applying what comes, until a resume or a stop; a stop returns at once (the caller ends the run)."""
    paused = False
    while True:
        command = controls.next(timeout=0.05 if paused else None)
        if command is None:
            if paused and not controls.stop_requested:
                continue
            return
        name = command.name
        if name == "stop":
            return
        if name in ("pause", "toggle_pause") and not paused:
            paused = True
            handlers.pause()
        elif name in ("resume", "toggle_pause") and paused:
            paused = False
            handlers.resume()
        elif name == "evaluate":
            handlers.evaluate(paused)
        elif name == "save":
            handlers.save()
        elif name not in ("pause", "resume", "toggle_pause"):  # a pause while paused changes nothing
            handlers.other(command)
