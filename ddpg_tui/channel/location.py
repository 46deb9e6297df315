"""Where a run's socket is, and whether the run behind it is live.

The socket lives in a private per-user folder ($XDG_RUNTIME_DIR/ddpg-tui, else /tmp/ddpg-tui-UID, mode
0700, as tmux does), under a short name hashed from the run folder: a Unix socket's path is limited to
about 100 bytes, and a run folder can be arbitrarily deep. The run folder's control.json says where the
socket is and which process listens; it is removed when the run ends. One left behind by a process
that died (its pid is gone, or nothing answers on the socket) is stale, and is recognised as such.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import socket
import stat
from dataclasses import dataclass
from pathlib import Path

from agents.checkpoint import atomic_write_bytes

CONTROL_FILE = "control.json"
SOCKET_PATH_LIMIT = 100  # sun_path is 108 bytes on Linux, 104 on macOS


class ChannelError(Exception):
    """The channel cannot be set up or reached; the text is one line for the user."""


@dataclass(frozen=True, slots=True)
class ControlFile:
    socket: str
    pid: int


def socket_dir() -> Path:
    """This user's private folder for run sockets, made (0700) if missing; ChannelError if it is not ours."""
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    base = Path(runtime) / "ddpg-tui" if runtime and Path(runtime).is_dir() else Path(f"/tmp/ddpg-tui-{os.getuid()}")
    with contextlib.suppress(FileExistsError):
        base.mkdir(mode=0o700)
    info = base.lstat()
    # Someone else may have made /tmp/ddpg-tui-UID first, to read our sockets: refuse it, as tmux does.
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid() or stat.S_IMODE(info.st_mode) & 0o077:
        raise ChannelError(f"{base} is not a private folder of this user (mode 0700); remove it")
    return base


def socket_path_for(run_dir: Path) -> Path:
    digest = hashlib.sha256(str(Path(run_dir).resolve()).encode()).hexdigest()[:16]
    path = socket_dir() / f"{digest}.sock"
    if len(os.fsencode(path)) > SOCKET_PATH_LIMIT:
        raise ChannelError(f"the socket path {path} is longer than {SOCKET_PATH_LIMIT} bytes; "
                           "set XDG_RUNTIME_DIR to a shorter folder")
    return path


def write_control_file(run_dir: Path, socket_path: Path) -> None:
    data = json.dumps({"socket": str(socket_path), "pid": os.getpid()}).encode()
    atomic_write_bytes(Path(run_dir) / CONTROL_FILE, data)
    with contextlib.suppress(OSError):
        os.chmod(Path(run_dir) / CONTROL_FILE, 0o600)


def remove_control_file(run_dir: Path) -> None:
    """Remove control.json if it is still this process's (a later process may have written its own)."""
    path = Path(run_dir) / CONTROL_FILE
    control = read_control_file(run_dir)
    if control is not None and control.pid == os.getpid():
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def read_control_file(run_dir: Path) -> ControlFile | None:
    try:
        data = json.loads((Path(run_dir) / CONTROL_FILE).read_text(encoding="utf-8"))
        return ControlFile(str(data["socket"]), int(data["pid"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # alive, but another user's
    return True


def answers(socket_path: str, timeout: float = 1.0) -> bool:
    """Something listens on the socket. Only a refusal or a missing file says no one does: a busy server's
    full backlog (EAGAIN, a timeout) is still a live one, not a stale socket."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        probe.settimeout(timeout)
        try:
            probe.connect(socket_path)
        except (ConnectionRefusedError, FileNotFoundError, NotADirectoryError):
            return False
        except OSError:
            return True
    return True


def live_control(run_dir: Path) -> ControlFile:
    """The control file of a live run; ChannelError says why `run_dir` is not one (never trained live, ended, stale)."""
    control = read_control_file(run_dir)
    if control is None:
        raise ChannelError(f"{run_dir} is not a live run (no process is training it; "
                           f"resume it with 'ddpg-tui train --resume {run_dir}')")
    if not pid_alive(control.pid) or not answers(control.socket):
        raise ChannelError(f"{run_dir} is not a live run: its process {control.pid} has ended without "
                           f"removing {CONTROL_FILE} (stale); resume it with 'ddpg-tui train --resume {run_dir}'")
    return control


def is_live(run_dir: Path) -> bool:
    """A process is training `run_dir` now and answers on its channel."""
    try:
        live_control(run_dir)
    except ChannelError:
        return False
    return True


def live_runs(root: Path) -> list[Path]:
    """The run folders under `root` with a live process, newest control file first."""
    found = []
    for control in Path(root).glob(f"*/{CONTROL_FILE}"):
        with contextlib.suppress(ChannelError, OSError):
            live_control(control.parent)
            found.append((control.stat().st_mtime, control.parent))
    return [run_dir for _, run_dir in sorted(found, reverse=True)]
