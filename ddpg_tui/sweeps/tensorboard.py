"""A sweep's HParams summary for TensorBoard, written into each trial folder at the sweep's end.

Each trial folder is a run folder, with the event files its trainer wrote
(agents/tensorboard_log.py), so `tensorboard --logdir runs/sweeps/NAME` overlays the trials'
curves. This adds to each one an HParams session: the fields the sweep varies (and the seed,
and the config's label) as hparams, and as metrics the trial's final evaluation and the median
final evaluation of its config over its seeds, the number summary.md ranks configs by. The
HParams tab then compares configs the way summary.md does, and links each row to its curves.

The summary is rewritten whenever the sweep's summary is (a resumed sweep ends again), so the
previous one is removed first. Trial folders that hold no event files (tensorboard=false, or
a cluster whose trials live on other machines) get none, and a failure here never costs the
sweep its summary.csv and summary.md.
"""

from __future__ import annotations

import contextlib
import math
import statistics
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

from ddpg_tui.sweeps.space import format_value

HPARAMS_SUFFIX = ".hparams"  # the file name's end, which tells this file from the trainer's
FINAL_EVAL = "hparams/final_eval"
CONFIG_MEDIAN = "hparams/config_median_final_eval"


class TrialSummary(Protocol):
    """What this reads of a summary.TrialSummary (summary.py calls this module, so it cannot be imported here)."""

    trial: str  # the trial's folder name
    variant: str
    overrides: dict[str, Any]
    seed: int
    steps: int
    final_eval: float


def hparams_of(trial: TrialSummary) -> dict[str, bool | str | float]:
    """The trial's swept fields as TensorBoard hparam values (lists as 64x64, as in folder names)."""
    values: dict[str, bool | str | float] = {"config": trial.variant, "seed": trial.seed}
    for name, value in trial.overrides.items():
        values[name] = value if isinstance(value, (bool, str, int, float)) else format_value(value)
    return values


def config_medians(trials: Sequence[TrialSummary]) -> dict[str, float]:
    """Each config's median final evaluation over its seeds (nan: none evaluated yet)."""
    finals: dict[str, list[float]] = {}
    for trial in trials:
        finals.setdefault(trial.variant, [])
        if not math.isnan(trial.final_eval):
            finals[trial.variant].append(trial.final_eval)
    return {variant: statistics.median(values) if values else math.nan for variant, values in finals.items()}


def write_hparams(sweep_dir: Path, trials: Sequence[TrialSummary]) -> list[Path]:
    """Write each trial's HParams session into its folder; returns the folders given one."""
    try:
        from tensorboardX import SummaryWriter
        from tensorboardX.summary import hparams
    except ImportError:
        return []
    medians = config_medians(trials)
    written: list[Path] = []
    for trial in trials:
        folder = Path(sweep_dir) / trial.trial
        if not any(not path.name.endswith(HPARAMS_SUFFIX) for path in folder.glob("events.out.tfevents.*")):
            continue  # the trial's trainer wrote no event files
        for old in folder.glob(f"events.out.tfevents.*{HPARAMS_SUFFIX}"):
            with contextlib.suppress(OSError):
                old.unlink()
        metrics = {FINAL_EVAL: trial.final_eval, CONFIG_MEDIAN: medians[trial.variant]}
        try:
            _write_session(SummaryWriter, hparams, folder, hparams_of(trial), metrics, trial.steps)
        except OSError:
            continue
        written.append(folder)
    return written


def _write_session(writer_class: Any, hparams: Any, folder: Path, values: dict[str, Any], metrics: dict[str, float],
                   step: int) -> None:
    experiment, start, end = hparams(values, metrics)
    writer = writer_class(str(folder), filename_suffix=HPARAMS_SUFFIX)
    try:
        for summary in (experiment, start, end):
            writer.file_writer.add_summary(summary)
        for tag, value in metrics.items():
            if not math.isnan(value):
                writer.add_scalar(tag, value, step)
    finally:
        writer.close()
