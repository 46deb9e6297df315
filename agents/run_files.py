"""The files of one run: `runs/<name>/` with config.toml, config.effective.toml, metrics.jsonl and checkpoints/.

- `config.toml`: the config the run started with. Written once, when the run starts; a resume
  never rewrites it.
- `metrics.jsonl`: one JSON object a line, told apart by `kind`. The curves: "episode",
  "update", "eval". The run's record: "change" (one row per field changed while it ran:
  `step`, `field`, `old`, `new`, `source`), "save" (`step`, `file` relative to the run folder,
  `reason`), "pause", "resume" and "stop" (`step`; a stop asked for before the run's end),
  "threads" (`step`, `old`, `new`, `reason`, `rates`: torch's thread count, set by timing when
  the config says threads = 0; see agents/thread_tuner.py).
  A change row's `step` is the env step after which it took effect (before step + 1).
  `source` is who asked: "key" (the app's `h` dialog), "channel" (a control channel,
  reserved) or "resume" (`train --resume --steps N` or `--env ID`). `recorded_requests`
  turns the record back into the commands that a rerun with the same seed queues at the
  same steps to repeat the run row for row.
- `config.effective.toml`: the config in effect at the run's last save, written when the run
  starts and after every save, in config.toml's format. It always equals config.toml with the
  change rows up to that step applied in order (`effective_config` derives it from those two
  files alone), so a run stopped without saving still shows its effective config that way.
- `checkpoints/`: latest.pt, best.pt, replay_buffer.pt. `train --resume` takes its config from
  latest.pt, which holds the same effective config as config.effective.toml.

Readers that want only the curves must select rows by `kind` and skip the others.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import fcntl
import json
import os
import time
import tomllib
import weakref
from dataclasses import asdict
from pathlib import Path
from typing import IO, Any

from agents.checkpoint import atomic_write, atomic_write_bytes
from agents.config import DDPGConfig
from agents.controls import SOURCES, Command
from agents.events import (
    ConfigChanged,
    EpisodeEnd,
    EvalResult,
    Event,
    Saved,
    StateChanged,
    ThreadsChanged,
    TrainerState,
    UpdateStats,
)

METRIC_EVENTS = {EpisodeEnd: "episode", UpdateStats: "update", EvalResult: "eval"}
# The run's record, not curves: see the module docstring.
RECORD_KINDS = ("change", "save", "pause", "resume", "stop", "threads")
EFFECTIVE_CONFIG = "config.effective.toml"


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
        config, _ = effective_config(run_dir)
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


def read_rows(run_dir: Path, kinds: tuple[str, ...]) -> list[dict[str, Any]]:
    """The metrics.jsonl rows of the given kinds, in order; lines cut by a crash are skipped."""
    rows: list[dict[str, Any]] = []
    with contextlib.suppress(FileNotFoundError), \
            (Path(run_dir) / "metrics.jsonl").open(encoding="utf-8", errors="replace") as lines:
        for line in lines:
            try:
                row = json.loads(line)
            except ValueError:
                continue
            if isinstance(row, dict) and row.get("kind") in kinds:
                rows.append(row)
    return rows


def effective_config(run_dir: Path) -> tuple[dict[str, Any], dict[str, int]]:
    """config.toml's data with the run's change rows applied, and each changed field's last change step.

    Read from the text files only (nothing is unpickled or imported). Raises OSError or
    tomllib.TOMLDecodeError when config.toml cannot be read.
    """
    data = tomllib.loads((Path(run_dir) / "config.toml").read_text(encoding="utf-8"))
    values = data.setdefault("hyperparameters", {})
    changed: dict[str, int] = {}
    for row in read_rows(run_dir, ("change",)):
        name = row.get("field")
        if not isinstance(name, str) or "new" not in row:
            continue
        if name == "env_id":
            data["env_id"] = row["new"]
        else:
            values[name] = row["new"]
        changed[name] = int(row.get("step", 0))
    return data, changed


def recorded_requests(run_dir: Path) -> list[tuple[int, Command]]:
    """What the run's record says was asked of it while it ran, each with the step after which it was applied.

    A rerun with the same config that queues each command right after its env step repeats the
    run row for row: the live changes ("set", one field each, with their source), the requested
    saves and the pauses (both flush the loss window, so they shape the update rows), and the
    stop (queued as a stop that saves). Changes made at a resume are left out: the rerun's own
    --steps or --env makes them.
    """
    requests: list[tuple[int, Command]] = []
    for row in read_rows(run_dir, RECORD_KINDS):
        step, kind = int(row["step"]), row["kind"]
        if kind == "change" and row.get("source") in SOURCES:
            requests.append((step, Command("set", {row["field"]: row["new"]}, row["source"])))
        elif kind == "save" and row.get("reason") == "requested":
            requests.append((step, Command("save")))
        elif kind in ("pause", "resume", "stop"):
            requests.append((step, Command(kind)))
    return requests


def change_rows(event: ConfigChanged) -> list[dict[str, Any]]:
    return [{"kind": "change", "step": event.step, "field": name, "old": _plain(event.old.get(name)),
             "new": _plain(value), "source": event.source} for name, value in event.changes.items()]


def _plain(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


class RunFiles:
    def __init__(self, run_dir: Path) -> None:
        self.run_dir = Path(run_dir)
        self._metrics: IO[str] | None = None
        self._paused = False  # the last state recorded was a pause: the next running state is a resume

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

    @property
    def effective_config_path(self) -> Path:
        return self.run_dir / EFFECTIVE_CONFIG

    def create(self, config: DDPGConfig, resumed: bool = False) -> None:
        """Make the folder and write its configs; raises OSError if the folder is unwritable.

        A resumed run keeps the config.toml it started with (its live changes are rows of
        metrics.jsonl); only a folder without one gets `config` as its start.
        """
        self.checkpoint_dir.mkdir(parents=True, exist_ok=True)
        if not (resumed and self.config_path.is_file()):
            atomic_write_bytes(self.config_path, config.to_toml().encode())
        self.write_effective(config)

    def write_effective(self, config: DDPGConfig) -> None:
        atomic_write_bytes(self.effective_config_path, config.to_toml().encode())

    def resume_changes(self, config: DDPGConfig) -> tuple[dict[str, Any], dict[str, Any]]:
        """(new, old) values of the fields in which a resumed run's `config` differs from the folder's
        effective config: `--steps N` or `--env ID` at resume, recorded as changes like any other."""
        try:
            data, _ = effective_config(self.run_dir)
        except (OSError, ValueError):
            return {}, {}
        before = {"env_id": data.get("env_id"), **data.get("hyperparameters", {})}
        after = config.to_dict()
        new = {name: getattr(config, name) for name, value in after.items()
               if name in before and before[name] != value}
        return new, {name: before[name] for name in new}

    def record(self, event: Event) -> None:
        """Append the events worth keeping to metrics.jsonl, one JSON object a line (see the module docstring)."""
        rows = self._rows(event)
        if not rows:
            return
        if self._metrics is None:
            self._metrics = self.metrics_path.open("a", encoding="utf-8")
        self._metrics.writelines(json.dumps(row) + "\n" for row in rows)
        # Every row, flushed before the event reaches the front-ends: a client that attaches to the run
        # reads the rows of the steps before the event it subscribed after from the file (ddpg_tui/channel).
        # One write per episode or per STATS_EVERY steps costs nothing next to the steps themselves.
        self._metrics.flush()

    def _rows(self, event: Event) -> list[dict[str, Any]]:
        if (kind := METRIC_EVENTS.get(type(event))) is not None:
            row = {"kind": kind, **asdict(event)}  # type: ignore[call-overload]
            for name in ("returns", "lengths"):
                if name in row:
                    row[name] = list(row[name])
            return [row]
        match event:
            case ConfigChanged():
                return change_rows(event)
            case Saved():
                path = Path(event.path)
                with contextlib.suppress(ValueError):
                    path = path.relative_to(self.run_dir)
                return [{"kind": "save", "step": event.step, "file": str(path), "reason": event.reason}]
            case StateChanged(state=TrainerState.PAUSED) if not self._paused:
                self._paused = True
                return [{"kind": "pause", "step": event.step}]
            case StateChanged(state=TrainerState.TRAINING | TrainerState.WARMING_UP) if self._paused:
                self._paused = False
                return [{"kind": "resume", "step": event.step}]
            case StateChanged(state=TrainerState.STOPPED):
                return [{"kind": "stop", "step": event.step}]
            case ThreadsChanged():
                return [{"kind": "threads", **asdict(event)}]
        return []

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


# The rows a front-end draws again when it opens a run mid-way (the app on resume, an attached client).
HistoryEvent = EpisodeEnd | UpdateStats | EvalResult | ConfigChanged
HISTORY_KINDS: dict[str, type[HistoryEvent]] = {kind: cls for cls, kind in METRIC_EVENTS.items()}


def read_history(metrics_path: Path, up_to_step: int) -> list[HistoryEvent]:
    """The events a run recorded in its metrics.jsonl, up to `up_to_step` (the checkpoint's step).

    Rows after that step were never seen by the checkpoint that resumes; the trainer drops
    them from the file once it starts, and they must not be drawn either. A row cut by a
    crash mid-write, or one this version does not know, is skipped rather than refused:
    the history is for the eye, and the run itself does not depend on it.
    """
    events: list[HistoryEvent] = []
    try:
        lines = metrics_path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        return events
    for line in lines:
        try:
            row = json.loads(line)
            event = _history_event(row)
        except (ValueError, KeyError, TypeError):
            continue
        if event.step <= up_to_step:
            events.append(event)
    return events


def _history_event(row: dict) -> HistoryEvent:
    """A metrics.jsonl row as its event; KeyError for a kind that is not drawn or logged again."""
    if row["kind"] == "change":  # one field's live change: the events panel shows it again
        name = row["field"]
        return ConfigChanged(int(row["step"]), {name: row["new"]}, {name: row.get("old")},
                             str(row.get("source", "key")))
    cls = HISTORY_KINDS[row["kind"]]
    for name in ("returns", "lengths"):  # tuples in the event, lists in JSON
        if name in row:
            row[name] = tuple(row[name])
    names = {f.name for f in dataclasses.fields(cls)}
    return cls(**{key: value for key, value in row.items() if key in names})
