"""Which save a restarted sweep trial resumes from: Tune's copy, or its own run folder when that is newer."""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Iterator
from pathlib import Path

from agents.checkpoint import load_checkpoint
from agents.config import DDPGConfig
from agents.run_files import RunFiles
from agents.trainer import Trainer
from ddpg_tui.sweeps.trial import _prepare_run_folder


class TuneCheckpoint:
    """What `tune.get_checkpoint()` hands a trial: a folder to read, through `as_directory()`."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    @contextlib.contextmanager
    def as_directory(self) -> Iterator[str]:
        yield str(self.folder)


def trained(run_dir: Path, steps: int) -> RunFiles:
    config = DDPGConfig(env_id="Pendulum-v1", total_steps=steps, learning_starts=50, batch_size=16,
                        hidden_sizes=(8, 8), eval_every=0, save_every=0, buffer_size=1000, device="cpu")
    Trainer(config, None, run_dir).run()
    return RunFiles(run_dir)


def step_of(path: Path) -> int:
    return int(load_checkpoint(path)["counters"]["step"])


def trial_with_tune_copy(tmp_path: Path, folder_steps: int, tune_steps: int) -> tuple[RunFiles, Path]:
    """A trial folder saved at `folder_steps`, and Tune's copy of another run's save at `tune_steps`."""
    other = trained(tmp_path / "other", tune_steps)
    files = trained(tmp_path / "trial", folder_steps)
    tune_copy = tmp_path / "tune-checkpoint"
    shutil.copytree(other.checkpoint_dir, tune_copy)
    return files, tune_copy


def test_a_folder_that_saved_after_tunes_copy_is_kept(tmp_path: Path) -> None:
    # The driver was killed after the trial's last save but before Tune recorded it: going back to
    # Tune's older copy would train those steps again (and rewrite the metrics of a finished trial).
    files, tune_copy = trial_with_tune_copy(tmp_path, folder_steps=400, tune_steps=200)
    assert _prepare_run_folder(files, TuneCheckpoint(tune_copy)) == files.latest
    assert step_of(files.latest) == 400


def test_tunes_copy_wins_when_the_folder_is_not_newer(tmp_path: Path) -> None:
    # e.g. a worker killed between writing the buffer and latest.pt: Tune's pair is the consistent one.
    files, tune_copy = trial_with_tune_copy(tmp_path, folder_steps=200, tune_steps=400)
    assert _prepare_run_folder(files, TuneCheckpoint(tune_copy)) == files.latest
    assert step_of(files.latest) == 400
    assert (files.checkpoint_dir / "replay_buffer.pt").read_bytes() == (tune_copy / "replay_buffer.pt").read_bytes()
