"""The files of one run: `runs/<name>/` with config.toml, metrics.jsonl and checkpoints/."""

from __future__ import annotations

import json
import time
from dataclasses import asdict
from pathlib import Path
from typing import IO

from agents.checkpoint import atomic_write_bytes
from agents.config import DDPGConfig
from agents.events import EpisodeEnd, EvalResult, Event, UpdateStats

METRIC_EVENTS = {EpisodeEnd: "episode", UpdateStats: "update", EvalResult: "eval"}


def new_run_name(label: str) -> str:
    safe = "".join(c if c.isalnum() or c in "-_." else "-" for c in label).strip("-") or "run"
    return f"{safe}-{time.strftime('%Y%m%d-%H%M%S')}"


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

    def close(self) -> None:
        if self._metrics is not None:
            self._metrics.close()
            self._metrics = None
