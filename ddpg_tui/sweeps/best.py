"""best.toml: a sweep's best finished config as a preset file, so that `train --preset PATH` runs it again.

It is the sweep's base config with the winning config's overrides, in the format of presets/*.toml,
and its comment says where it came from: which sweep, how many seeds, their median and the IQM's
interval. Its seed is the base config's; train it on fresh seeds (`--seed S`) to see whether the
median holds up.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

from agents.config import DDPGConfig
from ddpg_tui.stats import Estimate, interval_text
from ddpg_tui.sweeps.space import Variant
from ddpg_tui.sweeps.spec import SweepError, load_spec


class RankedConfig(Protocol):
    """What best.toml needs of a ranked config (summary.RankedConfig; summary.py imports this module)."""

    @property
    def variant(self) -> str: ...
    @property
    def seeds(self) -> int: ...
    @property
    def finished(self) -> int: ...
    @property
    def estimate(self) -> Estimate | None: ...

BEST_FILE = "best.toml"


def best_finished(ranked: Sequence[RankedConfig]) -> RankedConfig | None:
    """The first config of the ranking whose every seed finished: a stopped seed's median is another step's."""
    return next((v for v in ranked if v.seeds and v.finished == v.seeds and v.estimate is not None
                 and not math.isnan(v.estimate.median)), None)


def _quoted(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def best_preset_text(sweep_name: str, sweep_dir: Path, config: DDPGConfig, best: RankedConfig,
                     threshold: float | None) -> str:
    e = best.estimate
    assert e is not None  # best_finished picks only configs with an estimate
    interval = interval_text(e.low, e.high, grouping="")
    figures = f"final eval median {e.median:.1f}, IQM {e.iqm:.1f}" + (f" (95% CI {interval})" if interval else "")
    lines = [f"# The best finished config of sweep {sweep_name} ({sweep_dir}): {best.variant}",
             f"# {best.seeds} seed{'s' if best.seeds != 1 else ''}, {figures} over seeds.",
             f"# Written with the sweep's summary.md; train it with: ddpg-tui train --preset {sweep_dir / BEST_FILE}",
             f"description = {_quoted(f'sweep {sweep_name}: {best.variant}')}",
             config.to_toml().rstrip("\n")]
    if threshold is not None:
        lines += ["", "[solved]", f"threshold = {float(threshold)!r}", f"source = {_quoted(f'sweep {sweep_name}')}"]
    return "\n".join(lines) + "\n"


def write_best_preset(sweep_dir: Path, ranked: Sequence[RankedConfig], variants: Sequence[Variant]) -> Path | None:
    """Write best.toml from the ranked configs; None when no config has finished or the folder has no sweep.json."""
    best = best_finished(ranked)
    try:
        spec = load_spec(sweep_dir)
    except SweepError:
        return None
    overrides = {v.label: v.as_dict() for v in variants}
    if best is None or best.variant not in overrides:
        return None
    config = DDPGConfig.from_mapping(overrides[best.variant], base=spec.base)
    path = Path(sweep_dir) / BEST_FILE
    path.write_text(best_preset_text(spec.name, Path(sweep_dir), config, best, spec.threshold), encoding="utf-8")
    return path
