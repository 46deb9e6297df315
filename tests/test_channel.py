"""The control channel of a live run (ddpg_tui/channel): real Unix sockets, trainers in threads of this process."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from agents.config import DDPGConfig
from agents.controls import Controls
from agents.events import (
    ConfigChanged,
    EpisodeEnd,
    EvalRecording,
    EvalResult,
    Event,
    Notice,
    Saved,
    StateChanged,
    StepStats,
    ThreadsChanged,
    TrainerState,
    TrainingError,
    UpdateStats,
)
from agents.trainer import Trainer
from ddpg_tui.channel.client import ChannelClient, CommandRefused
from ddpg_tui.channel.location import CONTROL_FILE, ChannelError, live_control, live_runs, socket_path_for
from ddpg_tui.channel.protocol import HISTORY_EVENTS, encode, event_from_message, event_message
from ddpg_tui.channel.server import QUEUE_LIMIT, ChannelServer
from ddpg_tui.request import TrainingRequest
from ddpg_tui.ui.session import TrainingSession, read_history


def wait_for(condition: Callable[[], object], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.01)


class Collector:
    """A client's events, as an attached dashboard would get them."""

    def __init__(self) -> None:
        self.events: list[Event] = []
        self.gone = threading.Event()

    def __call__(self, event: Event) -> None:
        self.events.append(event)

    def connect(self, run_dir: Path) -> ChannelClient:
        return ChannelClient.connect(run_dir, on_event=self, on_disconnect=self.gone.set)

    def of(self, cls: type) -> list:
        return [e for e in self.events if isinstance(e, cls)]


@pytest.fixture
def idle_server(tmp_path: Path) -> Iterator[ChannelServer]:
    """A server with Controls but no trainer: the test publishes the events itself."""
    server = ChannelServer(tmp_path / "run", Controls())
    (tmp_path / "run").mkdir()
    server.start()
    yield server
    server.close()


def raw(server: ChannelServer) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(10)
    sock.connect(str(server.socket_path))
    return sock


def read_message(sock: socket.socket) -> dict:
    data = b""
    while not data.endswith(b"\n"):
        chunk = sock.recv(1)
        if not chunk:
            raise EOFError(data)
        data += chunk
    return json.loads(data)


def hung_up(sock: socket.socket) -> bool:
    """The server closed the connection (a reset counts: it closed with our request unread)."""
    try:
        return sock.recv(100) == b""
    except ConnectionResetError:
        return True
    finally:
        sock.close()


def test_every_event_crosses_the_channel_unchanged(tmp_path: Path) -> None:
    events = [
        StepStats(1, 2, 3, 4.5, 6, 7, 0.1, 8.0, 9), EpisodeEnd(200, 1, -1200.25, 200),
        UpdateStats(200, 100, 1.5, -2.5, float("nan")), EvalResult(400, -900.0, 10.0, (-890.0, -910.0), True),
        EvalRecording(400, "Pendulum-v1", 7, ((0.5,), (-1.0,)), (-1.0, -2.0), 30.0),
        Saved(400, tmp_path / "checkpoints" / "latest.pt", "requested"),
        ConfigChanged(300, {"actor_lr": 5e-4}, {"actor_lr": 1e-3}, "channel"),
        StateChanged(300, TrainerState.PAUSED, "why"), Notice(3, "note", "info"),
        ThreadsChanged(1000, 1, 2, "faster", {"1": 10.0}), TrainingError(5, "boom", "trace"),
    ]
    for event in events:
        back = event_from_message(json.loads(encode(event_message(event))))
        assert type(back) is type(event)
        if isinstance(event, UpdateStats):  # nan is not equal to itself
            assert back.mean_q != back.mean_q and back.step == event.step
        else:
            assert back == event


def test_the_socket_is_private_short_and_recorded_in_the_run_folder_until_the_end(tmp_path: Path) -> None:
    deep = tmp_path.joinpath(*["a-rather-long-folder-name"] * 8)
    deep.mkdir(parents=True)
    server = ChannelServer(deep, Controls())
    path = server.start()
    assert len(os.fsencode(path)) <= 100 and path == socket_path_for(deep)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    control = json.loads((deep / CONTROL_FILE).read_text())
    assert control == {"socket": str(path), "pid": os.getpid()}
    assert live_control(deep).socket == str(path) and live_runs(deep.parent) == [deep]
    server.close()
    assert not path.exists() and not (deep / CONTROL_FILE).exists()
    with pytest.raises(ChannelError, match="is not a live run"):
        live_control(deep)


def test_a_peer_of_another_user_is_refused(tmp_path: Path) -> None:
    (tmp_path / "run").mkdir()
    server = ChannelServer(tmp_path / "run", Controls(), allowed_uid=os.getuid() + 1)
    server.start()
    try:
        sock = raw(server)
        with contextlib.suppress(OSError):  # it may be closed already
            sock.sendall(encode({"cmd": "status"}))
        assert hung_up(sock)  # closed without a word
    finally:
        server.close()


def test_a_control_file_left_by_a_dead_process_is_stale(tmp_path: Path) -> None:
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    (tmp_path / CONTROL_FILE).write_text(json.dumps({"socket": "/nonexistent.sock", "pid": int(dead.stdout)}))
    with pytest.raises(ChannelError, match="stale"):
        live_control(tmp_path)
    # A live pid (this one) with no one listening on the socket is stale too.
    (tmp_path / CONTROL_FILE).write_text(json.dumps({"socket": str(tmp_path / "x.sock"), "pid": os.getpid()}))
    with pytest.raises(ChannelError, match="stale"):
        live_control(tmp_path)
    assert live_runs(tmp_path.parent) == []


def test_a_socket_file_left_by_a_dead_server_is_replaced(tmp_path: Path) -> None:
    path = socket_path_for(tmp_path)
    leftover = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    leftover.bind(str(path))
    leftover.close()  # the file stays, nobody listens
    server = ChannelServer(tmp_path, Controls())
    server.start()
    try:
        client = ChannelClient.connect(tmp_path)
        assert client.request("status")["pid"] == os.getpid()
        client.close()
    finally:
        server.close()


def test_bad_requests_get_an_error_reply_and_the_connection_goes_on(idle_server: ChannelServer) -> None:
    sock = raw(idle_server)
    for line, expected in [
        (b"not json\n", "not a JSON line"),
        (b"[1, 2]\n", "a message is a JSON object"),
        (encode({"cmd": "fly", "id": 1}), "unknown command 'fly'"),
        (encode({"cmd": "stop", "id": 2, "save": "yes"}), "stop: save must be a bool"),
        (encode({"cmd": "pause", "id": 3, "extra": 1}), "pause takes no field 'extra'"),
        (encode({"cmd": "set", "id": 4, "changes": {"actor_lr": 5}}), "actor_lr: 5.0 is not allowed"),
        (encode({"cmd": "set", "id": 5, "changes": {"hidden_sizes": [8]}}), "cannot change while training runs"),
        (encode({"cmd": "set", "id": 6, "changes": {"nope": 1}}), "unknown hyperparameter 'nope'"),
        (encode({"cmd": "set", "id": 7}), "set needs changes"),
    ]:
        sock.sendall(line)
        reply = read_message(sock)
        assert reply["type"] == "error" and expected in reply["message"], (line, reply)
    sock.sendall(b'{"cmd": "sta')  # half a line: no request yet ...
    sock.sendall(b'tus", "id": 8}\n')  # ... until the rest comes
    assert read_message(sock)["id"] == 8
    sock.close()


def test_a_half_line_and_a_hang_up_leave_the_server_serving(idle_server: ChannelServer) -> None:
    sock = raw(idle_server)
    sock.sendall(b'{"cmd": "pau')
    sock.close()
    client = ChannelClient.connect(idle_server.run_dir)
    assert client.request("status")["state"] == "starting"
    client.close()


def test_an_endless_line_is_refused_and_closed(idle_server: ChannelServer) -> None:
    sock = raw(idle_server)
    with contextlib.suppress(OSError):  # the server may close while we still send
        sock.sendall(b"x" * (200 * 1024))
    assert "longer than" in read_message(sock)["message"]
    assert hung_up(sock)


def test_a_client_that_never_reads_is_dropped_and_never_holds_the_trainer_up(idle_server: ChannelServer) -> None:
    sock = raw(idle_server)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.sendall(encode({"cmd": "subscribe", "id": 1}))
    assert read_message(sock)["ok"]  # subscribed; from now on it reads nothing
    good = Collector()
    reader = good.connect(idle_server.run_dir)
    reader.subscribe()
    published = 0
    for _ in range(20):  # the training thread: none of these may wait for the stuck client
        for _ in range(QUEUE_LIMIT // 2):
            idle_server.publish(Notice(published, "x" * 200))
            published += 1
        wait_for(lambda n=published: len(good.events) == n)  # the reading one keeps up, and gets everything
    assert idle_server.status()["clients"] == 1  # the stuck one was cut off
    reader.close()
    sock.close()


def test_commands_from_one_client_are_confirmed_to_every_client(tiny_config: DDPGConfig, tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    controls, server = Controls(), None
    server = ChannelServer(run_dir, controls)
    trainer = Trainer(tiny_config.replace(total_steps=1_000_000), server.publish, run_dir, controls=controls)
    server.start(trainer.step)
    thread = threading.Thread(target=trainer.run)
    thread.start()
    a, b = Collector(), Collector()
    client_a, client_b = a.connect(run_dir), b.connect(run_dir)
    try:
        client_a.subscribe()
        client_b.subscribe()
        client_a.request("pause")
        both = (a, b)
        wait_for(lambda: all(any(e.state == TrainerState.PAUSED for e in c.of(StateChanged)) for c in both))
        assert client_b.request("set", changes={"actor_lr": 5e-4}) ["changes"] == {"actor_lr": 5e-4}
        wait_for(lambda: all(c.of(ConfigChanged) for c in both))
        assert all(c.of(ConfigChanged)[0].changes == {"actor_lr": 5e-4} and c.of(ConfigChanged)[0].source == "channel"
                   for c in both)
        with pytest.raises(CommandRefused, match=r"gamma: 2\.0 is not allowed"):
            client_b.request("set", changes={"gamma": 2})
        client_b.request("save")
        wait_for(lambda: all(any(s.reason == "requested" for s in c.of(Saved)) for c in both))
        client_a.request("resume")
        client_b.request("stop", save=True)
        thread.join(60)
        assert not thread.is_alive()
        server.close()  # as the front-end does once the run is over
        wait_for(lambda: a.gone.is_set() and b.gone.is_set())  # both were told, after the last events
        for c in both:
            assert c.of(StateChanged)[-1].state == TrainerState.STOPPED
            assert any(s.reason == "interrupted" for s in c.of(Saved))
        rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
        assert [r["source"] for r in rows if r["kind"] == "change"] == ["channel"]
        with pytest.raises(ChannelError):
            client_a.request("pause")
        client_a.close()
        client_b.close()
    finally:
        controls.stop()
        thread.join(60)
        server.close()


def test_a_client_attached_mid_run_sees_each_history_row_once_and_none_missing(tiny_config: DDPGConfig,
                                                                                tmp_path: Path) -> None:
    # Three clients subscribe at different moments of a run; each one's history (the file's rows below the
    # subscription's step, then the tail, then the stream) must equal the whole run's metrics.jsonl.
    run_dir = tmp_path / "run"
    config = tiny_config.replace(total_steps=3000, eval_every=700, eval_episodes=1)
    controls = Controls()
    server = ChannelServer(run_dir, controls)
    trainer = Trainer(config, server.publish, run_dir, controls=controls)
    server.start(trainer.step)
    thread = threading.Thread(target=trainer.run)
    thread.start()
    seen: list[tuple[Collector, list[Event], object]] = []
    clients: list[ChannelClient] = []
    try:
        for at in (450, 1300, 2100):
            wait_for(lambda at=at: trainer.step >= at)
            collector = Collector()
            client = collector.connect(run_dir)
            subscription = client.subscribe()
            history = read_history(run_dir / "metrics.jsonl", subscription.history_before - 1)
            seen.append((collector, history, subscription))
            clients.append(client)
            if at == 1300:
                client.request("set", changes={"noise_sigma": 0.05})
        thread.join(120)
        assert not thread.is_alive()
    finally:
        controls.stop()
        thread.join(60)
        server.close()
    for client in clients:
        client.close()
    whole = read_history(run_dir / "metrics.jsonl", 10**9)
    assert any(isinstance(e, ConfigChanged) for e in whole) and any(isinstance(e, EvalResult) for e in whole)
    for collector, history, subscription in seen:
        followed = history + list(subscription.tail) + [e for e in collector.events if isinstance(e, HISTORY_EVENTS)]
        assert followed == whole


def test_the_apps_training_session_listens_on_the_channel_until_its_run_ends(tiny_config: DDPGConfig,
                                                                              tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    session = TrainingSession(TrainingRequest(tiny_config.replace(total_steps=1_000_000), run_dir))
    thread = threading.Thread(target=session.run)
    thread.start()
    try:
        wait_for(lambda: (run_dir / CONTROL_FILE).exists())
        client = ChannelClient.connect(run_dir)
        wait_for(lambda: client.request("status")["step"] > 0)
        client.request("stop", save=False)
        assert session.finished.wait(60)
        assert session.snapshot().state == TrainerState.STOPPED
        assert not (run_dir / CONTROL_FILE).exists()
        client.close()
    finally:
        session.controls.stop()
        thread.join(60)


def test_a_client_beyond_the_limit_is_told_and_closed(idle_server: ChannelServer) -> None:
    from ddpg_tui.channel.server import MAX_CLIENTS

    held = [ChannelClient.connect(idle_server.run_dir) for _ in range(MAX_CLIENTS)]
    try:
        wait_for(lambda: idle_server.status()["clients"] == MAX_CLIENTS)
        sock = raw(idle_server)
        assert read_message(sock)["message"] == "too many clients"
        assert hung_up(sock)
        assert held[0].request("status")["clients"] == MAX_CLIENTS  # the others are served as before
    finally:
        for client in held:
            client.close()
