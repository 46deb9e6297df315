"""The training process's side of the channel: listen on the run's socket, take commands, stream events.

`publish` is the Trainer's event sink (wired by the front-end next to its own); it runs in the training
thread, so it never waits: each client has a bounded queue that a writer thread drains, and a client
whose queue is full (it connected and does not read) is dropped instead of slowing the run down.
Commands go to the run's Controls, which validate them exactly as the app's keys do; their effect is
confirmed by the trainer's own events (StateChanged, ConfigChanged, Saved), which every subscriber sees.

History without a gap or a step twice: metrics.jsonl gets each row, flushed, before the trainer hands
the event to the sink, and events come with non-decreasing steps. So when a client subscribes after
the last history event was of step B, every row of a step below B is in the file, and the events of
step B so far are sent with the reply (the `tail`): the client reads the rows with step <
`history_before` (= B), then the tail, then the stream, whose events are all of step B or later.
"""

from __future__ import annotations

import contextlib
import os
import queue
import socket
import struct
import threading
from pathlib import Path
from typing import Any

from agents.config import ConfigError
from agents.controls import Controls
from agents.events import Event, StateChanged, StepStats, TrainerState
from agents.run_files import read_history
from ddpg_tui.channel.location import (
    ChannelError,
    answers,
    remove_control_file,
    socket_path_for,
    write_control_file,
)
from ddpg_tui.channel.protocol import (
    HISTORY_EVENTS,
    LineBuffer,
    ProtocolError,
    Request,
    encode,
    event_message,
    parse_request,
)

QUEUE_LIMIT = 2000  # messages waiting for one client; a dashboard reads them within milliseconds
MAX_CLIENTS = 16
CLOSE_GRACE_SECONDS = 2.0  # at the end of the run, how long the last events may take to reach the clients
_UCRED = struct.Struct("3i")  # pid, uid, gid of SO_PEERCRED


class _Client:
    def __init__(self, conn: socket.socket) -> None:
        self.conn = conn
        self.outbox: queue.Queue[bytes | None] = queue.Queue(maxsize=QUEUE_LIMIT)
        self.subscribed = False
        self.wants_recordings = False
        self.closed = False
        self.writer = threading.Thread(target=self._write, name="channel-writer", daemon=True)

    def send(self, message: dict[str, Any]) -> bool:
        """Queue a message without waiting; False (and the client is cut off) when its queue is full."""
        if self.closed:
            return False
        try:
            self.outbox.put_nowait(encode(message))
        except queue.Full:
            self.close()
            return False
        return True

    def finish(self) -> None:
        """Let the writer send what is queued, then end."""
        with contextlib.suppress(queue.Full):
            self.outbox.put_nowait(None)

    def close(self) -> None:
        # shutdown, not close: it wakes the reader's recv and the writer's sendall; the reader closes the fd.
        self.closed = True
        with contextlib.suppress(OSError):
            self.conn.shutdown(socket.SHUT_RDWR)

    def _write(self) -> None:
        while (data := self.outbox.get()) is not None and not self.closed:
            try:
                self.conn.sendall(data)
            except OSError:
                break
        self.close()


class ChannelServer:
    """Serves one run. `publish` is thread-safe and never blocks; `start` and `close` are the front-end's."""

    def __init__(self, run_dir: Path, controls: Controls, *, env_id: str = "",
                 record_evaluations: threading.Event | None = None, allowed_uid: int | None = None) -> None:
        self.run_dir = Path(run_dir)
        self.controls = controls
        self.env_id = env_id
        self.record_evaluations = record_evaluations
        self.allowed_uid = os.getuid() if allowed_uid is None else allowed_uid
        self.socket_path: Path | None = None
        self._lock = threading.Lock()
        self._clients: list[_Client] = []
        self._listener: socket.socket | None = None
        self._closing = False
        self._start_step = 0
        self._last_step = 0
        self._at_last_step: list[Event] = []  # the history events of _last_step published so far
        self._progress: StepStats | None = None
        self._state = TrainerState.STARTING
        self._message = ""

    # The training thread's side ----------------------------------------------------------

    def publish(self, event: Event) -> None:
        message = None
        with self._lock:
            if isinstance(event, HISTORY_EVENTS):
                if event.step != self._last_step:
                    self._last_step, self._at_last_step = event.step, []
                self._at_last_step.append(event)
            elif isinstance(event, StepStats):
                self._progress = event
            elif isinstance(event, StateChanged):
                self._state, self._message = event.state, event.message
            for client in self._clients:
                if client.subscribed:
                    message = message or event_message(event)
                    client.send(message)

    # The front-end's side -----------------------------------------------------------------

    def start(self, start_step: int = 0) -> Path:
        """Listen on the run's socket and write control.json; ChannelError or OSError if it cannot.

        `start_step` is the step the run starts from (a resumed run's checkpoint step).
        """
        self._start_step = self._last_step = start_step
        # The rows of the start step already in the file (a resumed run's last episode, say) belong to the
        # tail: a client reads only the rows of the steps before it. The trainer keeps exactly these when
        # it drops the rows its checkpoint never saw.
        with self._lock:
            self._at_last_step = [event for event in read_history(self.run_dir / "metrics.jsonl", start_step)
                                  if event.step == start_step]
        path = socket_path_for(self.run_dir)
        if path.exists() or path.is_symlink():
            if answers(str(path)):
                raise ChannelError(f"another process already listens on {path} for {self.run_dir}")
            path.unlink()  # left by a process that died: we hold the run's lock, so it is no one's
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            listener.bind(str(path))
            os.chmod(path, 0o600)  # the folder is 0700 already; the socket alone is private too
            listener.listen(64)  # clients come in bursts (a probe, then the connection)
            write_control_file(self.run_dir, path)
        except OSError:
            listener.close()
            with contextlib.suppress(OSError):
                path.unlink()
            raise
        self._listener, self.socket_path = listener, path
        threading.Thread(target=self._accept, name="channel-accept", daemon=True).start()
        return path

    def close(self) -> None:
        """Stop listening, let the clients get the last events, remove the socket and control.json."""
        with self._lock:
            if self._closing:
                return
            self._closing = True
            clients = list(self._clients)
        if self._listener is not None:
            with contextlib.suppress(OSError):
                self._listener.shutdown(socket.SHUT_RDWR)
            self._listener.close()
        for client in clients:
            client.finish()
        for client in clients:
            client.writer.join(CLOSE_GRACE_SECONDS / max(1, len(clients)))
            client.close()
        if self.socket_path is not None:
            with contextlib.suppress(OSError):
                self.socket_path.unlink()
            remove_control_file(self.run_dir)

    def status(self) -> dict[str, Any]:
        with self._lock:
            return self._status()

    def _status(self) -> dict[str, Any]:
        p = self._progress
        return {
            "pid": os.getpid(), "run_dir": str(self.run_dir), "env_id": self.env_id, "state": self._state.value,
            "message": self._message, "step": p.step if p else self._start_step,
            "total_steps": p.total_steps if p else None, "steps_per_second": p.steps_per_second if p else 0.0,
            "episode": p.episode if p else 0, "clients": len(self._clients),
            "progress": event_message(p) if p else None,
        }

    # Connections ------------------------------------------------------------------------

    def _accept(self) -> None:
        assert self._listener is not None
        while not self._closing:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return  # closed
            conn.settimeout(None)
            if not self._peer_allowed(conn):
                conn.close()
                continue
            client = _Client(conn)
            client.writer.start()  # before close() can see the client and join its writer
            with self._lock:
                full = len(self._clients) >= MAX_CLIENTS or self._closing
                if not full:
                    self._clients.append(client)
            if full:
                client.send({"type": "error", "id": None, "message": "too many clients"})
                client.finish()
                client.writer.join(1.0)
                conn.close()
                continue
            threading.Thread(target=self._serve, args=(client,), name="channel-reader", daemon=True).start()

    def _peer_allowed(self, conn: socket.socket) -> bool:
        try:
            _, uid, _ = _UCRED.unpack(conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _UCRED.size))
        except OSError:
            return False
        return uid == self.allowed_uid

    def _serve(self, client: _Client) -> None:
        lines = LineBuffer()
        try:
            while not client.closed:
                try:
                    data = client.conn.recv(4096)
                except OSError:
                    break
                if not data:
                    break  # the client went away; a half line it left is no request
                try:
                    batch = lines.feed(data)
                except ProtocolError as error:
                    client.send({"type": "error", "id": None, "message": str(error)})
                    client.finish()
                    break
                for line in batch:
                    self._answer(client, line)
        finally:
            with self._lock:
                if client in self._clients:
                    self._clients.remove(client)
                self._update_recording()
            client.finish()
            client.writer.join(1.0)
            client.close()
            client.conn.close()

    def _answer(self, client: _Client, line: bytes) -> None:
        try:
            request = parse_request(line)
        except ProtocolError as error:
            client.send({"type": "error", "id": None, "message": str(error)})
            return
        try:
            extra = self._run(client, request)
        except (ConfigError, ProtocolError) as error:
            client.send({"type": "error", "id": request.id, "message": str(error)})
            return
        if extra is not None:
            client.send({"type": "reply", "id": request.id, "ok": True, **extra})

    def _run(self, client: _Client, request: Request) -> dict[str, Any] | None:
        controls, cmd = self.controls, request.cmd
        if cmd == "status":
            return self.status()
        if cmd == "subscribe":
            self._subscribe(client, request)
            return None  # answered under the lock, before any event
        if cmd == "record_evaluations":
            with self._lock:
                client.wants_recordings = request.fields["on"]
                self._update_recording()
            return {}
        if cmd == "set":
            clean = controls.set(source="channel", **request.fields["changes"])
            return {"changes": {k: list(v) if isinstance(v, tuple) else v for k, v in clean.items()}}
        queued = controls.stop(save=request.fields.get("save", True)) if cmd == "stop" \
            else getattr(controls, cmd)()
        if not queued:
            raise ProtocolError("training has ended; nothing to do")
        return {}

    def _subscribe(self, client: _Client, request: Request) -> None:
        with self._lock:
            if client.subscribed:
                raise ProtocolError("already subscribed")
            before, tail = self._last_step, [event_message(e) for e in self._at_last_step]
            client.send({"type": "reply", "id": request.id, "ok": True, "history_before": before, "tail": tail,
                         "status": self._status()})
            client.subscribed = True

    def _update_recording(self) -> None:
        """Under the lock: record evaluation episodes while any attached client shows the agent."""
        if self.record_evaluations is None:
            return
        if any(c.wants_recordings for c in self._clients):
            self.record_evaluations.set()
        else:
            self.record_evaluations.clear()
