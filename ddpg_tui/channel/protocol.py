"""The channel's messages: one JSON object a line, both ways.

A client sends requests, `{"cmd": NAME, "id": ANY, ...}`; the server answers each with
`{"type": "reply", "id": ..., "ok": true, ...}` or `{"type": "error", "id": ..., "message": ...}`,
and, once the client has subscribed, sends the trainer's events as `{"type": "event", "event":
CLASS, "data": {...}}`. A command's effect is confirmed by the trainer's own events (StateChanged,
ConfigChanged, Saved), exactly as the app's keys are: the reply only says the command was queued.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agents import events as trainer_events
from agents.events import ConfigChanged, EpisodeEnd, EvalResult, Event, Saved, StateChanged, TrainerState, UpdateStats

HISTORY_EVENTS = (EpisodeEnd, UpdateStats, EvalResult, ConfigChanged)  # the kinds read back from metrics.jsonl
MAX_LINE = 64 * 1024  # a request is a few dozen bytes; a longer line is an attack or a bug

# cmd -> the fields it takes besides "cmd" and "id", with their types
COMMANDS: dict[str, dict[str, type | tuple[type, ...]]] = {
    "status": {},
    "subscribe": {},
    "pause": {},
    "resume": {},
    "toggle_pause": {},
    "evaluate": {},
    "save": {},
    "stop": {"save": bool},
    "set": {"changes": dict},
    "record_evaluations": {"on": bool},  # the Agent panel of an attached dashboard wants the episodes
}

EVENT_CLASSES: dict[str, type] = {
    cls.__name__: cls for cls in (
        trainer_events.StepStats, trainer_events.EpisodeEnd, trainer_events.UpdateStats, trainer_events.EvalResult,
        trainer_events.EvalRecording, trainer_events.Saved, trainer_events.ConfigChanged,
        trainer_events.StateChanged, trainer_events.Notice, trainer_events.ThreadsChanged,
        trainer_events.TrainingError)
}


class ProtocolError(ValueError):
    """A line that is not a valid request or message; its text is what the other side is told."""


@dataclass(frozen=True, slots=True)
class Request:
    cmd: str
    id: Any = None
    fields: dict[str, Any] = dataclasses.field(default_factory=dict)


def encode(message: dict[str, Any]) -> bytes:
    return (json.dumps(message, separators=(",", ":")) + "\n").encode()


def decode_line(line: bytes) -> dict[str, Any]:
    try:
        message = json.loads(line)
    except (ValueError, UnicodeDecodeError):
        raise ProtocolError("not a JSON line") from None
    if not isinstance(message, dict):
        raise ProtocolError("a message is a JSON object")
    return message


def parse_request(line: bytes) -> Request:
    """A client's line as a Request; ProtocolError says what is wrong with it (the id is kept when readable)."""
    message = decode_line(line)
    request_id = message.get("id")
    if not isinstance(request_id, (str, int, type(None))) or isinstance(request_id, bool):
        raise ProtocolError("id must be a string or an integer")
    cmd = message.get("cmd")
    if cmd not in COMMANDS:
        raise ProtocolError(f"unknown command {cmd!r}; one of: {', '.join(COMMANDS)}")
    fields: dict[str, Any] = {}
    for name, value in message.items():
        if name in ("cmd", "id"):
            continue
        kind = COMMANDS[cmd].get(name)
        if kind is None:
            raise ProtocolError(f"{cmd} takes no field {name!r}")
        if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
            raise ProtocolError(f"{cmd}: {name} must be a {getattr(kind, '__name__', kind)}")
        fields[name] = value
    if cmd == "set" and not fields.get("changes"):
        raise ProtocolError("set needs changes, e.g. {\"cmd\": \"set\", \"changes\": {\"actor_lr\": 0.001}}")
    return Request(cmd, request_id, fields)


def _plain(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def event_message(event: Event) -> dict[str, Any]:
    data = {f.name: _plain(getattr(event, f.name)) for f in dataclasses.fields(event)}
    return {"type": "event", "event": type(event).__name__, "data": data}


def _tuples(value: Any) -> Any:
    return tuple(_tuples(v) for v in value) if isinstance(value, list) else value


def event_from_message(message: dict[str, Any]) -> Event:
    """The event a server's message carries; ProtocolError for one this version does not know."""
    cls = EVENT_CLASSES.get(message.get("event"))  # type: ignore[arg-type]
    data = message.get("data")
    if cls is None or not isinstance(data, dict):
        raise ProtocolError(f"unknown event {message.get('event')!r}")
    names = {f.name for f in dataclasses.fields(cls)}
    values = {k: v for k, v in data.items() if k in names}
    if cls is Saved and "path" in values:
        values["path"] = Path(values["path"])
    if cls is StateChanged and "state" in values:
        values["state"] = TrainerState(values["state"])
    for name in ("returns", "lengths", "actions", "rewards"):  # the tuple fields; a change's values stay as sent
        if name in values:
            values[name] = _tuples(values[name])
    try:
        return cls(**values)
    except (TypeError, ValueError) as error:
        raise ProtocolError(f"bad {cls.__name__}: {error}") from None


class LineBuffer:
    """Bytes from a socket, cut into lines; a line longer than MAX_LINE raises ProtocolError."""

    def __init__(self, limit: int = MAX_LINE) -> None:
        self._pending = bytearray()
        self.limit = limit

    def feed(self, data: bytes) -> list[bytes]:
        self._pending += data
        *lines, rest = self._pending.split(b"\n")
        self._pending = bytearray(rest)
        if len(self._pending) > self.limit or any(len(line) > self.limit for line in lines):
            raise ProtocolError(f"a line is longer than {self.limit} bytes")
        return [line for line in lines if line.strip()]

    @property
    def partial(self) -> bool:
        return bool(self._pending)
