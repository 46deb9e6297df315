"""What the front-ends of a population (`train --seeds`) share: its request, its folders, its closing words.

Headless (ddpg_tui/cli/population_run.py) and in the app (ddpg_tui/ui/population_session.py)
a population is the same thing: one config, N seeds, and a member folder `RUN/seed-K` each.
Nothing heavy is imported here, so the CLI can check a request before torch loads.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from agents.config import DDPGConfig

if TYPE_CHECKING:
    from agents.population import PopulationOutcome


@dataclass(frozen=True)
class PopulationRequest:
    """A new population (config and seeds), or one to carry on (`members`, the folders it left)."""

    config: DDPGConfig | None  # None when resuming: the members' checkpoints hold it
    seeds: tuple[int, ...]
    run_dir: Path
    members: tuple[Path, ...] = ()  # when resuming: RUN/seed-K of every member, in seed order
    total_steps: int | None = None  # extends a resumed population
    claimed_run_dir: bool = False  # the folder was made empty for this population: removed if it cannot start

    @property
    def resuming(self) -> bool:
        return bool(self.members)

    def member_dirs(self) -> list[Path]:
        return list(self.members) if self.members else member_dirs(self.run_dir, self.seeds)

    def discard_unused_run_dir(self) -> None:
        # The same rule as TrainingRequest's: only a folder made empty for this run, and only while empty.
        from ddpg_tui.request import TrainingRequest

        TrainingRequest(self.config, self.run_dir, claimed_run_dir=self.claimed_run_dir).discard_unused_run_dir()


def member_dirs(run_dir: Path, seeds: tuple[int, ...]) -> list[Path]:
    return [run_dir / f"seed-{seed}" for seed in seeds]


def quartiles(values: list[float]) -> tuple[float, float, float]:
    """(median, first quartile, third quartile), numpy's linear interpolation."""
    import numpy as np  # here: the app's first screen and the CLI's checks import this module without numpy

    q1, median, q3 = np.percentile(values, [25, 50, 75])
    return float(median), float(q1), float(q3)


def closing_lines(outcome: PopulationOutcome, seeds: tuple[int, ...], run_dir: Path,
                  headless: bool = True) -> list[str]:
    """What a population leaves behind and how to go on from it; `headless` says how it was trained."""
    lines = []
    finals = [(seed, ev) for seed, ev in zip(seeds, outcome.last_evals, strict=True) if ev is not None]
    if finals:
        median, q1, q3 = quartiles([ev.mean for _, ev in finals])
        lines.append(f"last eval median {median:,.1f} (IQR {q1:,.1f} to {q3:,.1f}) over {len(finals)} seeds: "
                     + ", ".join(f"seed {seed} {ev.mean:,.1f}" for seed, ev in finals))
    lines.append(f"run folders {run_dir}/seed-{{{','.join(map(str, seeds))}}} ({outcome.state.value} at step "
                 f"{outcome.step:,})")
    lines.append(f"  compare:  ddpg-tui compare {' '.join(str(d) for d in member_dirs(run_dir, seeds))}")
    more = "" if outcome.step < outcome.total_steps else f" --steps {outcome.total_steps * 2}"
    lines.append(f"  resume:   ddpg-tui train --resume {run_dir}{' --headless' if headless else ''}{more}")
    return lines
