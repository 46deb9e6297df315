"""A population (`train --seeds`) as the app sees it: the twin of ddpg_tui/ui/session.py for N members.

The PopulationTrainer runs in a Textual thread worker and reports every event with the
index of the member it is about (agents/population.py). `PopulationSession.sink` folds
each into plain data behind a lock and never touches a widget; the population dashboard
takes a `PopulationSnapshot` on a timer. What concerns the whole population (its state,
its progress, a stop) is told once per member, so only member 0's copy is kept; what a
save or an evaluation says is logged once the last member has reported it.
"""

from __future__ import annotations

import math
import threading
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

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
    TrainerState,
    TrainingError,
)
from agents.run_files import read_history
from ddpg_tui.population import PopulationRequest, closing_lines, quartiles
from ddpg_tui.ui.session import ACTIVE_STATES, LOG_LINES, LogLine, change_text

if TYPE_CHECKING:
    from agents.population import PopulationOutcome, PopulationTrainer


@dataclass(frozen=True)
class MemberCurves:
    """One member's curves, as the single-run snapshot holds them."""

    seed: int
    episode_steps: tuple[int, ...] = ()
    episode_returns: tuple[float, ...] = ()
    evals: tuple[EvalResult, ...] = ()

    @property
    def last_eval(self) -> EvalResult | None:
        return self.evals[-1] if self.evals else None

    @property
    def best_eval(self) -> EvalResult | None:
        return max(self.evals, key=lambda e: e.mean) if self.evals else None


@dataclass(frozen=True)
class PopulationSnapshot:
    """Everything the population dashboard draws, copied out under the lock."""

    version: int = 0
    env_id: str = ""
    run_dir: str = ""
    state: TrainerState = TrainerState.STARTING
    message: str = ""
    progress: StepStats | None = None  # the population's: its members step in lockstep
    members: tuple[MemberCurves, ...] = ()
    last_saved: str = ""
    toasted_saves: int = 0  # save rounds worth a notification: requested, interrupted, final
    log: tuple[LogLine, ...] = ()
    # The Agent panel's episode, while it is open: the newest evaluation's median member (the one a
    # user would call typical), and that member's seed.
    recording: EvalRecording | None = None
    recording_seed: int | None = None

    @property
    def active(self) -> bool:
        return self.state in ACTIVE_STATES

    def eval_rounds(self) -> list[tuple[int, list[float]]]:
        """(step, every member's mean) at each step where all members have been evaluated, in order."""
        by_step: dict[int, list[float]] = {}
        for member in self.members:
            for result in member.evals:
                by_step.setdefault(result.step, []).append(result.mean)
        return [(step, means) for step, means in sorted(by_step.items()) if len(means) == len(self.members)]


@dataclass
class _Member:
    seed: int
    episode_steps: list[int] = field(default_factory=list)
    episode_returns: list[float] = field(default_factory=list)
    evals: list[EvalResult] = field(default_factory=list)


@dataclass
class _Folded:
    """The mutable twin of PopulationSnapshot, only ever touched under the session's lock."""

    members: list[_Member]
    version: int = 0
    state: TrainerState = TrainerState.STARTING
    message: str = ""
    progress: StepStats | None = None
    last_saved: str = ""
    toasted_saves: int = 0
    log: deque[LogLine] = field(default_factory=lambda: deque(maxlen=LOG_LINES))
    log_count: int = 0
    # How many members have reported each save (step, reason) and each evaluation step so far.
    saves_told: dict[tuple[int, str], int] = field(default_factory=dict)
    evals_told: dict[int, list[float]] = field(default_factory=dict)
    said: set[tuple[int, str, str]] = field(default_factory=set)  # (step, level, text) already logged
    recordings: dict[int, EvalRecording] = field(default_factory=dict)  # each member's newest
    recording: EvalRecording | None = None  # the median member's, once every member has recorded its round
    recording_seed: int | None = None

    def log_line(self, level: str, step: int, text: str) -> None:
        self.log_count += 1
        self.log.append((self.log_count, level, step, text))


def median_member(f: _Folded, step: int) -> int:
    """The member whose evaluation at `step` is the median (the lower of the two middle ones), by index."""
    means = {k: next((e.mean for e in reversed(m.evals) if e.step == step), math.nan) for k, m in enumerate(f.members)}
    return sorted(means, key=lambda k: (means[k], k))[(len(means) - 1) // 2]


class PopulationSession:
    """Owns one PopulationTrainer run. `run()` is the worker's body; everything else is thread-safe."""

    def __init__(self, request: PopulationRequest) -> None:
        self.request = request
        self.controls = Controls()  # the population's one set: a key steers every member at once
        self.record_evaluations = threading.Event()  # set while the dashboard's Agent panel is open
        self.config: DDPGConfig | None = request.config
        self.env_id = request.config.env_id if request.config else ""
        self.seeds = request.seeds
        self._lock = threading.Lock()
        self._folded = _Folded([_Member(seed) for seed in request.seeds])
        self.outcome: PopulationOutcome | None = None
        self.finished = threading.Event()  # set when run() has returned, whichever way
        self.handover = ""  # a population is never handed over to a background process (see the quit dialog)

    # The worker's side -------------------------------------------------------------

    def run(self) -> PopulationOutcome | None:
        """Build the population and train it; every failure ends up in the snapshot, not raised."""
        try:
            return self._run()
        finally:
            self.finished.set()

    def _run(self) -> PopulationOutcome | None:
        try:
            trainer = self._build()
        except Exception as error:  # EnvError, ConfigError, CheckpointError, RunLockedError, OSError: one line
            self.controls.close()  # nothing will ever read a command: refuse them
            self.request.discard_unused_run_dir()
            self.sink(0, StateChanged(0, TrainerState.ERROR, str(error)))
            self.sink(0, TrainingError(0, str(error)))
            return None
        self.config, self.env_id = trainer.config, trainer.config.env_id
        if trainer.resumed:
            self._load_history(trainer)
        self.outcome = trainer.run()
        return self.outcome

    def _build(self) -> PopulationTrainer:
        # torch comes in with the trainer, here in the worker, as for a single run (ui/session.py).
        from agents.population import PopulationTrainer

        request = self.request
        if request.resuming:
            return PopulationTrainer.resume(list(request.members), total_steps=request.total_steps,
                                            sink=self.sink, controls=self.controls,
                                            record_evaluations=self.record_evaluations)
        assert request.config is not None
        return PopulationTrainer(request.config, list(request.seeds), request.member_dirs(), sink=self.sink,
                                 threads=request.config.threads or 1, controls=self.controls,
                                 record_evaluations=self.record_evaluations)

    def _load_history(self, trainer: PopulationTrainer) -> None:
        """Each member's earlier episodes and evaluations, before the first new event; logged as one line."""
        with self._lock:
            f = self._folded
            for k, (member, folded) in enumerate(zip(trainer.members, f.members, strict=True)):
                if member.files is None:
                    continue
                for event in read_history(member.files.metrics_path, trainer.step):
                    if isinstance(event, EpisodeEnd):
                        folded.episode_steps.append(event.step)
                        folded.episode_returns.append(event.episode_return)
                    elif isinstance(event, EvalResult):
                        folded.evals.append(event)
                    elif isinstance(event, ConfigChanged) and k == 0:  # the members change together
                        f.log_line("config", event.step, change_text(event))
            f.log_line("info", trainer.step, f"resumed {len(f.members)} members from their metrics.jsonl")
            f.version += 1

    def sink(self, k: int, event: Event) -> None:
        with self._lock:
            self._fold(self._folded, k, event)
            self._folded.version += 1

    def _fold(self, f: _Folded, k: int, event: Event) -> None:
        member, n = f.members[k], len(f.members)
        match event:
            case StepStats() if k == 0:
                f.progress = event
            case EpisodeEnd():
                member.episode_steps.append(event.step)
                member.episode_returns.append(event.episode_return)
            case EvalRecording():  # after the member's EvalResult of the same step
                f.recordings[k] = event
                if sum(r.step == event.step for r in f.recordings.values()) == n:
                    median = median_member(f, event.step)
                    f.recording, f.recording_seed = f.recordings[median], f.members[median].seed
            case EvalResult():
                member.evals.append(event)
                told = f.evals_told.setdefault(event.step, [])
                told.append(event.mean)
                if len(told) == n:
                    del f.evals_told[event.step]
                    median, q1, q3 = quartiles(told)
                    f.log_line("eval", event.step, f"eval median {median:.1f} (IQR {q1:.1f} to {q3:.1f})")
            case Saved() if event.reason != "best":  # a member's new best is its own affair
                key = (event.step, event.reason)
                f.saves_told[key] = f.saves_told.get(key, 0) + 1
                if f.saves_told[key] == n:
                    del f.saves_told[key]
                    f.last_saved = str(self.request.run_dir / "seed-K" / "checkpoints" / event.path.name)
                    f.log_line("save", event.step, f"saved {n} members' {event.path.name} ({event.reason})")
                    if event.reason != "periodic":  # the user asked, or the run ended: say so
                        f.toasted_saves += 1
            case StateChanged() if k == 0:
                self._fold_state(f, event)
            case ConfigChanged() if k == 0:  # one change of every member
                f.log_line("config", event.step, change_text(event))
            case Notice() | TrainingError():
                # A population-wide notice comes once per member; a member's own (a failed save) names its folder.
                level = "error" if isinstance(event, TrainingError) else \
                    ("info" if event.level == "info" else "warning")
                text = event.message if level == "info" else f"{level}: {event.message}"
                if (event.step, level, text) not in f.said:
                    f.said.add((event.step, level, text))
                    f.log_line(level, event.step, text)

    @staticmethod
    def _fold_state(f: _Folded, event: StateChanged) -> None:
        was = f.state
        f.state, f.message = event.state, event.message
        if event.state in (TrainerState.PAUSED, TrainerState.FINISHED, TrainerState.STOPPED) \
                and was != TrainerState.EVALUATING:
            f.log_line("state", event.step, event.state.value)
        elif was == TrainerState.PAUSED and event.state in (TrainerState.WARMING_UP, TrainerState.TRAINING):
            f.log_line("state", event.step, "resumed")

    # The UI's side -------------------------------------------------------------------

    @property
    def version(self) -> int:
        """Bumped by every event; lets the UI skip copying an unchanged snapshot (an int read needs no lock)."""
        return self._folded.version

    def snapshot(self) -> PopulationSnapshot:
        with self._lock:
            f = self._folded
            members = tuple(MemberCurves(m.seed, tuple(m.episode_steps), tuple(m.episode_returns), tuple(m.evals))
                            for m in f.members)
            return PopulationSnapshot(version=f.version, env_id=self.env_id, run_dir=str(self.request.run_dir),
                                      state=f.state, message=f.message, progress=f.progress, members=members,
                                      last_saved=f.last_saved, toasted_saves=f.toasted_saves, log=tuple(f.log),
                                      recording=f.recording, recording_seed=f.recording_seed)

    def closing_lines(self) -> list[str]:
        """What `run_app` prints once the app has given the terminal back."""
        if self.outcome is None:
            return []
        return closing_lines(self.outcome, self.seeds, self.request.run_dir, headless=False)
