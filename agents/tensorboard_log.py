"""TensorBoard event files for a run: the trainer's events as Stable-Baselines3's scalars.

The events file lies in the run folder itself (`runs/<name>/events.out.tfevents.*`), so
`tensorboard --logdir runs` shows every run, and `--logdir runs/sweeps/NAME` a sweep's
trials side by side. The x axis is the environment step, as in SB3.

| tag | from | value |
|---|---|---|
| rollout/ep_rew_mean, rollout/ep_len_mean | EpisodeEnd | mean of the last 100 episodes (SB3's window) |
| train/actor_loss, train/critic_loss, train/q_mean | UpdateStats | means over the updates since the last row |
| train/learning_rate, train/critic_learning_rate | the optimizers' param_groups | the rates in use, schedule included |
| train/noise_sigma, train/buffer_fill, time/fps | StepStats | sigma now, buffer size / capacity, steps/s |
| eval/mean_reward, eval/mean_ep_length | EvalResult | the evaluation's means |

`time/fps` is the training rate over the last StepStats window (pauses, evaluations and saves
excluded), not SB3's mean since the start, so a slowdown shows where it happens.

Why tensorboardX and not torch.utils.tensorboard: torch's SummaryWriter imports the
`tensorboard` package itself (with grpcio, werkzeug, markdown and tensorboard-data-server),
which only the viewer needs; tensorboardX writes the same files with protobuf and numpy.

Off the hot path: each trainer event becomes one small protobuf (all its scalars in one Summary)
put on tensorboardX's queue; its own thread writes and flushes the file. The queue is long
(MAX_QUEUE), so a put never waits for a slow disk at the rate a run produces them (a few per
200 steps, one per episode). benchmarks/tensorboard_cost.py times every call.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

from agents.events import EpisodeEnd, EvalResult, Event, StepStats, UpdateStats
from agents.run_files import read_rows

EPISODE_WINDOW = 100  # SB3's ep_info_buffer: rollout/* are means over the last 100 episodes
MAX_QUEUE = 10_000  # events tensorboardX may hold before add_scalar would wait for its writer thread
FLUSH_SECONDS = 10  # how stale a live TensorBoard may be; saves and the run's end flush at once
NO_TENSORBOARDX = ("no TensorBoard event files: tensorboardX is not installed "
                   "(pip install tensorboardX, or --set tensorboard=false)")  # a notice: the run trains on

LearningRates = Callable[[], tuple[float, float]]  # (actor, critic) as the optimizers hold them now


class TensorBoardLog:
    """Turns the trainer's events into scalars on a tensorboardX SummaryWriter."""

    def __init__(self, writer: Any, learning_rates: LearningRates, episodes: list[tuple[float, int]] | None = None,
                 after_step: int = -1) -> None:
        """`episodes`: (return, length) of the episodes before this writer, oldest first (a resumed run's);
        `after_step`: progress scalars at or before it are the previous writer's (a resumed run's step)."""
        from tensorboardX.proto.summary_pb2 import Summary

        self.writer = writer
        self._summary_type = Summary
        self.learning_rates = learning_rates
        self.returns: deque[float] = deque(maxlen=EPISODE_WINDOW)
        self.lengths: deque[int] = deque(maxlen=EPISODE_WINDOW)
        for episode_return, length in episodes or []:
            self.returns.append(episode_return)
            self.lengths.append(length)
        # StepStats also come at state changes, often at a step already shown: one value a step.
        self._progress_step = after_step

    @classmethod
    def open(cls, run_dir: Path, learning_rates: LearningRates, resume_step: int | None = None) -> TensorBoardLog:
        """A writer on `run_dir`; raises ImportError without tensorboardX and OSError if the folder is unwritable.

        A resumed run (`resume_step`: the checkpoint's step, whose metrics.jsonl has been cut
        back to it) writes a new events file that purges what the old ones hold past that
        step, as metrics.jsonl drops its rows; its 100-episode window starts from the
        episode rows metrics.jsonl kept, so rollout/ep_rew_mean carries on where it was.
        """
        # Imported here, not at the top: only a run with tensorboard on pays for it (`ddpg-tui --help` does not).
        from tensorboardX import SummaryWriter
        from tensorboardX.proto.event_pb2 import Event as ProtoEvent

        episodes: list[tuple[float, int]] = []
        if resume_step is not None:
            rows = read_rows(run_dir, ("episode",))[-EPISODE_WINDOW:]
            episodes = [(float(row["episode_return"]), int(row["length"])) for row in rows]
        start = resume_step if resume_step is not None else 0
        writer = SummaryWriter(
            str(run_dir),
            purge_step=resume_step + 1 if resume_step is not None else None,
            max_queue=MAX_QUEUE,
            flush_secs=FLUSH_SECONDS,
            # The file name is events.out.tfevents.<whole seconds>.<host><suffix>, and TensorBoard reads a folder's
            # files in name order: a resume in the same second as the run before it must sort after it (and not
            # reopen its file), so the suffix is the zero-padded step the writer starts at.
            filename_suffix=f".step{start:012d}",
        )
        # tensorboardX starts its queue's feeder thread on the first put: make that put now, before training,
        # with the event every file starts with, rather than in the first record() of the training loop.
        writer.file_writer.add_event(ProtoEvent(step=start, file_version="brain.Event:2"))
        return cls(writer, learning_rates, episodes, after_step=resume_step if resume_step is not None else -1)

    def record(self, event: Event) -> None:
        match event:
            case EpisodeEnd():
                self.returns.append(event.episode_return)
                self.lengths.append(event.length)
                self._write(event.step, ("rollout/ep_rew_mean", sum(self.returns) / len(self.returns)),
                            ("rollout/ep_len_mean", sum(self.lengths) / len(self.lengths)))
            case UpdateStats():
                actor_lr, critic_lr = self.learning_rates()
                self._write(event.step, ("train/actor_loss", event.actor_loss),
                            ("train/critic_loss", event.critic_loss), ("train/q_mean", event.mean_q),
                            ("train/learning_rate", actor_lr), ("train/critic_learning_rate", critic_lr))
            case StepStats() if event.step > self._progress_step:
                self._progress_step = event.step
                values = [("train/noise_sigma", event.noise_sigma),
                          ("train/buffer_fill", event.buffer_size / max(1, event.buffer_capacity))]
                if event.steps_per_second > 0:
                    values.append(("time/fps", event.steps_per_second))
                self._write(event.step, *values)
            case EvalResult():
                values = [("eval/mean_reward", event.mean)]
                if event.lengths:
                    values.append(("eval/mean_ep_length", sum(event.lengths) / len(event.lengths)))
                self._write(event.step, *values)

    def _write(self, step: int, *values: tuple[str, float]) -> None:
        # One event holding all of an event's scalars: one put on the writer's queue instead of one a tag,
        # which is what the training thread pays for (add_scalar makes an event per value).
        make = self._summary_type
        summary = make(value=[make.Value(tag=tag, simple_value=float(value)) for tag, value in values])
        self.writer.file_writer.add_summary(summary, step)

    def flush(self) -> None:
        """Write what the writer thread has taken so far to disk (on a save: the file then matches the checkpoint)."""
        self.writer.flush()

    def close(self) -> None:
        """Write everything still queued and close the file; safe to call twice."""
        self.writer.close()


def agent_rates(agent: Any) -> LearningRates:
    """The learning rates as the agent's optimizers hold them, so a linear schedule's decay shows."""
    return lambda: (float(agent.actor_optimizer.param_groups[0]["lr"]),
                    float(agent.critic_optimizer.param_groups[0]["lr"]))
