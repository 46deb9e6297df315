"""The files of one run: `runs/<name>/` with config.toml, metrics.jsonl and checkpoints/."""

from __future__ import annotations

import errno
import fcntl
import json
import os
import time
import tomllib
import weakref
from dataclasses import asdict
from pathlib import Path
from typing import IO

from agents.checkpoint import atomic_write, atomic_write_bytes
from agents.config import DDPGConfig
from agents.events import EpisodeEnd, EvalResult, Event, UpdateStats

METRIC_EVENTS = {EpisodeEnd: "episode", UpdateStats: "update", EvalResult: "eval"}


def new_run_name(label: str) -> str:
    safe = "".join(c if c.isalnum() or c in "-_." else "-" for c in label).strip("-") or "run"
    return f"{safe}-{time.strftime('%Y%m%d-%H%M%S')}"


def claim_run_dir(root: Path, label: str) -> Path:
    """A new, empty run folder under `root`, named for `label` and the time.

    The folder is made here with an exclusive mkdir, so two runs started in the same
    second (or by two processes at once) get `-2`, `-3`, ... instead of sharing one.
    """
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    name = new_run_name(label)
    for attempt in range(1, 1000):
        candidate = root / (name if attempt == 1 else f"{name}-{attempt}")
        try:
            candidate.mkdir()
        except FileExistsError:
            continue
        return candidate
    raise FileExistsError(f"no free run folder name under {root} for {name}")


RUN_MARKERS = ("config.toml", "metrics.jsonl", "checkpoints")


def existing_run(run_dir: Path) -> tuple[int, int | None] | None:
    """(step reached, total steps) of the run that `run_dir` already holds, or None if it holds none.

    Read from the folder's text files only (metrics.jsonl, config.toml): deciding whether a
    folder is taken must neither unpickle nor import anything.
    """
    run_dir = Path(run_dir)
    if not run_dir.is_dir() or not any((run_dir / marker).exists() for marker in RUN_MARKERS):
        return None
    step = 0
    metrics = run_dir / "metrics.jsonl"
    if metrics.is_file():
        with metrics.open(encoding="utf-8", errors="replace") as rows:
            for line in rows:
                try:
                    step = max(step, int(json.loads(line)["step"]))
                except (ValueError, KeyError, TypeError):
                    continue  # a line cut by a crash mid-write
    total: int | None = None
    try:
        config = tomllib.loads((run_dir / "config.toml").read_text(encoding="utf-8"))
        total = int(config["hyperparameters"]["total_steps"])
    except (OSError, ValueError, KeyError, TypeError):
        pass
    return step, total


LOCK_NAME = ".lock"


class RunLockedError(Exception):
    """The run folder is being written by another live process."""

    def __init__(self, run_dir: Path, pid: int | None) -> None:
        holder = f"process {pid}" if pid is not None else "another process"
        super().__init__(f"{run_dir} is being trained by {holder}; attach to it, or stop it first")
        self.run_dir, self.pid = run_dir, pid


def _pid_in(lock_file: Path) -> int | None:
    try:
        return int(lock_file.read_text(encoding="ascii").strip())
    except (OSError, ValueError):
        return None  # written by a holder that has only just taken the lock


class RunLock:
    """One writer per run folder: an exclusive `flock` on `<run>/.lock`, which holds the holder's pid.

    The kernel drops the lock when the holder's file is closed or the process dies (kill -9
    included), so a stale lock file never blocks anyone. flock is per open file description:
    two RunLocks on one folder exclude each other even inside one process, and a lock
    released by a finished (or failed) trial can be taken again by its retry in the same
    Ray actor. The file is never deleted while a run may use it: unlinking a lock file
    that another process has just opened would give two writers two different locks.
    Readers (eval, watch, compare, the runs screen) never touch it.
    """

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = Path(run_dir)
        self.path = self.run_dir / LOCK_NAME
        # A raw descriptor closed by a finalizer: a Trainer built but never run (tests, a front-end that
        # quits first) lets go of the folder when it is collected, without an unclosed-file warning.
        self._release: weakref.finalize | None = None

    @property
    def held(self) -> bool:
        return self._release is not None and self._release.alive

    def acquire(self) -> RunLock:
        """Take the lock, or raise RunLockedError naming the holder's pid.

        A folder that cannot be made or written is not locked: nothing can be written
        there by anyone, and the trainer already reports such a folder and trains on.
        """
        if self.held:
            return self
        try:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)  # no O_TRUNC: the pid is the holder's
        except OSError:
            return self
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as error:
            os.close(fd)
            if error.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                return self  # a file system without flock: nothing to lock with
            raise RunLockedError(self.run_dir, _pid_in(self.path)) from None
        self._release = weakref.finalize(self, os.close, fd)
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode("ascii"))
        return self

    def release(self) -> None:
        """Let another writer in; safe to call twice, or without holding the lock."""
        if self._release is not None:
            self._release()  # closing the only descriptor drops the flock; runs once

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


def refuse_if_locked(run_dir: Path) -> None:
    """Raise RunLockedError if a live process trains in `run_dir`: a writer's early refusal, before torch loads.

    It holds a shared lock for an instant, so only a would-be writer calls it (one that
    would be refused by the RunLock anyway); readers never do.
    """
    path = Path(run_dir) / LOCK_NAME
    try:
        probe = path.open("rb")
    except OSError:
        return  # no lock file: no run has ever been trained there
    with probe:
        try:
            fcntl.flock(probe, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError as error:
            if error.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise RunLockedError(Path(run_dir), _pid_in(path)) from None


class RunFiles:
    def __init__(self, run_dir: Path) -> None:
        self.run_dir = Path(run_dir)
        self._metrics: IO[str] | None = None

    @property
    def checkpoint_dir(self) -> Path:
        return self.run_dir / "checkpoints"

    @property
    def latest(self) -> Path:
        return self.checkpoint_dir / "latest.pt"

    @property
    def best(self) -> Path:
        return self.checkpoint_dir / "best.pt"

    @property
    def buffer(self) -> Path:
        return self.checkpoint_dir / "replay_buffer.pt"

    @property
    def config_path(self) -> Path:
        return self.run_dir / "config.toml"

    @property
    def metrics_path(self) -> Path:
        return self.run_dir / "metrics.jsonl"

    def create(self, config: DDPGConfig) -> None:
        """Make the folder and write config.toml; raises OSError if the folder is unwritable."""
        self.checkpoint_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(self.config_path, config.to_toml().encode())

    def record(self, event: Event) -> None:
        """Append the events worth plotting later to metrics.jsonl, one JSON object a line."""
        kind = METRIC_EVENTS.get(type(event))
        if kind is None:
            return
        if self._metrics is None:
            self._metrics = self.metrics_path.open("a", encoding="utf-8")
        row = {"kind": kind, **asdict(event)}
        if "returns" in row:
            row["returns"] = list(row["returns"])
        self._metrics.write(json.dumps(row) + "\n")
        if kind == "eval":
            self._metrics.flush()

    def drop_metrics_after(self, step: int) -> None:
        """Keep only the rows up to `step`, so that a resumed run writes no step twice."""
        self.close()
        if not self.metrics_path.exists():
            return
        kept = []
        with self.metrics_path.open(encoding="utf-8") as metrics:
            for line in metrics:
                try:
                    row_step = json.loads(line)["step"]
                except (ValueError, KeyError, TypeError):
                    continue  # a line cut by a crash mid-write
                if row_step <= step:
                    kept.append(line if line.endswith("\n") else line + "\n")
        atomic_write(self.metrics_path, lambda file: file.writelines(row.encode() for row in kept))

    def close(self) -> None:
        if self._metrics is not None:
            self._metrics.close()
            self._metrics = None
