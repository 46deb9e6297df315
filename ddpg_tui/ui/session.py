"""A training run as the app sees it.

The trainer runs in a Textual thread worker and reports through `TrainingSession.sink`,
which only folds each event into plain data behind a lock: it never touches a widget
and never waits for the UI. The dashboard takes a `Snapshot` on a timer, a few times a
second, so training is not paced by drawing and drawing is not flooded by training.
"""

from __future__ import annotations

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
    UpdateStats,
)
from agents.run_files import HistoryEvent, read_history
from ddpg_tui.channel.location import ChannelError
from ddpg_tui.channel.server import ChannelServer
from ddpg_tui.request import TrainingRequest, plural

if TYPE_CHECKING:
    from agents.trainer import TrainingOutcome

ACTIVE_STATES = {TrainerState.STARTING, TrainerState.WARMING_UP, TrainerState.TRAINING, TrainerState.PAUSED,
                 TrainerState.EVALUATING}
LOG_LINES = 1000
LogLine = tuple[int, str, int, str]  # (sequence number, level, env step, text)


@dataclass(frozen=True)
class Snapshot:
    """Everything the dashboard draws, copied out under the lock."""

    version: int = 0
    env_id: str = ""
    run_dir: str = ""
    state: TrainerState = TrainerState.STARTING
    message: str = ""
    progress: StepStats | None = None
    episode_steps: tuple[int, ...] = ()
    episode_returns: tuple[float, ...] = ()
    evals: tuple[EvalResult, ...] = ()
    best_eval: EvalResult | None = None
    loss_updates: tuple[int, ...] = ()
    critic_losses: tuple[float, ...] = ()
    actor_losses: tuple[float, ...] = ()
    sigma_history: tuple[float, ...] = ()
    last_saved: str = ""
    toasted_saves: int = 0  # saves worth a notification: requested, interrupted, final (not periodic or best)
    log: tuple[LogLine, ...] = ()
    recording: EvalRecording | None = None  # the latest evaluation's first episode, while the Agent panel is open

    @property
    def active(self) -> bool:
        return self.state in ACTIVE_STATES


@dataclass
class _Folded:
    """The mutable twin of Snapshot, only ever touched under the session's lock."""

    version: int = 0
    state: TrainerState = TrainerState.STARTING
    message: str = ""
    progress: StepStats | None = None
    episode_steps: list[int] = field(default_factory=list)
    episode_returns: list[float] = field(default_factory=list)
    evals: list[EvalResult] = field(default_factory=list)
    best_eval: EvalResult | None = None
    loss_updates: list[int] = field(default_factory=list)
    critic_losses: list[float] = field(default_factory=list)
    actor_losses: list[float] = field(default_factory=list)
    sigma_history: deque[float] = field(default_factory=lambda: deque(maxlen=240))
    last_saved: str = ""
    toasted_saves: int = 0  # saves worth a notification: requested, interrupted, final (not periodic or best)
    log: deque[LogLine] = field(default_factory=lambda: deque(maxlen=LOG_LINES))
    log_count: int = 0
    recording: EvalRecording | None = None


def change_text(event: ConfigChanged) -> str:
    """How a live change reads in the events panel; who asked is said unless it was the `h` key."""
    changes = ", ".join(f"{k}={v}" for k, v in event.changes.items())
    by = "" if event.source == "key" else f" ({event.source})"
    return f"set {changes}{by}"


class TrainingSession:
    """Owns one Trainer run. `run()` is the worker's body; everything else is thread-safe."""

    HISTORY_WORD = "resumed"  # how the events panel introduces the history read back from metrics.jsonl

    def __init__(self, request: TrainingRequest) -> None:
        self.request = request
        self.controls = Controls()
        self.record_evaluations = threading.Event()  # set by the dashboard while its Agent panel is open
        self.env_id = request.config.env_id if request.config else ""
        self.config = request.config  # a resumed run's config is known once its trainer is built
        self._lock = threading.Lock()
        self._folded = _Folded()
        self.outcome: TrainingOutcome | None = None
        self.finished = threading.Event()  # set when run() has returned, whichever way
        self.handover = ""  # what the background process that took the run over said (q, then b)

    # The worker's side -------------------------------------------------------------

    def run(self) -> TrainingOutcome | None:
        """Build the trainer and train; every failure ends up in the snapshot, not raised."""
        try:
            return self._run()
        finally:
            self.finished.set()

    def _run(self) -> TrainingOutcome | None:
        # torch comes in with the trainer, here in the worker: importing it takes 1.5-2.5 s,
        # which the screen would otherwise spend frozen, or the app spend before its first screen.
        from agents.trainer import Trainer

        request = self.request
        # The dashboard's Agent panel owns record_evaluations here: an attached client's panel gets no episodes.
        channel = ChannelServer(request.run_dir, self.controls, env_id=self.env_id)

        def sink(event: Event) -> None:
            self.sink(event)
            channel.publish(event)

        try:
            trainer = Trainer(request.config, sink, request.run_dir, resume_from=request.resume_from,
                              total_steps=request.total_steps, save_replay_buffer=request.save_replay_buffer,
                              controls=self.controls, env_id=request.env_id,
                              record_evaluations=self.record_evaluations)
        except Exception as error:  # EnvError, ConfigError, CheckpointError, OSError: one line each
            self.controls.close()  # nothing will ever read a command: refuse them
            request.discard_unused_run_dir()
            self.sink(StateChanged(0, TrainerState.ERROR, str(error)))
            self.sink(TrainingError(0, str(error)))
            return None
        self.env_id = trainer.config.env_id
        self.config = trainer.config
        if request.resume_from is not None and trainer.files is not None:
            # The curves so far, before the first new event, so that they are drawn in order.
            self.load_history(read_history(trainer.files.metrics_path, trainer.step))
        channel.env_id = trainer.config.env_id
        try:  # after the Trainer took the run's lock: the socket and control.json are this process's alone
            channel.start(trainer.step)
        except (ChannelError, OSError) as error:  # the run goes on, only without attaching
            self.sink(Notice(trainer.step, f"no control channel ({error}); 'ddpg-tui attach' will not reach it"))
        try:
            self.outcome = trainer.run()
        finally:
            channel.close()
        return self.outcome

    def load_history(self, events: list[HistoryEvent]) -> None:
        """A resumed run's earlier episodes, losses and evaluations; logged as one line, not one per event."""
        with self._lock:
            f = self._folded
            for event in events:
                if isinstance(event, ConfigChanged):
                    f.log_count += 1
                    f.log.append((f.log_count, "config", event.step, change_text(event)))
                else:
                    self._fold_curve(f, event)
            if events:
                f.log_count += 1
                f.log.append((f.log_count, "info", events[-1].step,
                              f"{self.HISTORY_WORD}: {plural(len(f.episode_steps), 'episode')} and "
                              f"{plural(len(f.evals), 'evaluation')} from metrics.jsonl"))
            f.version += 1

    def sink(self, event: Event) -> None:
        with self._lock:
            self._fold(self._folded, event)
            self._folded.version += 1

    @staticmethod
    def _fold_curve(f: _Folded, event: HistoryEvent) -> None:
        """The points an episode, update or evaluation adds to the plots; live and resumed alike."""
        match event:
            case EpisodeEnd():
                f.episode_steps.append(event.step)
                f.episode_returns.append(event.episode_return)
            case UpdateStats():
                f.loss_updates.append(event.updates)
                f.critic_losses.append(event.critic_loss)
                f.actor_losses.append(event.actor_loss)
            case EvalResult():
                f.evals.append(event)
                if event.best:
                    f.best_eval = event

    @classmethod
    def _fold(cls, f: _Folded, event: Event) -> None:
        # Log texts are short: the step has a column of its own, and the side panel is
        # about 30 columns wide at 80x24 (longer texts wrap).
        def log(level: str, text: str) -> None:
            f.log_count += 1
            f.log.append((f.log_count, level, event.step, text))

        match event:
            case StepStats():
                f.progress = event
                f.sigma_history.append(event.noise_sigma)
            case EpisodeEnd():
                cls._fold_curve(f, event)
                log("info", f"ep {event.episode:,} R {event.episode_return:.1f}")
            case UpdateStats():
                cls._fold_curve(f, event)
            case EvalResult():
                cls._fold_curve(f, event)
                best = " best" if event.best else ""
                log("eval", f"eval {event.mean:.1f} ± {event.std:.0f}{best}")
            case EvalRecording():
                f.recording = event  # only the newest: the panel replays one episode
            case Saved():
                if event.reason != "best":  # a new best is logged by its evaluation
                    f.last_saved = str(event.path)
                    log("save", f"saved {event.path.name} ({event.reason})")
                if event.reason not in ("best", "periodic"):  # the user asked, or the run ended: say so
                    f.toasted_saves += 1
            case ConfigChanged():
                log("config", change_text(event))
            case StateChanged():
                was = f.state
                returning = was == TrainerState.EVALUATING  # back to where it was: not news
                f.state = event.state
                f.message = event.message
                if event.state in (TrainerState.PAUSED, TrainerState.FINISHED, TrainerState.STOPPED) \
                        and not returning:
                    log("state", event.state.value)
                elif was == TrainerState.PAUSED and event.state in (TrainerState.WARMING_UP, TrainerState.TRAINING):
                    log("state", "resumed")  # a pause is logged, so its end is too
            case Notice() if event.level == "info":  # e.g. how a command that came too late was answered
                log("info", event.message)
            case Notice():
                log("warning", f"warning: {event.message}")
            case TrainingError():
                log("error", f"error: {event.message}")

    # The UI's side -------------------------------------------------------------------

    @property
    def version(self) -> int:
        """Bumped by every event; lets the UI skip copying an unchanged snapshot (an int read needs no lock)."""
        return self._folded.version

    def snapshot(self) -> Snapshot:
        with self._lock:
            f = self._folded
            return Snapshot(
                version=f.version, env_id=self.env_id, run_dir=str(self.request.run_dir), state=f.state,
                message=f.message, progress=f.progress, episode_steps=tuple(f.episode_steps),
                episode_returns=tuple(f.episode_returns), evals=tuple(f.evals), best_eval=f.best_eval,
                loss_updates=tuple(f.loss_updates), critic_losses=tuple(f.critic_losses),
                actor_losses=tuple(f.actor_losses), sigma_history=tuple(f.sigma_history),
                last_saved=f.last_saved, toasted_saves=f.toasted_saves, log=tuple(f.log), recording=f.recording,
            )


class FixedSession:
    """A session that never trains and always shows the same snapshot (screenshots, tests)."""

    def __init__(self, snapshot: Snapshot, config: DDPGConfig | None = None) -> None:
        self._snapshot = snapshot
        self.controls = Controls()
        self.record_evaluations = threading.Event()
        self.env_id = snapshot.env_id
        self.config = config  # what the `h` dialog edits
        self.outcome = None

    def run(self) -> None:
        return None

    @property
    def version(self) -> int:
        return self._snapshot.version

    def snapshot(self) -> Snapshot:
        return self._snapshot
