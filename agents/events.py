"""What the trainer tells its front-ends. Plain frozen dataclasses of Python scalars,
safe to hand from the training thread to any other thread."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any


class TrainerState(StrEnum):
    STARTING = "starting"
    WARMING_UP = "warming up"  # uniform random actions before learning_starts
    TRAINING = "training"
    PAUSED = "paused"
    EVALUATING = "evaluating"
    FINISHED = "finished"
    STOPPED = "stopped"
    ERROR = "error"


@dataclass(frozen=True, slots=True)
class StepStats:
    """Progress, emitted every few hundred steps and whenever the state changes."""

    step: int
    total_steps: int
    episode: int
    steps_per_second: float
    buffer_size: int
    buffer_capacity: int
    noise_sigma: float
    elapsed: float  # seconds spent training, pauses and evaluations excluded
    updates: int


@dataclass(frozen=True, slots=True)
class EpisodeEnd:
    step: int
    episode: int
    episode_return: float
    length: int


@dataclass(frozen=True, slots=True)
class UpdateStats:
    """Means over the updates since the previous UpdateStats event."""

    step: int
    updates: int
    critic_loss: float
    actor_loss: float
    mean_q: float


@dataclass(frozen=True, slots=True)
class EvalResult:
    step: int
    mean: float
    std: float
    returns: tuple[float, ...]
    best: bool = False  # the best evaluation of this run so far
    lengths: tuple[int, ...] = ()  # each episode's length, in the order of `returns`


@dataclass(frozen=True, slots=True)
class EvalRecording:
    """An evaluation's first episode as its actions and rewards, emitted after its EvalResult.

    Enough to redraw the episode frame by frame: reset(seed=seed), then the actions in
    order (see ddpg_tui/media/replay.py for why not the frames themselves). Emitted only while
    a front-end asks for it (`Trainer.record_evaluations`), so headless runs pay nothing.
    """

    step: int  # the training step of the evaluation
    env_id: str
    seed: int
    actions: tuple[tuple[float, ...], ...]  # as given to env.step, clipped to the bounds
    rewards: tuple[float, ...]
    render_fps: float = 0.0  # the env's metadata["render_fps"]; 0 when it gives none

    @property
    def episode_return(self) -> float:
        return float(sum(self.rewards))


@dataclass(frozen=True, slots=True)
class Saved:
    step: int
    path: Path
    reason: str  # "periodic", "requested", "best", "final", "interrupted"
    save_id: str = ""  # shared by the checkpoint and its replay buffer (checkpoint_payload.new_save_id)


@dataclass(frozen=True, slots=True)
class ConfigChanged:
    """Live changes the trainer applied after env step `step`, before the next one."""

    step: int
    changes: dict[str, Any] = field(default_factory=dict)
    old: dict[str, Any] = field(default_factory=dict)  # each changed field's value before the change
    source: str = "key"  # who asked: see agents.controls.SOURCES


@dataclass(frozen=True, slots=True)
class StateChanged:
    step: int
    state: TrainerState
    message: str = ""


@dataclass(frozen=True, slots=True)
class ThreadsChanged:
    """The trainer set torch's thread count (threads = 0: it times the candidates; see agents.thread_tuner)."""

    step: int
    old: int
    new: int
    reason: str
    rates: dict[str, float] = field(default_factory=dict)  # steps/s of training time by thread count


@dataclass(frozen=True, slots=True)
class Notice:
    """Something a user should see that is not an error, e.g. a failed save."""

    step: int
    message: str
    level: str = "warning"


@dataclass(frozen=True, slots=True)
class TrainingError:
    step: int
    message: str
    details: str = ""  # the traceback, for the log; never the only thing shown


Event = (
    StepStats | EpisodeEnd | UpdateStats | EvalResult | EvalRecording | Saved | ConfigChanged | StateChanged
    | Notice | ThreadsChanged | TrainingError
)
