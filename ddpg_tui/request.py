"""What every front-end shares: the training request, the exit codes, and the closing words.

It imports nothing heavy, so the CLI can build a request before torch is loaded, and
`cli/main.py` sits on top of the front-ends instead of being imported by them.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from agents.config import DDPGConfig

if TYPE_CHECKING:
    from agents.trainer import TrainingOutcome

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT = 0, 1, 2
EXIT_SIGHUP, EXIT_SIGINT, EXIT_SIGTERM = 129, 130, 143  # 128 + the signal's number, as shells report it


class UsageError(Exception):
    """Bad input on the command line: shown as one line, exit code 2."""


@dataclass(frozen=True)
class TrainingRequest:
    """What `ddpg-tui train` (or the app's form) was asked for, checked, before anything heavy is imported."""

    config: DDPGConfig | None  # None when resuming: the checkpoint's config is used
    run_dir: Path
    resume_from: Path | None = None
    total_steps: int | None = None  # extends a resumed run
    save_replay_buffer: bool = True
    env_id: str | None = None  # when resuming: the user's own env id instead of the checkpoint's
    claimed_run_dir: bool = False  # the folder was made empty for this run: remove it if the run cannot start

    def discard_unused_run_dir(self) -> None:
        if self.claimed_run_dir:
            with contextlib.suppress(OSError):
                # The lock file of the run that never started; no other process knows this new folder.
                (self.run_dir / ".lock").unlink(missing_ok=True)
                self.run_dir.rmdir()  # only ever removes an empty folder


def closing_lines(outcome: TrainingOutcome) -> list[str]:
    """What a run leaves behind and how to go on from it, printed by headless runs and the app alike."""
    lines: list[str] = []
    if outcome.last_eval is not None:
        best = outcome.best_eval
        best_text = f"; best {best.mean:.1f} at step {best.step:,}" if best is not None else ""
        last = outcome.last_eval
        which = "final eval" if last.step == outcome.step else f"last eval (step {last.step:,})"
        lines.append(f"{which} {last.mean:,.1f} ± {last.std:,.1f}{best_text}")
    if outcome.run_dir is None:
        return lines
    lines.append(f"run folder {outcome.run_dir} ({outcome.state.value} at step {outcome.step:,} "
                 f"of {outcome.total_steps:,})")
    if outcome.checkpoint is None:
        lines.append("no checkpoint was saved")
        return lines
    saved_at = outcome.checkpoint_step
    if saved_at is not None and saved_at != outcome.step:
        # A stop without saving leaves an older checkpoint: say how far back resuming goes.
        lines.append(f"checkpoint {outcome.checkpoint} (step {saved_at:,}; the steps after it were not saved)")
    else:
        lines.append(f"checkpoint {outcome.checkpoint}")
    lines.append(f"  evaluate: ddpg-tui eval {outcome.checkpoint}")
    steps = "" if outcome.step < outcome.total_steps else f" --steps {outcome.total_steps * 2}"
    lines.append(f"  resume:   ddpg-tui train --resume {outcome.run_dir}{steps}")
    return lines


def plural(count: int, noun: str) -> str:
    """"1 trial", "2 trials": counts in messages."""
    return f"{count:,} {noun}{'' if count == 1 else 's'}"
