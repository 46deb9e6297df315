"""Everyone else's side of the channel: connect to a live run, send commands, follow its events.

A client that follows a run mid-way reads the run's history from metrics.jsonl first: the rows with a
step below the subscription's `history_before`, then the subscription's `tail`, then the stream (see
server.py for why that has no gap and no step twice).
"""

from __future__ import annotations

import contextlib
import itertools
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agents.events import Event
from ddpg_tui.channel.location import ChannelError, live_control
from ddpg_tui.channel.protocol import LineBuffer, ProtocolError, decode_line, encode, event_from_message

REPLY_TIMEOUT_SECONDS = 5.0


class CommandRefused(ChannelError):
    """The server answered a request with an error (a bad value, a run that has ended)."""


@dataclass(frozen=True, slots=True)
class Subscription:
    history_before: int  # read metrics.jsonl rows with a step below this one
    tail: tuple[Event, ...]  # then these, then the stream
    status: dict[str, Any]


class ChannelClient:
    """One connection to a run's server. Events are handed to `on_event` in the client's reader thread;
    `on_disconnect` is called once when the server goes away (the run ended, or its process died)."""

    def __init__(self, sock: socket.socket, on_event: Callable[[Event], None] | None = None,
                 on_disconnect: Callable[[], None] | None = None) -> None:
        self._sock = sock
        self.on_event = on_event or (lambda event: None)
        self.on_disconnect = on_disconnect or (lambda: None)
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._waiting: dict[int, list[dict[str, Any]]] = {}
        self._answered = threading.Condition(self._lock)
        self.connected = threading.Event()
        self.connected.set()
        self.disconnected = threading.Event()  # the twin of connected, to wait on
        self._reader = threading.Thread(target=self._read, name="channel-client", daemon=True)
        self._reader.start()

    @classmethod
    def connect(cls, run_dir: Path, **callbacks: Any) -> ChannelClient:
        """Connect to the live run in `run_dir`; ChannelError says why it is not live (never was, ended, stale)."""
        control = live_control(run_dir)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.connect(control.socket)
        except OSError as error:
            sock.close()
            raise ChannelError(f"cannot connect to {run_dir}'s process {control.pid}: "
                               f"{error.strerror or error}") from None
        return cls(sock, **callbacks)

    def request(self, cmd: str, timeout: float = REPLY_TIMEOUT_SECONDS, **fields: Any) -> dict[str, Any]:
        """Send a command and wait for its reply; CommandRefused for an error reply, ChannelError if the run is gone."""
        request_id = next(self._ids)
        with self._lock:
            self._waiting[request_id] = []
        try:
            self._sock.sendall(encode({"cmd": cmd, "id": request_id, **fields}))
        except OSError:
            with self._lock:
                self._waiting.pop(request_id, None)
            raise ChannelError("the training process has gone away") from None
        with self._answered:
            self._answered.wait_for(lambda: self._waiting[request_id] or not self.connected.is_set(), timeout)
            answer = self._waiting.pop(request_id)
        if not answer:
            raise ChannelError("the training process has gone away" if not self.connected.is_set()
                               else f"no answer to {cmd} within {timeout:.0f} s")
        if answer[0].get("type") == "error":
            raise CommandRefused(str(answer[0].get("message", "refused")))
        return answer[0]

    def subscribe(self) -> Subscription:
        reply = self.request("subscribe")
        before = int(reply["history_before"])
        tail = tuple(event_from_message(message) for message in reply.get("tail", ()))
        return Subscription(before, tail, dict(reply.get("status") or {}))

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._sock.shutdown(socket.SHUT_RDWR)
        self._reader.join(2.0)
        self._sock.close()

    def _read(self) -> None:
        lines = LineBuffer(limit=64 * 1024 * 1024)  # an evaluation's recording can be long
        try:
            while True:
                try:
                    data = self._sock.recv(65536)
                except OSError:
                    break
                if not data:
                    break
                for line in lines.feed(data):
                    self._dispatch(line)
        except ProtocolError:
            pass  # a server that sends garbage is treated as gone
        finally:
            with self._answered:
                self.connected.clear()
                self._answered.notify_all()
            self.disconnected.set()
            self._sock.close()  # the server has gone: nothing more to read or send (close() may still be called)
            self.on_disconnect()

    def _dispatch(self, line: bytes) -> None:
        message = decode_line(line)
        if message.get("type") == "event":
            try:
                event = event_from_message(message)
            except ProtocolError:
                return  # an event a newer server knows and this client does not
            self.on_event(event)
            return
        with self._answered:
            waiting = self._waiting.get(message.get("id"))  # type: ignore[arg-type]
            if waiting is not None:
                waiting.append(message)
                self._answered.notify_all()

